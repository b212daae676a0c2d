// The Data Guardian's speed: `sd guardian scrub` (the real CLI, a journaled job) over a set
// of files against `b3sum --num-threads 1` hashing the same files in the same run, page
// cache warm for both; then `sd guardian status` and `sd guardian at-risk` over that library.
// Run: node build/scripts/bench/guardian.js [--json] [--files 200] [--mib 2048] [--keep]
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Report, bestOf, commandExists, formatNumber, gib, makeTempDir, mb, numberArg, parseArgs, seededRandom, timeCommand, writeRandomFile } from './common.js';

const AIM_SCRUB_VS_B3SUM = 0.8;
const AIM_QUERY_SECONDS = 1;
const MiB = 1024 * 1024;
const SD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

const args = parseArgs();
const fileCount = numberArg(args, 'files', 200);
const totalBytes = numberArg(args, 'mib', 2048) * MiB;
const report = new Report('guardian', args.json);
const tmp = makeTempDir('sdfs-bench-guardian-', args.keep);
const data = path.join(tmp, 'data');
const library = path.join(tmp, 'library');
report.noteMachine('start');

report.progress(`writing ${fileCount} files (${gib(totalBytes)}) under ${data}`);
const pool = crypto.randomBytes(64 * MiB);
const random = seededRandom(11);
const files: string[] = [];
for (let i = 0; i < fileCount; i++) {
  const file = path.join(data, `d${i % 10}`, `f${i}.bin`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeRandomFile(file, Math.floor(totalBytes / fileCount), pool, random);
  files.push(file);
}

const sd = (...a: string[]) => timeCommand(process.execPath, [SD, '--library', library, ...a], { captureStdout: true });
for (const a of [['init', '--name', 'bench'], ['location', 'add', data, '--name', 'data']]) await sd(...a);

report.progress('sd guardian scrub, warm cache');
await sd('guardian', 'scrub'); // warms the page cache and records the first checks
const scrub = await bestOf(2, () => sd('guardian', 'scrub'));
report.figure({ name: 'scrub', value: mb(totalBytes) / scrub.seconds, unit: 'MB/s', note: `${fileCount} files, ${gib(totalBytes)} in ${scrub.seconds.toFixed(2)} s (the whole CLI: start, plan, job, checks), best of 2` });
if (await commandExists('b3sum')) {
  const rel = files.map((f) => path.relative(data, f));
  const ref = await bestOf(2, () => timeCommand('b3sum', ['--num-threads', '1', ...rel], { cwd: data }));
  report.figure({
    name: 'scrub vs b3sum',
    value: ref.seconds / scrub.seconds,
    unit: '× b3sum speed',
    note: `b3sum --num-threads 1 over the same files: ${ref.seconds.toFixed(2)} s, ${formatNumber(mb(totalBytes) / ref.seconds)} MB/s`,
    aim: { op: '>=', value: AIM_SCRUB_VS_B3SUM },
  });
} else {
  report.note('b3sum is not installed (apt-get install b3sum): the reference is skipped');
}

for (const what of ['status', 'at-risk'] as const) {
  const r = await bestOf(3, () => sd('--json', 'guardian', what));
  report.figure({ name: `guardian ${what}`, value: r.seconds, unit: 's', note: `${fileCount} files, one device, the whole command (start-up included), best of 3`, aim: { op: '<=', value: AIM_QUERY_SECONDS } });
}
report.noteMachine('end');
report.finish();
