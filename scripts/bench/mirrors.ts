// Issue 15's memory bound: the peak resident memory of one `sd mount` holding 1M entries of
// its own plus two mirrored devices of 1M entries each, through
//   1. its start on the freshly indexed library,
//   2. the backfill of both peers' trees (both at once, over a local testnet),
//   3. a later start with all three trees, and `ls -R` of the whole mount (every device),
//   4. --minutes of the watcher's work: files created, written, renamed and deleted in its
//      own folder at --rate changes a second, with a burst of a thousand new files in a new
//      folder (removed again later) every five minutes;
// and whether its memory grows over the watcher's time (first five minutes against the last).
// The peers index one shared generated tree, each as its own device (their entries are
// theirs alone); the measured device has a tree of its own, where the watcher works.
// Run: node build/scripts/bench/mirrors.js [--json] [--folders 1000] [--per 1000] [--minutes 60] [--rate 10] [--keep]
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import createTestnet from 'hyperdht/testnet.js';
import { Report, formatCount, generateTree, makeTempDir, numberArg, parseArgs, seededRandom, timeCommand, sdEnv } from './common.js';
import { memoryOf, pairThroughCli, sdRun, settled, startMount, stopChild, type StartedMount } from './mounts.js';

const args = parseArgs();
const folders = numberArg(args, 'folders', 1000);
const per = numberArg(args, 'per', 1000);
const minutes = numberArg(args, 'minutes', 60);
const rate = numberArg(args, 'rate', 10);
const report = new Report('mirrors', args.json);
const tmp = makeTempDir('sdfs-bench-mirrors-', args.keep);
const random = seededRandom(15);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mbOf = (bytes: number) => bytes / 1e6;
const AIM_MB = 200;

interface Device {
  name: string;
  library: string;
  mnt: string;
  /** This device's own entries (what a peer must end up holding). */
  entries: number;
  id: string;
  mount?: StartedMount;
}

function device(name: string): Device {
  return { name, library: path.join(tmp, name, 'library'), mnt: path.join(tmp, name, 'mnt'), entries: 0, id: '' };
}

const big = device('big');
const peers = [device('peer-a'), device('peer-b')];
const all = [big, ...peers];
const bigData = path.join(tmp, 'big', 'data');

function sd(d: Device, argv: string[]): Promise<string> {
  return sdRun(d.library, argv).catch((err: unknown) => {
    throw new Error(`${d.name}: ${err instanceof Error ? err.message : String(err)}`);
  });
}

