// Issue 15's ten devices: --devices `sd mount` processes on a local testnet on this
// machine, each with its own library of --entries entries (small files, content mode).
// They pair into one group, each new device with ONE member picked at random (the group
// introduces it to the rest); the bench times the pairing, until every device is paired with
// every other, and until every device holds every other's whole tree. Then it writes a new
// file on a random device, --changes times, and times until each other device lists it
// through its mount (p50, p95, max; aim p95 ≤ 2 s), and reports each process's memory.
// Files are 16–512 bytes, cut from --contents distinct contents per device: every file gets
// its content id (content mode), while the extraction phase, which reads each distinct
// content once, stays short (measured: ~70 contents/s on this loaded machine, which made
// 100k distinct contents take ~25 min a device).
// Run: node build/scripts/bench/devices.js [--devices 10] [--entries 100000] [--contents 1000] [--changes 30] [--gap S] [--json] [--keep]
//   Each mount's log (SD_LOG=info or debug for more than warnings) is written to dev-NN/mount.log in the
//   temporary folder (kept with --keep); a stage that times out names the trees each device holds short.
//   [--profile DIR]: each mount writes a V8 CPU profile (--cpu-prof) into DIR when it stops (its last
//   seconds are the changes).
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import createTestnet from 'hyperdht/testnet.js';
import { forceUnmount, isMounted } from '../../src/fuse/mount.js';
import { Report, cpuSecondsOf, formatCount, makeTempDir, numberArg, parseArgs, seededRandom, timeCommand, SD_BIN, SD_MAIN, sdEnv } from './common.js';
import { memoryOf, pairThroughCli, stopChild } from './mounts.js';

const args = parseArgs(process.argv.slice(2), ['profile']);
const deviceCount = numberArg(args, 'devices', 10);
const entriesPer = numberArg(args, 'entries', 100_000);
const changeCount = numberArg(args, 'changes', 30);
const contentsPer = numberArg(args, 'contents', 1000);
/** Seconds between one change being listed everywhere and the next (0: at once). */
const changeGapSeconds = numberArg(args, 'gap', 0);
/** How long a change or a stage may take before the bench gives up on it. */
const changeTimeoutMs = 30_000;
const stageTimeoutMs = numberArg(args, 'stage-timeout', 1800) * 1000;
const report = new Report('devices', args.json);
const tmp = makeTempDir('sdfs-bench-devices-', args.keep);
const main = SD_MAIN;
const random = seededRandom(15);
const childEnv: NodeJS.ProcessEnv = sdEnv();
/** Node flags of the mounts: a CPU profile each when --profile DIR is given. */
const profileDir = args.words.get('profile');
const mountNodeFlags = profileDir ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(profileDir)] : [];

interface Device {
  name: string;
  library: string;
  root: string;
  mnt: string;
  /** This device's own entries, as its library counts them (what a peer must end up holding). */
  entries: number;
  id: string;
  child?: ChildProcess;
  /** The last few KB the mount wrote to stderr (for errors). */
  stderr: string;
}

const devices: Device[] = [];
const seconds = (since: number) => (performance.now() - since) / 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sd(device: Device, argv: string[]) {
  return timeCommand(process.execPath, [main, '--library', device.library, ...argv], { captureStdout: true });
}

/** Runs `fn` over every item, `width` at a time (two cores: more only adds contention). */
async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

