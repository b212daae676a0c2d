// `npm start`: two devices, a `laptop` and a `nas`, each its own library over its sample
// folders in mnt-example/ and its own `sd mount` process, paired on a local DHT without
// typing, the laptop's view of both mounted at mnt-example/sd (or --mount DIR, e.g. /sd).
// Ctrl-C stops every process it started and leaves no mount behind; running it again
// reuses the libraries and the pairing.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { forceUnmount, isMounted } from '../src/fuse/mount.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The checkout's `sd`, as the README runs it (it gives `sd mount` its node flags). */
const sdBin = path.join(repo, 'bin', 'sd');

const USAGE = `Usage: npm start [-- --mount DIR] [-- --example DIR]

Runs the demo: devices 'laptop' and 'nas' over the sample folders in mnt-example/,
paired on a local DHT, the laptop's view mounted at mnt-example/sd.
  --mount DIR     where to mount the laptop's view (default mnt-example/sd; e.g. /sd)
  --example DIR   the folder holding the devices' sample folders (default mnt-example)`;

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  if (i < 0) return undefined;
  const value = process.argv[i + 1];
  if (value === undefined || value.startsWith('--')) fail(`${name} needs a folder`);
  return value;
}

function fail(message: string): never {
  process.stderr.write(`demo: ${message}\n`);
  process.exit(1);
}

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
const example = path.resolve(option('--example') ?? path.join(repo, 'mnt-example'));
const mountpoint = path.resolve(option('--mount') ?? path.join(example, 'sd'));

interface DemoDevice {
  name: string;
  folders: string[];
  library: string;
  /** Where its own `sd mount` serves its view: the laptop's is the one to use; the nas's is kept out of the way. */
  mountpoint: string;
}

const devicesDir = path.join(example, '.devices');
const laptop: DemoDevice = { name: 'laptop', folders: ['Photos', 'Documents', 'Videos'], library: path.join(devicesDir, 'laptop', 'library'), mountpoint };
const nas: DemoDevice = { name: 'nas', folders: ['Movies', 'Archive', 'Inbox'], library: path.join(devicesDir, 'nas', 'library'), mountpoint: path.join(devicesDir, 'nas', 'mnt') };

const children = new Set<ChildProcess>();

function start(device: DemoDevice | undefined, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(sdBin, args, {
    env: { ...process.env, ...env, ...(device ? { SD_LIBRARY: device.library } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Runs `sd ARGS` for a device to the end; its output, and a failure that names the command. */
function sd(device: DemoDevice, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const child = start(device, args, env);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`sd ${args.join(' ')} (${device.name}) failed: ${err.trim() || `exit ${code}`}`)))),
  );
}

/** The first line a child prints on stdout. */
function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout! });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${what} ended before it was ready (exit ${code}): ${err.trim()}`)));
  });
}

/** A path as the user can type it from here: relative below the current folder, else absolute. */
function shown(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel === '' ? '.' : rel.startsWith('..') ? p : rel;
}

async function setUpLibrary(device: DemoDevice): Promise<void> {
  if (fs.existsSync(path.join(device.library, 'library.db'))) {
    await sd(device, ['index']);
    return;
  }
  console.log(`Creating the ${device.name}'s library in ${shown(device.library)}/`);
  fs.mkdirSync(device.library, { recursive: true });
  await sd(device, ['init', '--name', device.name]);
  for (const folder of device.folders) {
    const root = path.join(example, device.name, folder);
    fs.mkdirSync(root, { recursive: true });
    await sd(device, ['location', 'add', root, '--mode', 'deep']);
  }
}

async function paired(a: DemoDevice, b: DemoDevice): Promise<boolean> {
  const devices = JSON.parse(await sd(a, ['--json', 'devices'])) as Array<{ slug: string; revoked: boolean }>;
  return devices.some((d) => d.slug === b.name && !d.revoked);
}