function query<T>(d: Device, fn: (db: Database.Database) => T): T {
  const db = new Database(path.join(d.library, 'library.db'), { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** A library named after the device with one shallow location `data` at `root`; its id and entry count. */
async function makeLibrary(d: Device, root: string): Promise<void> {
  await sd(d, ['init', '--name', d.name]);
  await sd(d, ['location', 'add', root, '--name', 'data', '--mode', 'shallow']);
  Object.assign(d, query(d, (db) => db.prepare('SELECT d.id, (SELECT count(*) FROM entries e WHERE e.device_id = d.id) AS entries FROM devices d WHERE is_local = 1').get() as { id: string; entries: number }));
}

/** Entries of each peer that `viewer`'s library holds. */
function mirrored(viewer: Device): number[] {
  return query(viewer, (db) => {
    const count = db.prepare('SELECT count(*) FROM entries WHERE device_id = ?').pluck();
    return peers.map((p) => count.get(p.id) as number);
  });
}

/** Samples a process's resident memory every `everyMs` into `samples` (bytes), until stopped. */
function sampleMemory(pid: number, samples: number[], everyMs: number): () => void {
  const timer = setInterval(() => {
    try {
      samples.push(memoryOf(pid).now);
    } catch {
      // the process is gone
    }
  }, everyMs);
  return () => clearInterval(timer);
}

async function lsR(dir: string): Promise<number> {
  return (await timeCommand('sh', ['-c', `ls -R ${dir} > /dev/null`])).seconds;
}

/**
 * The watcher's work, for `seconds`: `rate` changes a second in the measured device's own
 * tree, drawn at random (new file 30 %, write to a file 30 %, rename 20 %, delete 20 %, so
 * the tree stays near its size), and a burst folder of a thousand files every five minutes,
 * removed at the next burst. Returns how many of each it made.
 */
async function watcherWork(seconds: number): Promise<Record<string, number>> {
  const made = { created: 0, written: 0, renamed: 0, deleted: 0, bursts: 0 };
  const folderOf = () => path.join(bigData, `d${Math.floor(random() * folders)}`);
  const fileIn = (dir: string) => {
    const names = fs.readdirSync(dir);
    return names.length ? path.join(dir, names[Math.floor(random() * names.length)]!) : undefined;
  };
  const started = performance.now();
  let lastBurst = started;
  let burst: string | undefined;
  for (let k = 0; (performance.now() - started) / 1000 < seconds; k++) {
    const due = started + (k * 1000) / rate;
    if (due > performance.now()) await sleep(due - performance.now());
    if (performance.now() - lastBurst >= 300_000) {
      if (burst) fs.rmSync(burst, { recursive: true });
      burst = path.join(bigData, `burst-${made.bursts}`);
      fs.mkdirSync(burst);
      for (let f = 0; f < 1000; f++) fs.writeFileSync(path.join(burst, `new-${f}.txt`), `burst ${made.bursts} file ${f}\n`);
      made.bursts++;
      lastBurst = performance.now();
    }
    const dir = folderOf();
    const roll = random();
    if (roll < 0.3) {
      fs.writeFileSync(path.join(dir, `w${k}.txt`), `made at ${k}\n`);
      made.created++;
      continue;
    }
    const file = fileIn(dir);
    if (!file) continue;
    if (roll < 0.6) {
      fs.appendFileSync(file, `written at ${k}\n`);
      made.written++;
    } else if (roll < 0.8) {
      fs.renameSync(file, path.join(folderOf(), `r${k}-${path.basename(file)}`));
      made.renamed++;
    } else {
      fs.rmSync(file);
      made.deleted++;
    }
  }
  return made;
}

/** Files and folders below `root` on disk. */
function countOnDisk(root: string): number {
  let n = 0;
  for (const e of fs.readdirSync(root, { withFileTypes: true })) {
    n++;
    if (e.isDirectory()) n += countOnDisk(path.join(root, e.name));
  }
  return n;
}

/** Waits until the measured device's index counts what is on disk below its location (the watcher caught up). */
async function caughtUp(timeoutMs: number): Promise<number> {
  const started = performance.now();
  const onDisk = countOnDisk(bigData);
  for (;;) {
    const indexed = query(big, (db) => db.prepare('SELECT count(*) FROM entries WHERE device_id = ?').pluck().get(big.id) as number) - 1; // less the location's root
    if (indexed === onDisk) return (performance.now() - started) / 1000;
    if (performance.now() - started > timeoutMs) throw new Error(`the index holds ${indexed} entries below the location, the disk ${onDisk}, ${timeoutMs / 1000} s after the work stopped`);
    await sleep(500);
  }
}

async function run(): Promise<void> {
  report.noteMachine('start');
  report.setup.entriesPerDevice = folders * per + folders;
  report.setup.watcherMinutes = minutes;
  report.setup.changesPerSecond = rate;
  report.progress(`generating two trees of ${formatCount(folders * per)} files`);
  const peerData = path.join(tmp, 'peer-data');
  for (const root of [bigData, peerData]) generateTree(root, { files: folders * per, folders, fanout: folders, minBytes: 0, maxBytes: 0 });
  report.progress('indexing three libraries (shallow)');
  let started = performance.now();
  await makeLibrary(big, bigData);
  for (const p of peers) await makeLibrary(p, peerData);
  report.note(`${all.map((d) => `${d.name} ${formatCount(d.entries)}`).join(', ')} entries, indexed in ${((performance.now() - started) / 1000).toFixed(0)} s`);

  const testnet = await createTestnet(3, { host: '127.0.0.1' });
  try {
    const bootstrap = testnet.bootstrap.map((b) => `${b.host}:${b.port}`).join(',');
    const mountOf = async (d: Device) => {
      d.mount = await startMount(d.mnt, d.name, sdEnv({ SD_LIBRARY: d.library }), ['--bootstrap', bootstrap]);
      return d.mount;
    };
    report.progress(`${big.name}: first start after the index`);
    const first = await mountOf(big);
    await first.upToDate;
    await settled(first.child.pid!);
    const firstMem = memoryOf(first.child.pid!);
    report.figure({ name: 'start, peak', value: mbOf(firstMem.peak), unit: 'MB', note: `first start after the index, ${formatCount(big.entries)} own entries; up in ${first.upSeconds.toFixed(2)} s, ${mbOf(firstMem.now).toFixed(0)} MB once settled`, aim: { op: '<=', value: AIM_MB } });

    report.progress('the peers mount and pair with it: the backfill of both');
    for (const p of peers) await mountOf(p);
    started = performance.now();
    for (const p of peers) await pairThroughCli(big.library, p.library, bootstrap);
    const samples: number[] = [];
    let stopSampling = sampleMemory(first.child.pid!, samples, 250);
    const want = peers.map((p) => p.entries);
    for (;;) {
      const have = mirrored(big);
      if (have.every((n, i) => n >= want[i]!)) break;
      if (performance.now() - started > 1_800_000) throw new Error(`the backfill was not done within 30 min: ${have.join(' and ')} of ${want.join(' and ')} entries`);
      await sleep(1000);
    }
    const backfillSeconds = (performance.now() - started) / 1000;
    stopSampling();
    const backfillMem = memoryOf(first.child.pid!);
    report.figure({ name: 'backfill of both peers, peak', value: mbOf(backfillMem.peak), unit: 'MB', note: `${formatCount(want[0]! + want[1]!)} entries mirrored in ${backfillSeconds.toFixed(0)} s, from the first pairing; ${mbOf(backfillMem.now).toFixed(0)} MB at the end`, aim: { op: '<=', value: AIM_MB } });
    // The peers are such mounts too (1M own, then two trees mirrored), and harder pressed:
    // each built its own log's snapshot on its first start while it backfilled and served.
    const othersOf = (d: Device) => all.filter((o) => o !== d);
    for (const p of peers) {
      const count = () => query(p, (db) => othersOf(p).every((o) => (db.prepare('SELECT count(*) FROM entries WHERE device_id = ?').pluck().get(o.id) as number) >= o.entries));
      while (!count()) {
        if (performance.now() - started > 3_600_000) throw new Error(`${p.name} did not hold the other two trees within an hour of the first pairing`);
        await sleep(1000);
      }
    }
    const peerPeaks = peers.map((p) => memoryOf(p.mount!.child.pid!).peak);
    report.figure({ name: 'the peers, peak', value: mbOf(Math.max(...peerPeaks)), unit: 'MB', note: `${peers.map((p, i) => `${p.name} ${mbOf(peerPeaks[i]!).toFixed(0)} MB`).join(', ')}, once each held the other two trees: a first start after the index, two backfills and serving, at once`, aim: { op: '<=', value: AIM_MB } });
    await stopChild(first.child, big.mnt);

    report.progress(`${big.name}: a later start with three trees, ls -R of the whole mount`);
    const later = await mountOf(big);
    await later.upToDate;
    const lsSeconds = await lsR(big.mnt);
    await settled(later.child.pid!);
    const laterMem = memoryOf(later.child.pid!);
    const trees = fs.readdirSync(big.mnt).filter((n) => !n.startsWith('.'));
    report.figure({ name: 'later start and ls -R, peak', value: mbOf(laterMem.peak), unit: 'MB', note: `up in ${later.upSeconds.toFixed(2)} s; ls -R of ${trees.join(', ')} (${formatCount(big.entries + want[0]! + want[1]!)} entries) in ${lsSeconds.toFixed(1)} s; ${mbOf(laterMem.now).toFixed(0)} MB after`, aim: { op: '<=', value: AIM_MB } });

    report.progress(`${minutes} min of the watcher's work, ${rate} changes a second`);
    const watched: number[] = [];
    stopSampling = sampleMemory(later.child.pid!, watched, 5000);
    const made = await watcherWork(minutes * 60);
    const catchUp = await caughtUp(120_000);
    stopSampling();
    const watchMem = memoryOf(later.child.pid!);
    const fiveMinutes = Math.max(1, Math.round(300 / 5));
    const average = (xs: number[]) => xs.reduce((n, x) => n + x, 0) / Math.max(1, xs.length);
    const early = average(watched.slice(0, fiveMinutes));
    const late = average(watched.slice(-fiveMinutes));
    report.figure({ name: "watcher's work, peak", value: mbOf(watchMem.peak), unit: 'MB', note: `the whole life of this mount (start, ls -R, the work): ${Object.entries(made).map(([k, v]) => `${formatCount(v)} ${k}`).join(', ')} in ${minutes} min; the index caught up ${catchUp.toFixed(1)} s after`, aim: { op: '<=', value: AIM_MB } });
    report.figure({ name: "watcher's work, growth", value: mbOf(late - early), unit: 'MB', note: `mean RSS over the last five minutes (${mbOf(late).toFixed(0)} MB) less the first five (${mbOf(early).toFixed(0)} MB)` });
  } finally {
    for (const d of all) if (d.mount) await stopChild(d.mount.child, d.mnt);
    await testnet.destroy();
  }
  report.noteMachine('end');
}

run()
  .catch(async (err: unknown) => {
    process.stderr.write(`mirrors bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    for (const d of all) if (d.mount?.stderr()) process.stderr.write(`--- ${d.name}'s mount, last lines:\n${d.mount.stderr().slice(-1500)}\n`);
    process.exitCode = 1;
    for (const d of all) if (d.mount) await stopChild(d.mount.child, d.mnt);
  })
  .finally(() => report.finish());
