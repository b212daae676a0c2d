// Indexing speed: shallow index entries/s against `find -printf` over the same tree (both
// with a warm page cache), content index entries/s, and the time of a re-index that
// finds nothing changed (which must write nothing).
// Run: node build/scripts/bench/index.js [--json] [--files 100000] [--folders 10000] [--runs 2] [--keep]
import path from 'node:path';
import { EntryStore } from '../../src/vdfs/entries.js';
import { indexLocation } from '../../src/vdfs/indexer/indexer.js';
import type { IndexSummary } from '../../src/vdfs/indexer/summary.js';
import { initLibrary, type Library } from '../../src/vdfs/library.js';
import { addLocation, type IndexMode, type Location } from '../../src/vdfs/locations.js';
import { Report, bestOf, flushToDisk, formatCount, formatNumber, generateTree, makeTempDir, numberArg, parseArgs, timeCommand } from './common.js';

const AIM_SHALLOW_ENTRIES_PER_S = 50_000;
const AIM_SHALLOW_VS_FIND = 3;

const args = parseArgs();
const files = numberArg(args, 'files', 100_000);
const folders = numberArg(args, 'folders', 10_000);
const runs = Math.max(1, numberArg(args, 'runs', 2));
const report = new Report('index', args.json);
const tmp = makeTempDir('sdfs-bench-index-', args.keep);
const treeDir = path.join(tmp, 'tree');

report.progress(`generating ${files.toLocaleString('en-US')} files in ${folders.toLocaleString('en-US')} folders under ${tmp}`);
report.noteMachine('start');
const tree = generateTree(treeDir, { files, folders, fanout: 10, minBytes: 1, maxBytes: 4096 });
const synced = await flushToDisk();
report.setup.tree = { files, folders, fanout: 10, bytes: tree.bytes, generateSeconds: tree.seconds };
report.note(`tree: ${files.toLocaleString('en-US')} files (1 B–4 KiB random) in ${folders.toLocaleString('en-US')} folders (fanout 10), ${tree.entries.toLocaleString('en-US')} entries, generated in ${tree.seconds.toFixed(1)} s, synced to disk in ${synced.toFixed(1)} s`);

// find: one run to warm the page cache (the indexer meets the same warm cache), then the best of 3.
report.progress('timing find');
const findArgs = [treeDir, '-printf', '%s %T@ %i\n'];
await timeCommand('find', findArgs);
const find = await bestOf(3, () => timeCommand('find', findArgs));

let libraries = 0;
function freshLibrary(mode: IndexMode): { library: Library; location: Location } {
  const { library } = initLibrary(path.join(tmp, `lib-${++libraries}`), 'Bench Box');
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: treeDir, name: 'tree', mode });
  return { library, location };
}

function timedIndex(library: Library, location: Location): { summary: IndexSummary; seconds: number } {
  const started = performance.now();
  const summary = indexLocation(library, location);
  return { summary, seconds: (performance.now() - started) / 1000 };
}

report.progress(`shallow index (best of ${runs}, a fresh library each)`);
const shallow = await bestOf(runs, () => {
  const { library, location } = freshLibrary('shallow');
  const r = timedIndex(library, location);
  library.close();
  return r;
});
const scanned = shallow.summary.counts.scanned;
report.figure({
  name: 'shallow index',
  value: scanned / shallow.seconds,
  unit: 'entries/s',
  note: `${formatCount(scanned)} entries in ${shallow.seconds.toFixed(2)} s, best of ${runs}, fresh library`,
  aim: { op: '>=', value: AIM_SHALLOW_ENTRIES_PER_S },
});
report.figure({
  name: 'shallow index vs find',
  value: shallow.seconds / find.seconds,
  unit: '× find time',
  note: `find -printf '%s %T@ %i\\n' > /dev/null: ${find.seconds.toFixed(3)} s, best of 3, warm cache`,
  aim: { op: '<=', value: AIM_SHALLOW_VS_FIND },
});

report.progress('content index (fresh library)');
const { library, location } = freshLibrary('content');
const content = timedIndex(library, location);
report.figure({
  name: 'content index',
  value: content.summary.counts.scanned / content.seconds,
  unit: 'entries/s',
  note: `${formatCount(content.summary.counts.scanned)} entries, ${formatCount(content.summary.counts.identified)} files identified, in ${content.seconds.toFixed(2)} s; ${(content.seconds / find.seconds).toFixed(1)}× find`,
});

report.progress('unchanged re-index');
const changesBefore = library.db.prepare('SELECT total_changes()').pluck().get() as number;
const again = timedIndex(library, location);
const writes = (library.db.prepare('SELECT total_changes()').pluck().get() as number) - changesBefore;
const c = again.summary.counts;
const unchangedOk = writes === 0 && c.unchanged === c.scanned && c.new + c.modified + c.moved + c.deleted + c.identified === 0;
report.figure({
  name: 'unchanged re-index',
  value: again.seconds,
  unit: 's',
  note: `${formatCount(c.scanned)} entries, ${writes} rows written, ${(again.seconds / find.seconds).toFixed(1)}× find${unchangedOk ? '' : ' — NOT a no-op: ' + JSON.stringify(c)}`,
});
library.close();
report.noteMachine('end');
report.finish();
if (!unchangedOk) process.exitCode = 1;
