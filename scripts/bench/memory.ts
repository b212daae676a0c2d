// Memory and disk cost of a big index: peak RSS of a process that does nothing but a
// shallow index of 1,000,000 generated entries, and the library's size on disk after a
// WAL checkpoint. The tree is generated here; the index runs in a child process so its
// RSS is the indexer's alone.
// Run: node build/scripts/bench/memory.js [--json] [--files 900000] [--folders 100000] [--keep]
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DATABASE_FILE, initLibrary } from '../../src/vdfs/library.js';
import { EntryStore } from '../../src/vdfs/entries.js';
import { indexLocation } from '../../src/vdfs/indexer/indexer.js';
import { addLocation } from '../../src/vdfs/locations.js';
import { Report, RssSampler, fileSize, flushToDisk, formatCount, formatNumber, generateTree, makeTempDir, numberArg, parseArgs, peakRssBytes } from './common.js';

const AIM_RSS_MB = 300;
const AIM_DB_MB = 250;

interface WorkerResult {
  baselineRss: number;
  sampledPeakRss: number;
  samples: number;
  kernelPeakRss: number | undefined;
  seconds: number;
  scanned: number;
  dbBytes: number;
  walBytes: number;
  tables: Array<{ name: string; bytes: number }>;
}

const args = parseArgs();
if (args.positional[0] === 'worker') {
  process.stdout.write(JSON.stringify(runWorker(args.positional[1]!, args.positional[2]!)) + '\n');
} else {
  await runParent();
}

/** The child: index the tree into a fresh library, sampling RSS all along. */
function runWorker(treeDir: string, libDir: string): WorkerResult {
  const sampler = new RssSampler().start();
  const { library } = initLibrary(libDir, 'Bench Box');
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: treeDir, name: 'tree', mode: 'shallow' });
  const baselineRss = process.memoryUsage.rss();
  const started = performance.now();
  // indexLocation is synchronous: the timer cannot fire inside it, the progress callback can.
  const summary = indexLocation(library, location, { onProgress: () => sampler.sample() });
  const seconds = (performance.now() - started) / 1000;
  sampler.stop();
  library.db.pragma('wal_checkpoint(TRUNCATE)');
  const tables = library.db
    .prepare(`SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC`)
    .all() as Array<{ name: string; bytes: number }>;
  library.close();
  const dbPath = path.join(libDir, DATABASE_FILE);
  return {
    baselineRss,
    sampledPeakRss: sampler.peak,
    samples: sampler.samples,
    kernelPeakRss: peakRssBytes(),
    seconds,
    scanned: summary.counts.scanned,
    dbBytes: fileSize(dbPath),
    walBytes: fileSize(`${dbPath}-wal`),
    tables,
  };
}

async function runParent(): Promise<void> {
  const files = numberArg(args, 'files', 900_000);
  const folders = numberArg(args, 'folders', 100_000);
  const report = new Report('memory', args.json);
  const tmp = makeTempDir('sdfs-bench-memory-', args.keep);
  const treeDir = path.join(tmp, 'tree');
  const libDir = path.join(tmp, 'lib');

  report.progress(`generating ${files.toLocaleString('en-US')} files in ${folders.toLocaleString('en-US')} folders under ${tmp}`);
  report.noteMachine('start');
  const tree = generateTree(treeDir, { files, folders, fanout: 10, minBytes: 0, maxBytes: 16 });
  const synced = await flushToDisk();
  report.setup.tree = { files, folders, fanout: 10, bytes: tree.bytes, generateSeconds: tree.seconds };
  report.note(`tree: ${files.toLocaleString('en-US')} tiny files (0–16 B) in ${folders.toLocaleString('en-US')} folders (fanout 10), ${tree.entries.toLocaleString('en-US')} entries, generated in ${tree.seconds.toFixed(1)} s, synced to disk in ${synced.toFixed(1)} s`);

  report.progress('shallow index in a child process');
  const self = fileURLToPath(import.meta.url);
  const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, self, 'worker', treeDir, libDir], {
    maxBuffer: 16 << 20,
    env: { ...process.env, SD_LOG: 'silent' },
  });
  const r = JSON.parse(stdout) as WorkerResult;
  report.setup.worker = r;
  const peak = Math.max(r.sampledPeakRss, r.kernelPeakRss ?? 0);
  report.figure({
    name: 'peak RSS',
    value: peak / 1e6,
    unit: 'MB',
    note: `${formatCount(r.scanned)} entries shallow in ${r.seconds.toFixed(1)} s (${formatNumber(r.scanned / r.seconds)} entries/s); sampled peak ${(r.sampledPeakRss / 1e6).toFixed(0)} MB over ${formatCount(r.samples)} samples, kernel VmHWM ${r.kernelPeakRss === undefined ? 'n/a' : (r.kernelPeakRss / 1e6).toFixed(0) + ' MB'}, ${(r.baselineRss / 1e6).toFixed(0)} MB before indexing`,
    aim: { op: '<=', value: AIM_RSS_MB },
  });
  const top = r.tables.slice(0, 6).map((t) => `${t.name} ${(t.bytes / 1e6).toFixed(0)}`).join(', ');
  report.figure({
    name: 'database size',
    value: (r.dbBytes + r.walBytes) / 1e6,
    unit: 'MB',
    note: `library.db ${(r.dbBytes / 1e6).toFixed(1)} MB + -wal ${(r.walBytes / 1e6).toFixed(1)} MB after wal_checkpoint(TRUNCATE); ${(r.dbBytes / r.scanned).toFixed(0)} B/entry; largest (MB): ${top}`,
    aim: { op: '<=', value: AIM_DB_MB },
  });
  report.noteMachine('end');
  report.finish();
}