/** Polls `check` every `everyMs` until true; throws with `what` after `timeoutMs`. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = stageTimeoutMs, everyMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not done within ${timeoutMs / 1000} s`);
    await sleep(everyMs);
  }
}

/** One read-only query on a device's library (the running mount writes it; WAL lets us read). */
function query<T>(device: Device, fn: (db: Database.Database) => T): T {
  const db = new Database(path.join(device.library, 'library.db'), { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/**
 * `entries` entries below `root`: folders of 100 files, each file 16–512 bytes cut from one
 * of `contents` random contents (this device's own: no content is shared between devices).
 */
function generateFiles(root: string, entries: number, contents: number): void {
  const folders = Math.max(1, Math.round(entries / 101));
  const files = entries - folders;
  const pool = Array.from({ length: contents }, () => crypto.randomBytes(16 + crypto.randomInt(497)));
  for (let f = 0; f < folders; f++) fs.mkdirSync(path.join(root, `folder-${f}`), { recursive: true });
  for (let k = 0; k < files; k++) fs.writeFileSync(path.join(root, `folder-${k % folders}`, `file-${k}.dat`), pool[k % contents]!);
}

/** A library with one location of small files, indexed in content mode; a `changes` folder for the changes later. */
async function makeDevice(i: number): Promise<void> {
  const name = `dev-${String(i).padStart(2, '0')}`;
  const base = path.join(tmp, name);
  const d: Device = { name, library: path.join(base, 'library'), root: path.join(base, 'data'), mnt: path.join(base, 'mnt'), entries: 0, id: '', stderr: '' };
  generateFiles(d.root, entriesPer, contentsPer);
  fs.mkdirSync(path.join(d.root, 'changes'));
  fs.mkdirSync(d.mnt);
  await sd(d, ['init', '--name', name]);
  await sd(d, ['location', 'add', d.root, '--name', 'data', '--mode', 'content']);
  Object.assign(d, query(d, (db) => db.prepare("SELECT d.id, (SELECT count(*) FROM entries e WHERE e.device_id = d.id) AS entries FROM devices d WHERE is_local = 1").get() as { id: string; entries: number }));
  devices[i] = d;
}

/** Starts the device's `sd mount` and waits until its own tree lists through it. */
async function mount(d: Device, bootstrap: string): Promise<void> {
  // Through bin/sd, as a user starts it (it gives the mount its node flags); a profile's flags ride in NODE_OPTIONS.
  const env = mountNodeFlags.length ? { ...childEnv, NODE_OPTIONS: mountNodeFlags.join(' ') } : childEnv;
  const child = spawn(SD_BIN, ['--library', d.library, 'mount', d.mnt, '--bootstrap', bootstrap], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  d.child = child;
  // The whole log stays beside the library (kept with --keep; SD_LOG=debug for more).
  const logFile = fs.createWriteStream(path.join(path.dirname(d.library), 'mount.log'));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    d.stderr = (d.stderr + s).slice(-4000);
    logFile.write(s);
  });
  child.once('exit', () => logFile.end());
  await until(`${d.name}'s mount`, () => {
    if (child.exitCode !== null) throw new Error(`${d.name}'s sd mount exited: ${d.stderr}`);
    try {
      return fs.readdirSync(path.join(d.mnt, d.name, 'data')).length > 0;
    } catch {
      return false;
    }
  }, 300_000, 50);
}

/** Devices `d` is paired with (not revoked). */
function membersOf(d: Device): number {
  return query(d, (db) => db.prepare('SELECT count(*) FROM devices WHERE is_local = 0 AND revoked_at IS NULL AND paired_at IS NOT NULL').pluck().get() as number);
}

/** Which of the others' trees `viewer` holds short: `viewer←owner entries/expected (applied blocks of the owner's log)`. */
function shortTrees(viewer: Device): string[] {
  return query(viewer, (db) => {
    const count = db.prepare('SELECT count(*) FROM entries WHERE device_id = ? AND remote_id IS NOT NULL').pluck();
    const applied = db.prepare('SELECT applied_length FROM device_logs WHERE device_id = ?').pluck();
    return devices
      .filter((o) => o !== viewer && (count.get(o.id) as number) < o.entries)
      .map((o) => `${viewer.name}←${o.name} ${count.get(o.id) as number}/${o.entries} entries (log applied to ${(applied.get(o.id) as number | undefined) ?? 'no mirror'})`);
  });
}

/** Whether `viewer` holds every entry of every other device (its mirrors of their logs are complete). */
function holdsAllTrees(viewer: Device): boolean {
  return query(viewer, (db) => {
    const count = db.prepare('SELECT count(*) FROM entries WHERE device_id = ? AND remote_id IS NOT NULL').pluck();
    return devices.every((o) => o === viewer || (count.get(o.id) as number) >= o.entries);
  });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** The share of one core each mount used over `ms` (what they do in the background, unasked). */
async function cpuShares(ms: number): Promise<number[]> {
  const before = devices.map((d) => cpuSecondsOf(d.child!.pid!));
  await sleep(ms);
  return devices.map((d, i) => (cpuSecondsOf(d.child!.pid!) - before[i]!) / (ms / 1000));
}

/**
 * Polls a device's library until its index holds the owner's new file: on the owner, the
 * watcher's and indexer's part of a change; on another device, until its mirror applied it.
 */
async function inIndex(viewer: Device, owner: Device, name: string, started: number): Promise<number | undefined> {
  const db = new Database(path.join(viewer.library, 'library.db'), { readonly: true, fileMustExist: true });
  try {
    // By the owner's `changes` folder, found from its location's root: indexed lookups only.
    // (A join on the folder's name scanned every entry, 0.4 s at a million, and ten of them
    // every 20 ms kept this process busy and its stat timings late.)
    const folder = db.prepare(`SELECT e.id FROM locations l JOIN entries e ON e.parent_id = l.root_entry_id AND e.name = 'changes'
                               WHERE l.device_id = ?`).pluck().get(owner.id) as number | undefined;
    if (folder === undefined) throw new Error(`${viewer.name}'s library has no folder 'changes' of ${owner.name}`);
    const row = db.prepare('SELECT 1 FROM entries WHERE parent_id = ? AND name = ?');
    while (performance.now() - started < changeTimeoutMs) {
      if (row.get(folder, name)) return (performance.now() - started) / 1000;
      await sleep(20);
    }
    return undefined;
  } finally {
    db.close();
  }
}

/**
 * Writes a new file on a random device and times until every other device lists it through
 * its mount (a stat every 20 ms); a device that does not within changeTimeoutMs counts so.
 * Also when the owner's own index had it (the rest is the trip to the others).
 */
async function timeChanges(): Promise<{ latencies: number[]; missed: number; indexed: number[]; mirrored: number[] }> {
  const latencies: number[] = [];
  const indexed: number[] = [];
  const mirrored: number[] = [];
  let missed = 0;
  for (let k = 0; k < changeCount; k++) {
    if (k > 0) await sleep(changeGapSeconds * 1000);
    const owner = devices[Math.floor(random() * devices.length)]!;
    const name = `change-${k}.txt`;
    const started = performance.now();
    fs.writeFileSync(path.join(owner.root, 'changes', name), `change ${k} on ${owner.name}\n`);
    const atOwner = inIndex(owner, owner, name, started).then((s) => void (s !== undefined && indexed.push(s)));
    const others = devices.filter((d) => d !== owner);
    const inMirrors = others.map((viewer) => inIndex(viewer, owner, name, started).then((s) => void (s !== undefined && mirrored.push(s))));
    await Promise.all([atOwner, ...inMirrors, ...others.map(async (viewer) => {
      const file = path.join(viewer.mnt, owner.name, 'data', 'changes', name);
      for (;;) {
        const exists = await fs.promises.stat(file).then(() => true, () => false);
        const ms = performance.now() - started;
        if (exists) return void latencies.push(ms / 1000);
        if (ms > changeTimeoutMs) return void missed++;
        await sleep(20);
      }
    })]);
  }
  const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
  return { latencies: sorted(latencies), missed, indexed: sorted(indexed), mirrored: sorted(mirrored) };
}

async function stopAll(): Promise<void> {
  await Promise.all(devices.filter(Boolean).map(async (d) => {
    if (d.child) await stopChild(d.child, d.mnt);
    else if (isMounted(d.mnt)) await forceUnmount(d.mnt);
  }));
}

async function run(): Promise<void> {
  report.noteMachine('start');
  report.setup.devices = deviceCount;
  report.setup.entriesPerDevice = entriesPer;
  report.setup.contentsPerDevice = contentsPer;

  report.progress(`making ${deviceCount} libraries of ${formatCount(entriesPer)} entries (content mode)`);
  let started = performance.now();
  await inParallel([...Array(deviceCount).keys()], 2, makeDevice);
  const setupSeconds = seconds(started);
  const total = devices.reduce((n, d) => n + d.entries, 0);
  report.figure({ name: 'setup: files and index', value: setupSeconds, unit: 's', note: `${formatCount(total)} entries over ${deviceCount} libraries, generated and indexed two at a time (${formatCount(total / setupSeconds)} entries/s)` });

  const testnet = await createTestnet(3, { host: '127.0.0.1' });
  try {
    const bootstrap = testnet.bootstrap.map((b) => `${b.host}:${b.port}`).join(',');
    report.progress('starting the mounts');
    started = performance.now();
    await inParallel(devices, 2, (d) => mount(d, bootstrap));
    report.figure({ name: 'setup: all mounts up', value: seconds(started), unit: 's', note: 'two at a time' });

    report.progress('pairing: each new device with one member picked at random');
    started = performance.now();
    const pairedWith: string[] = [];
    for (let i = 1; i < devices.length; i++) {
      const member = devices[Math.floor(random() * i)]!;
      await pairThroughCli(member.library, devices[i]!.library, bootstrap);
      pairedWith.push(`${devices[i]!.name}→${member.name}`);
    }
    const pairSeconds = seconds(started);
    report.note(`pairings (newcomer→member): ${pairedWith.join(' ')}`);
    report.figure({ name: 'pairing, all devices', value: pairSeconds, unit: 's', note: `${deviceCount - 1} pairings, ${(pairSeconds / Math.max(1, deviceCount - 1)).toFixed(2)} s each` });

    report.progress('waiting until every device is paired with every other');
    const paired = performance.now();
    await until('the group', () => devices.every((d) => membersOf(d) === deviceCount - 1), stageTimeoutMs, 250);
    report.figure({ name: 'group complete', value: seconds(paired), unit: 's', note: `after the last pairing, every device paired with the ${deviceCount - 1} others` });

    report.progress('waiting until every device holds every tree');
    await until('every tree everywhere', () => devices.every(holdsAllTrees), stageTimeoutMs, 2000).catch((err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}; short: ${devices.flatMap(shortTrees).join(', ')}`);
    });
    const treesSeconds = seconds(paired);
    for (const d of devices) {
      const listed = fs.readdirSync(d.mnt).filter((n) => !n.startsWith('.'));
      if (listed.length !== deviceCount) throw new Error(`${d.name}'s mount lists ${listed.length} devices, not ${deviceCount}: ${listed.join(' ')}`);
    }
    const mirroredEntries = total * (deviceCount - 1);
    report.figure({ name: 'all trees everywhere', value: treesSeconds, unit: 's', note: `after the last pairing: ${formatCount(mirroredEntries)} entries applied in all (${formatCount(mirroredEntries / treesSeconds)} entries/s), each mount lists ${deviceCount} devices` });

    const idle = await cpuShares(5000);
    report.figure({ name: 'CPU of all mounts, unasked', value: idle.reduce((n, x) => n + x, 0), unit: 'cores', note: `over 5 s before the changes, each ${idle.map((x) => x.toFixed(2)).join(', ')}` });
    report.progress(`${changeCount} changes on random devices`);
    const cpuBefore = devices.map((d) => cpuSecondsOf(d.child!.pid!));
    const changesStarted = performance.now();
    const { latencies, missed, indexed, mirrored } = await timeChanges();
    const cpuUsed = devices.map((d, i) => cpuSecondsOf(d.child!.pid!) - cpuBefore[i]!);
    report.figure({ name: 'CPU per change, all mounts', value: cpuUsed.reduce((n, x) => n + x, 0) / changeCount, unit: 's', note: `CPU seconds of the ${deviceCount} mounts while the changes ran (${seconds(changesStarted).toFixed(1)} s), per change` });
    if (indexed.length > 0) report.figure({ name: "change in owner's index, p50", value: percentile(indexed, 50), unit: 's', note: `p95 ${percentile(indexed, 95).toFixed(3)} s, max ${indexed.at(-1)!.toFixed(3)} s: the watcher's and indexer's part, before the change leaves the device` });
    if (mirrored.length > 0) report.figure({ name: 'change in the mirrors, p50', value: percentile(mirrored, 50), unit: 's', note: `p95 ${percentile(mirrored, 95).toFixed(3)} s, max ${mirrored.at(-1)!.toFixed(3)} s: applied to the other devices' libraries (the mounts list from there)` });
    const note = `${latencies.length} listings of ${changeCount} new files on the ${deviceCount - 1} other mounts${missed ? `; ${missed} not listed within ${changeTimeoutMs / 1000} s` : ''}`;
    if (latencies.length > 0) {
      report.figure({ name: 'change listed, p50', value: percentile(latencies, 50), unit: 's', note });
      report.figure({ name: 'change listed, p95', value: percentile(latencies, 95), unit: 's', aim: { op: '<=', value: 2 } });
      report.figure({ name: 'change listed, max', value: latencies.at(-1)!, unit: 's' });
    }
    if (missed > 0) report.figure({ name: 'changes not listed', value: missed, unit: 'listings', aim: { op: '<=', value: 0 } });

    const memory = devices.map((d) => memoryOf(d.child!.pid!));
    const mbOf = (b: number) => b / 1e6;
    const nowTotal = memory.reduce((n, m) => n + m.now, 0);
    const peaks = memory.map((m) => m.peak).sort((a, b) => a - b);
    report.figure({ name: 'RSS of all sd mounts, now', value: mbOf(nowTotal), unit: 'MB', note: `${(nowTotal / os.totalmem() * 100).toFixed(1)} % of the machine's ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; each ${memory.map((m) => mbOf(m.now).toFixed(0)).join(', ')} MB`, aim: { op: '<=', value: mbOf(os.totalmem()) / 4 } });
    report.figure({ name: 'RSS of all, sum of peaks', value: mbOf(peaks.reduce((n, p) => n + p, 0)), unit: 'MB', note: `per process peak (VmHWM) ${mbOf(peaks[0]!).toFixed(0)}–${mbOf(peaks.at(-1)!).toFixed(0)} MB` });
    report.figure({ name: 'RSS per process, peak', value: mbOf(peaks.at(-1)!), unit: 'MB', note: `the largest; each holds ${formatCount(entriesPer)} own + ${formatCount(entriesPer * (deviceCount - 1))} mirrored entries`, aim: { op: '<=', value: 200 } });
  } finally {
    await stopAll();
    await testnet.destroy();
  }
  report.noteMachine('end');
}

run()
  .catch(async (err: unknown) => {
    process.stderr.write(`devices bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    for (const d of devices.filter(Boolean)) if (d.stderr) process.stderr.write(`--- ${d.name}'s mount, last lines:\n${d.stderr.slice(-1500)}\n`);
    process.exitCode = 1;
    await stopAll();
  })
  .finally(() => report.finish());