/** Pairs the two as a user would, with `sd pair` on one and its words typed into `sd pair join` on the other. */
async function pair(shower: DemoDevice, joiner: DemoDevice, bootstrap: string): Promise<void> {
  console.log(`Pairing the ${shower.name} and the ${joiner.name} (sd pair, then sd pair join with its 12 words)`);
  const env = { SD_BOOTSTRAP: bootstrap, SD_PAIR_JOIN_TIMEOUT_MS: '60000' };
  const showing = start(shower, ['--json', 'pair'], env);
  const { words } = JSON.parse(await firstLine(showing, 'sd pair')) as { words: string[] };
  const shown = new Promise<void>((resolve, reject) => showing.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sd pair (${shower.name}) failed: exit ${code}`)))));
  await sd(joiner, ['pair', 'join', ...words], env);
  await shown;
}

/** Starts a device's `sd mount`; resolves once it serves its tree. */
async function mount(device: DemoDevice, bootstrap: string): Promise<ChildProcess> {
  fs.mkdirSync(device.mountpoint, { recursive: true });
  const child = start(device, ['mount', device.mountpoint, '--bootstrap', bootstrap]);
  await firstLine(child, `the ${device.name}'s sd mount`);
  // From here on its warnings and errors are the user's to see.
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(`[${device.name}] ${d.toString('utf8')}`));
  child.stdout!.resume();
  return child;
}

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await new Promise((r) => setTimeout(r, 200))) if (check()) return true;
  return check();
}

let stopping: Promise<void> | undefined;

/** Stops every process started here (mounts first, so they unmount), and leaves no mount behind. */
function stopAll(): Promise<void> {
  stopping ??= (async () => {
    const exited = (c: ChildProcess) => new Promise<void>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve())));
    const within = (ms: number, waits: Array<Promise<void>>) => Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, ms))]);
    const mounts = [...children].filter((c) => c.spawnargs.includes('mount'));
    for (const c of mounts) c.kill('SIGINT');
    await within(10_000, mounts.map(exited));
    const rest = [...children];
    for (const c of rest) c.kill(mounts.includes(c) ? 'SIGKILL' : 'SIGINT');
    await within(5_000, rest.map(exited));
    for (const c of children) c.kill('SIGKILL');
    for (const m of [laptop.mountpoint, nas.mountpoint]) if (isMounted(m)) await forceUnmount(m);
  })();
  return stopping;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    console.log('\nStopping the devices…');
    void stopAll().then(() => process.exit(0));
  });
}

async function run(): Promise<void> {
  for (const d of [laptop, nas]) await setUpLibrary(d);
  // sd testnet prints its bootstrap address (127.0.0.1:PORT) as its first line.
  const bootstrap = (await firstLine(start(undefined, ['testnet']), 'sd testnet')).trim();
  if (!(await paired(laptop, nas))) await pair(laptop, nas, bootstrap);
  for (const d of [nas, laptop]) {
    const child = await mount(d, bootstrap);
    child.on('exit', (code) => {
      if (stopping) return;
      process.stderr.write(`demo: the ${d.name}'s sd mount stopped (exit ${code}); stopping the demo\n`);
      void stopAll().then(() => process.exit(1));
    });
  }
  const rel = shown(mountpoint);
  console.log(`Mounted at ${mountpoint}: the laptop's view of every device. Waiting for the nas to connect…`);
  const seen = await waitFor(() => fs.existsSync(path.join(mountpoint, 'nas', 'Movies', 'orbit.y4m')), 60_000);
  const lib = shown(laptop.library);
  console.log(`${seen ? 'The nas is connected.' : 'The nas has not shown up yet (it will, once it connects).'} Try, in another terminal:
  ls ${rel}                                   # laptop and nas, side by side
  ls -l ${rel}/nas/Movies ${rel}/laptop/Videos
  mpv ${rel}/nas/Movies/orbit.y4m              # (or ffplay, vlc) a video on the nas, played from the laptop
  cp ${rel}/laptop/Documents/notes.md ${rel}/nas/Inbox/
  ls ${shown(path.join(example, 'nas', 'Inbox'))}     # ...now on the nas's own disk
  getfattr -d "${rel}/nas/Archive/2024 Holiday/sunset.png"   # user.sd.copies: 2 (the laptop has it too)
  ls ${rel}/.guardian/at-risk                  # files with fewer verified copies than they want
  setfattr -n user.sd.tags -v "garden,2025" ${rel}/laptop/Photos/2025/garden.png; ls -l ${rel}/.tags/garden
  export SD_LIBRARY=${lib}
  bin/sd devices                  bin/sd jobs
  bin/sd search sunset            bin/sd dupes
  bin/sd search fetching          # a word inside the nas's readme.txt, found on the laptop
  ls "${rel}/.search/tax documents"   # the letter in Documents/taxes, by its folder and its words
  bin/sd guardian status          bin/sd guardian at-risk
  bin/sd cp --preview sd://laptop/Photos/2025/garden.png sd://laptop/Documents/
Press Ctrl-C to stop both devices and unmount.`);
}

run().catch(async (err: unknown) => {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
  await stopAll();
  process.exit(1);
});
