// The watcher's cost under a steady trickle of changes in a big location: CPU seconds of
// the watching process and entries looked at (counts.scanned) per change, and whether the
// index equals the disk after. --build points the watching process at another build (an
// older commit's) to compare.
// Run: node build/scripts/bench/watcher-names.js [--folders 1000] [--per 1000] [--seconds 60] [--rate 10]
//        [--build DIR]... [--keep]   (each --build is run in turn on the same tree; default this build)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cpuSecondsOf, makeTempDir, numberArg, parseArgs, seededRandom } from './common.js';

const THIS_BUILD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

if (process.argv[2] === '--child') await child(process.argv[3]!, process.argv[4]!);
else await main();

/** The watching process: a watcher on the library's one location, reporting every applied batch. */
async function child(buildRoot: string, libraryDir: string): Promise<void> {
  const { openLibrary } = (await import(path.join(buildRoot, 'src/vdfs/library.js'))) as typeof import('../../src/vdfs/library.js');
  const { listLocations } = (await import(path.join(buildRoot, 'src/vdfs/locations.js'))) as typeof import('../../src/vdfs/locations.js');
  const { startWatcher } = (await import(path.join(buildRoot, 'src/vdfs/watcher.js'))) as typeof import('../../src/vdfs/watcher.js');
  const library = openLibrary(libraryDir);
  const totals = { batches: 0, scanned: 0, new: 0, modified: 0, moved: 0, deleted: 0, errors: 0 };
  const watcher = await startWatcher(library, listLocations(library.db), {
    onApplied: (s) => {
      totals.batches++;
      for (const k of ['scanned', 'new', 'modified', 'moved', 'deleted'] as const) totals[k] += s.counts[k];
      process.stdout.write(`${JSON.stringify(totals)}\n`);
    },
    onError: () => void totals.errors++,
  });
  await watcher.ready;
  process.stdout.write('ready\n');
  process.on('SIGINT', () => {
    void watcher.close().then(() => {
      library.db.close();
      process.exit(0);
    });
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2).filter((a, i, all) => a !== '--build' && all[i - 1] !== '--build'));
  const builds = process.argv.flatMap((a, i, all) => (all[i - 1] === '--build' ? [path.resolve(a)] : []));
  if (builds.length === 0) builds.push(THIS_BUILD);
  const folders = numberArg(args, 'folders', 1000);
  const per = numberArg(args, 'per', 1000);
  const seconds = numberArg(args, 'seconds', 60);
  const rate = numberArg(args, 'rate', 10);
  const { initLibrary } = await import('../../src/vdfs/library.js');
  const { EntryStore } = await import('../../src/vdfs/entries.js');
  const { addLocation } = await import('../../src/vdfs/locations.js');
  const { indexLocation } = await import('../../src/vdfs/indexer/indexer.js');

  const tmp = makeTempDir('sdfs-bench-watch-', args.keep);
  const root = path.join(tmp, 'tree');
  let t0 = performance.now();
  for (let d = 0; d < folders; d++) {
    const dir = path.join(root, `d${d}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < per; f++) fs.closeSync(fs.openSync(path.join(dir, `f${f}`), 'w'));
  }
  say(`${folders} folders x ${per} empty files in ${s(t0)} s`);
  const libraryDir = path.join(tmp, 'library');
  const { library } = initLibrary(libraryDir, 'bench');
  // Shallow: no content ids for a million files before the run (the changes' own would be the same in every build).
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'tree', mode: 'shallow' });
  t0 = performance.now();
  indexLocation(library, location);
  say(`indexed in ${s(t0)} s`);
  library.db.close();

  const random = seededRandom(42);
  const pick = (n: number) => Math.floor(random() * n);
  /** Files created by the run per folder, so renames and deletes find one. */
  let serial = 0;
  const change = (): string => {
    const dir = path.join(root, `d${pick(folders)}`);
    const names = fs.readdirSync(dir); // the driver's own cost, not the watcher's
    const name = names[pick(names.length)];
    const op = pick(4);
    if (op === 0 || !name) {
      fs.writeFileSync(path.join(dir, `n${serial++}`), 'new');
      return 'create';
    }
    if (op === 1) {
      fs.appendFileSync(path.join(dir, name), 'more');
      return 'append';
    }
    if (op === 2) {
      // Half the renames stay in their folder, half move to another.
      const to = random() < 0.5 ? dir : path.join(root, `d${pick(folders)}`);
      fs.renameSync(path.join(dir, name), path.join(to, `r${serial++}`));
      return 'rename';
    }
    fs.rmSync(path.join(dir, name));
    return 'delete';
  };

  for (const build of builds) {
    const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', build, libraryDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let last = { batches: 0, scanned: 0, new: 0, modified: 0, moved: 0, deleted: 0, errors: 0 };
    let ready = false;
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (line === 'ready') ready = true;
      else last = JSON.parse(line) as typeof last;
    });
    t0 = performance.now();
    while (!ready) await sleep(100);
    await sleep(2000); // the start-up diff's own batch, if any
    say(`${build}: watching after ${s(t0)} s`);
    const before = { ...last };
    const cpu0 = cpuSecondsOf(proc.pid!);
    const ops = new Map<string, number>();
    const started = performance.now();
    for (let i = 0; i < seconds * rate; i++) {
      const op = change();
      ops.set(op, (ops.get(op) ?? 0) + 1);
      const due = started + ((i + 1) * 1000) / rate;
      await sleep(Math.max(0, due - performance.now()));
    }
    await sleep(2000); // the last batch
    const cpu = cpuSecondsOf(proc.pid!) - cpu0;
    const done = { ...last };
    proc.kill('SIGINT');
    await new Promise((resolve) => proc.on('exit', resolve));
    const changes = seconds * rate;
    const scanned = done.scanned - before.scanned;
    const check = indexMatchesDisk(libraryDir, root);
    say(
      `${build}: ${changes} changes (${[...ops].map(([k, v]) => `${v} ${k}`).join(', ')}) in ${seconds} s: ` +
        `${cpu.toFixed(2)} CPU s (${((100 * cpu) / (seconds + 2)).toFixed(1)}% of a core), ${done.batches - before.batches} batches, ` +
        `${scanned} entries looked at (${(scanned / changes).toFixed(1)} per change), ` +
        `moved ${done.moved - before.moved}, new ${done.new - before.new}, deleted ${done.deleted - before.deleted}, errors ${done.errors}; ` +
        `index ${check.indexed} entries below the root, disk ${check.onDisk}: ${check.indexed === check.onDisk && check.same ? 'equal' : 'DIFFERENT'}`,
    );
  }
  say(`load average after: ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`);
}

/** Entries below the location root in the index against files and folders on disk, and whether every file's size and inode agree. */
function indexMatchesDisk(libraryDir: string, root: string): { indexed: number; onDisk: number; same: boolean } {
  const onDisk = new Map<string, string>();
  for (const d of fs.readdirSync(root)) {
    onDisk.set(d, 'dir');
    for (const f of fs.readdirSync(path.join(root, d))) {
      const st = fs.lstatSync(path.join(root, d, f));
      onDisk.set(`${d}/${f}`, `${st.size} ${st.ino}`);
    }
  }
  const rows = indexedRows(path.join(libraryDir, 'library.db'));
  let same = rows.length === onDisk.size;
  for (const [rel, what] of rows) if (onDisk.get(rel) !== what) same = false;
  return { indexed: rows.length, onDisk: onDisk.size, same };
}

function indexedRows(dbPath: string): Array<[string, string]> {
  // better-sqlite3 from this build's dependencies, read-only.
  const require = createRequire(import.meta.url);
  const Database = require('better-sqlite3') as typeof import('better-sqlite3');
  const db = new Database(dbPath, { readonly: true });
  const out = db
    .prepare(`SELECT CASE WHEN p.parent_id IS NULL THEN e.name ELSE p.name || '/' || e.name END AS rel,
                     CASE e.kind WHEN 'dir' THEN 'dir' ELSE e.size || ' ' || e.inode END AS what
              FROM entries e JOIN entries p ON p.id = e.parent_id
              WHERE e.location_id = (SELECT id FROM locations WHERE name = 'tree')`)
    .raw()
    .all() as Array<[string, string]>;
  db.close();
  return out;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function s(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(1);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
