// Content identity speed over mixed file sizes (files/s and MB/s of content covered by the
// sampled hash), against b3sum hashing the same files whole; and full BLAKE3 of a 1 GiB
// file with fullHashOfFile against `b3sum --num-threads 1`, output checked identical.
// Run: node build/scripts/bench/hash.js [--json] [--files 10000] [--big-mib 1024] [--keep]
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { contentHashOfFile, fullHashOfFile } from '../../src/vdfs/content/identity.js';
import { Report, bestOf, commandExists, flushToDisk, formatCount, formatNumber, gib, makeTempDir, mb, numberArg, parseArgs, seededRandom, timeCommand, timeSync, writeRandomFile } from './common.js';

const AIM_FULL_VS_B3SUM = 0.8;
const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Sizes from 1 KiB to 100 MiB, evenly spread on a log scale inside each decade. A plain
 * log-uniform draw over the whole range averages ~8.7 MiB a file (86 GiB for 10,000), so
 * each decade up holds fewer files, which keeps the total near 2.5 GiB.
 */
const DECADES: ReadonlyArray<{ from: number; to: number; share: number }> = [
  { from: 1 * KiB, to: 10 * KiB, share: 0.45 },
  { from: 10 * KiB, to: 100 * KiB, share: 0.3775 },
  { from: 100 * KiB, to: 1 * MiB, share: 0.15 },
  { from: 1 * MiB, to: 10 * MiB, share: 0.02 },
  { from: 10 * MiB, to: 100 * MiB, share: 0.0025 },
];

function mixedSizes(count: number): number[] {
  const sizes: number[] = [];
  DECADES.forEach((d, i) => {
    const n = i === DECADES.length - 1 ? count - sizes.length : Math.round(count * d.share);
    // [from, to) evenly on a log scale; the last decade also takes its upper end.
    const last = i === DECADES.length - 1;
    for (let k = 0; k < n; k++) {
      const u = last ? (n === 1 ? 1 : k / (n - 1)) : k / n;
      sizes.push(Math.round(d.from * Math.pow(d.to / d.from, u)));
    }
  });
  return sizes;
}

const args = parseArgs();
const fileCount = numberArg(args, 'files', 10_000);
const bigBytes = numberArg(args, 'big-mib', 1024) * MiB;
const report = new Report('hash', args.json);
const tmp = makeTempDir('sdfs-bench-hash-', args.keep);
const mixedDir = path.join(tmp, 'mixed');
const haveB3sum = await commandExists('b3sum');
report.noteMachine('start');

// ---------------------------------------------------------------- data
const random = seededRandom(3);
const pool = crypto.randomBytes(64 * MiB);
const sizes = mixedSizes(fileCount);
// Shuffled, so big and small files are interleaved on disk and in the hashing order.
for (let i = sizes.length - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [sizes[i], sizes[j]] = [sizes[j]!, sizes[i]!];
}
const totalBytes = sizes.reduce((a, b) => a + b, 0);
report.progress(`writing ${fileCount.toLocaleString('en-US')} files (${gib(totalBytes)}) and a ${gib(bigBytes)} file under ${tmp}`);
const files: string[] = [];
const written = timeSync(() => {
  for (let i = 0; i < sizes.length; i++) {
    const dir = path.join(mixedDir, `d${i % 100}`);
    if (i < 100) fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `f${i}.bin`);
    writeRandomFile(file, sizes[i]!, pool, random);
    files.push(file);
  }
});
const bigFile = path.join(tmp, 'big.bin');
writeRandomFile(bigFile, bigBytes, pool, random);
const synced = await flushToDisk();
const countPerDecade = DECADES.map((d, i) => sizes.filter((s) => s >= d.from && (s < d.to || (i === DECADES.length - 1 && s === d.to))).length);
report.setup.mixed = { files: fileCount, bytes: totalBytes, perDecade: countPerDecade, writeSeconds: written.seconds };
report.note(
  `mixed set: ${fileCount.toLocaleString('en-US')} files, ${gib(totalBytes)} in all, 1 KiB–100 MiB log-spread ` +
    `(${countPerDecade.join('/')} files per decade from 1 KiB up), page cache warm, synced to disk in ${synced.toFixed(1)} s`,
);

// ---------------------------------------------------------------- content identity
report.progress('content identity over the mixed set');
// One untimed pass warms the page cache for every sampled range (and the JIT).
for (const f of files) contentHashOfFile(f);
const identity = timeSync(() => {
  let ids = 0;
  for (const f of files) if (contentHashOfFile(f)) ids++;
  return ids;
});
report.figure({
  name: 'content identity',
  value: fileCount / identity.seconds,
  unit: 'files/s',
  note: `${formatCount(identity.value)} ids in ${identity.seconds.toFixed(3)} s`,
});
report.figure({
  name: 'content identity covered',
  value: mb(totalBytes) / identity.seconds,
  unit: 'MB/s of content',
  note: `${gib(totalBytes)} covered by sampled hashes`,
});
if (haveB3sum) {
  report.progress('b3sum --num-threads 1 over the mixed set (whole files)');
  const rel = files.map((f) => path.relative(mixedDir, f));
  await timeCommand('b3sum', ['--num-threads', '1', ...rel], { cwd: mixedDir });
  const whole = await bestOf(2, () => timeCommand('b3sum', ['--num-threads', '1', ...rel], { cwd: mixedDir }));
  report.figure({
    name: 'content identity vs b3sum',
    value: whole.seconds / identity.seconds,
    unit: '× faster than whole-file b3sum',
    note: `b3sum --num-threads 1 over the same files: ${whole.seconds.toFixed(2)} s, ${formatNumber(mb(totalBytes) / whole.seconds)} MB/s`,
  });
}

// ---------------------------------------------------------------- full hash
report.progress(`full BLAKE3 of the ${gib(bigBytes)} file`);
fullHashOfFile(bigFile); // warm: the file is in the page cache for both sides
const full = await bestOf(3, () => {
  const cpu = process.cpuUsage();
  const r = timeSync(() => fullHashOfFile(bigFile));
  const used = process.cpuUsage(cpu);
  return { seconds: r.seconds, hex: r.value, cpuSeconds: (used.user + used.system) / 1e6 };
});
report.figure({
  name: 'full hash',
  value: mb(bigBytes) / full.seconds,
  unit: 'MB/s',
  note: `fullHashOfFile, ${gib(bigBytes)} in ${full.seconds.toFixed(3)} s (${full.cpuSeconds.toFixed(3)} s of CPU), best of 3, warm cache`,
});
if (haveB3sum) {
  await timeCommand('b3sum', ['--num-threads', '1', bigFile]);
  const ref = await bestOf(3, () => timeCommand('b3sum', ['--num-threads', '1', bigFile], { captureStdout: true }));
  const refHex = ref.stdout.split(/\s+/)[0] ?? '';
  const same = refHex === full.hex;
  report.figure({
    name: 'full hash vs b3sum',
    value: ref.seconds / full.seconds,
    unit: '× b3sum speed',
    note: `b3sum --num-threads 1: ${ref.seconds.toFixed(3)} s, ${formatNumber(mb(bigBytes) / ref.seconds)} MB/s; hex ${same ? 'identical' : `DIFFERS (${full.hex} vs ${refHex})`}`,
    aim: { op: '>=', value: AIM_FULL_VS_B3SUM },
  });
  if (!same) process.exitCode = 1;
} else {
  report.note('b3sum is not installed (apt-get install b3sum): the full-hash and whole-file references are skipped');
}
report.noteMachine('end');
report.finish();
