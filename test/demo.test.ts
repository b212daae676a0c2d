// `npm start`'s demo: two devices (laptop and nas), each its own library and `sd mount`
// process, paired on a local DHT without typing; the laptop's view shows both, a video of
// the nas reads from the laptop's view, a file copied into the nas's folder lands on the
// nas's disk, and Ctrl-C leaves no mount and no process behind. Run twice, as a user would.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type * as Tap from 'tap';
import { forceUnmount, isMounted } from '../src/fuse/mount.js';
import { REPO_ROOT, cleanEnv, tempDir, waitFor } from './helpers.js';

const DEMO = path.join(REPO_ROOT, 'build', 'scripts', 'demo.js');

interface Demo {
  child: ChildProcess;
  out(): string;
  exited: Promise<number | null>;
}

/** Starts the demo over a copy of the sample folders; resolves once it says what to try. */
async function startDemo(t: Tap.Test, example: string): Promise<Demo> {
  const child = spawn(process.execPath, [DEMO, '--example', example], { cwd: example, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    }
    for (const m of [path.join(example, 'sd'), path.join(example, '.devices/nas/mnt')]) if (isMounted(m)) await forceUnmount(m);
  });
  const ready = await waitFor(() => out.includes('Press Ctrl-C') || child.exitCode !== null, 120_000, 100);
  if (!ready || child.exitCode !== null) throw new Error(`the demo did not come up:\n${out}`);
  return { child, out: () => out, exited };
}

/** Processes whose parent is `pid` (the demo's devices and DHT). */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops the demo as Ctrl-C does; asserts it exits 0 and leaves nothing behind. */
async function stopDemo(t: Tap.Test, demo: Demo, example: string, signal: NodeJS.Signals): Promise<void> {
  const started = childrenOf(demo.child.pid!);
  t.ok(started.length >= 3, `the demo runs its devices and DHT as processes of their own (${started.length})`);
  demo.child.kill(signal);
  const code = await Promise.race([demo.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 30_000))]);
  t.equal(code, 0, `${signal} stops the demo`);
  t.notOk(isMounted(path.join(example, 'sd')) || isMounted(path.join(example, '.devices/nas/mnt')), 'nothing is left mounted');
  t.ok(await waitFor(() => started.every((pid) => !alive(pid)), 5000), 'and no process it started is left running');
}

t.test('npm start runs a laptop and a nas in one tree; Ctrl-C leaves nothing behind; a second start works', async (t) => {
  const example = fs.realpathSync(tempDir(t, 'sd-demo-'));
  for (const device of ['laptop', 'nas']) fs.cpSync(path.join(REPO_ROOT, 'mnt-example', device), path.join(example, device), { recursive: true });
  const view = path.join(example, 'sd');

  const first = await startDemo(t, example);
  t.match(first.out(), /Pairing the laptop and the nas/, 'the first start pairs the two devices itself');
  t.match(first.out(), /The nas is connected/, 'and says when the nas has connected');
  t.same(fs.readdirSync(view).sort(), ['.content', '.guardian', '.search', '.tags', 'laptop', 'nas'], 'the mount shows both devices');
  const video = 'Movies/orbit.y4m';
  t.ok(fs.readFileSync(path.join(view, 'nas', video)).equals(fs.readFileSync(path.join(example, 'nas', video))), "the nas's video reads byte for byte from the laptop's view");
  fs.copyFileSync(path.join(view, 'laptop/Documents/notes.md'), path.join(view, 'nas/Inbox/notes.md'));
  t.ok(await waitFor(() => fs.existsSync(path.join(example, 'nas/Inbox/notes.md')), 30_000, 200), "a file copied into the nas's folder lands on the nas's disk");
  t.equal(fs.readFileSync(path.join(example, 'nas/Inbox/notes.md'), 'utf8'), fs.readFileSync(path.join(example, 'laptop/Documents/notes.md'), 'utf8'), 'with its bytes');
  await stopDemo(t, first, example, 'SIGINT');

  const second = await startDemo(t, example);
  t.notMatch(second.out(), /Pairing/, 'the second start keeps the libraries and the pairing');
  t.ok(await waitFor(() => fs.existsSync(path.join(view, 'nas/Inbox/notes.md')), 30_000, 200), 'and shows what the first one left on the nas');
  await stopDemo(t, second, example, 'SIGTERM');
});
