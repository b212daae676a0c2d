// The closure table stays exact under every change: random inserts, moves and subtree
// deletes through EntryStore, and random renames, moves and deletes on a real disk
// picked up by the indexer. After each step entry_closure must equal the closure that
// parent_id implies, row for row. SD_TEST_SEED=N replays a run.
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { EntryStore, type EntryKind } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import type { Library } from '../src/vdfs/library.js';
import { addLocation, requireLocation } from '../src/vdfs/locations.js';
import { tempDir, tempLibrary } from './helpers.js';

const SEED = Number(process.env.SD_TEST_SEED ?? Date.now() % 1_000_000);

/** A small seeded PRNG (mulberry32), so a failing run can be replayed with its seed. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}

function rows(library: Library, sql: string): string[] {
  return (library.db.prepare(sql).raw().all() as unknown[][]).map((r) => r.join(','));
}

/** The closure recomputed from parent_id alone, as sorted "ancestor,descendant,depth" rows. */
function closureFromParents(library: Library): string[] {
  return rows(library, `WITH RECURSIVE c(ancestor, descendant, depth) AS (
      SELECT id, id, 0 FROM entries
      UNION ALL
      SELECT e.parent_id, c.descendant, c.depth + 1 FROM c JOIN entries e ON e.id = c.ancestor WHERE e.parent_id IS NOT NULL)
    SELECT ancestor, descendant, depth FROM c ORDER BY 1, 2`);
}

function closureStored(library: Library): string[] {
  return rows(library, 'SELECT ancestor, descendant, depth FROM entry_closure ORDER BY 1, 2');
}

function assertAggregatesExact(t: Test, library: Library): void {
  const wrong = rows(library, `SELECT d.id, d.aggregate_size, coalesce(sum(f.size), 0) AS real FROM entries d
      JOIN entry_closure c ON c.ancestor = d.id
      LEFT JOIN entries f ON f.id = c.descendant AND f.kind = 'file'
      WHERE d.kind = 'dir' GROUP BY d.id HAVING d.aggregate_size != real`);
  t.same(wrong, [], 'every folder size is the sum of the files below it');
}

t.test(`random inserts, moves and subtree deletes through EntryStore keep the closure exact (seed ${SEED})`, async (t) => {
  const library = tempLibrary(t);
  const store = new EntryStore(library.db);
  const location = addLocation(library.db, store, library.device.id, { path: tempDir(t), name: 'tree', mode: 'shallow' });
  const rootId = location.rootEntryId!;
  const rnd = random(SEED);

  // Our own model of the tree: id -> parent and kind. The closure is checked against the table's parent_id.
  const parent = new Map<number, number | null>([[rootId, null]]);
  const kind = new Map<number, EntryKind>([[rootId, 'dir']]);
  let serial = 0;
  const dirs = () => [...kind].filter(([, k]) => k === 'dir').map(([id]) => id);
  const subtree = (id: number): Set<number> => {
    const out = new Set([id]);
    let grew = true;
    while (grew) {
      grew = false;
      for (const [child, p] of parent) if (p !== null && out.has(p) && !out.has(child)) (out.add(child), (grew = true));
    }
    return out;
  };
  const insert = () => {
    const under = rnd.pick(dirs());
    const k: EntryKind = rnd.next() < 0.35 ? 'dir' : rnd.next() < 0.9 ? 'file' : 'symlink';
    const size = k === 'file' ? 1 + rnd.int(5000) : 0;
    const id = library.db.transaction(() => {
      const id = store.insert(library.device.id, location.id, under, { name: `n${++serial}`, kind: k, size, mtime: 1, inode: serial, mode: 0o644 });
      if (size) store.addToAncestors(id, size);
      return id;
    })();
    parent.set(id, under);
    kind.set(id, k);
  };
  const move = (): boolean => {
    const candidates = [...parent.keys()].filter((id) => id !== rootId);
    if (candidates.length === 0) return false;
    const id = rnd.pick(candidates);
    const below = subtree(id);
    const targets = dirs().filter((d) => !below.has(d));
    const to = rnd.pick(targets);
    library.db.transaction(() => store.move(id, to, `m${++serial}`))();
    parent.set(id, to);
    return true;
  };
  const remove = (): boolean => {
    const candidates = [...parent.keys()].filter((id) => id !== rootId);
    if (candidates.length === 0) return false;
    const gone = subtree(rnd.pick(candidates));
    const removed = library.db.transaction(() => store.deleteSubtree([...gone][0]!))();
    if (removed !== gone.size) t.equal(removed, gone.size, 'deleteSubtree reports how many entries went');
    for (const id of gone) (parent.delete(id), kind.delete(id));
    return true;
  };

  for (let i = 0; i < 150; i++) insert();
  t.same(closureStored(library), closureFromParents(library), 'closure exact after 150 random inserts');

  const counts = { move: 0, delete: 0, insert: 0 };
  let firstBad: number | undefined;
  const STEPS = 400;
  for (let step = 0; step < STEPS && firstBad === undefined; step++) {
    const r = rnd.next();
    if (r < 0.6 && move()) counts.move++;
    else if (r < 0.72 && remove()) counts.delete++;
    else (insert(), counts.insert++);
    const stored = closureStored(library);
    const expected = closureFromParents(library);
    if (stored.join('\n') !== expected.join('\n')) {
      firstBad = step;
      t.same(stored, expected, `closure exact after step ${step}`);
    }
  }
  t.equal(firstBad, undefined, `closure exact after each of ${STEPS} steps (${counts.move} moves, ${counts.delete} subtree deletes, ${counts.insert} inserts)`);
  t.ok(counts.move > 150 && counts.delete > 20, 'the run really moved and deleted');

  const dbParents = new Map((library.db.prepare('SELECT id, parent_id FROM entries').raw().all() as Array<[number, number | null]>));
  t.same(dbParents, parent, 'parent links are exactly the ones the moves made');
  t.equal(library.db.prepare('SELECT count(*) FROM search').pluck().get(), parent.size, 'the search index holds one row per entry');
  t.same(library.db.pragma('foreign_key_check'), [], 'no dangling foreign keys');
});

/** Every path below root on disk (relative, '/'-separated) with its kind. */
function diskTree(root: string): Map<string, EntryKind> {
  const out = new Map<string, EntryKind>();
  const walk = (rel: string) => {
    for (const d of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const sub = rel === '' ? d.name : `${rel}/${d.name}`;
      out.set(sub, d.isDirectory() ? 'dir' : d.isSymbolicLink() ? 'symlink' : 'file');
      if (d.isDirectory()) walk(sub);
    }
  };
  walk('');
  return out;
}

/** Every indexed path of a location (relative) with its entry id and kind. */
function indexTree(library: Library, rootId: number): Map<string, { id: number; kind: EntryKind }> {
  const store = new EntryStore(library.db);
  const out = new Map<string, { id: number; kind: EntryKind }>();
  const walk = (id: number, rel: string) => {
    for (const c of store.children(id)) {
      const sub = rel === '' ? c.name : `${rel}/${c.name}`;
      out.set(sub, { id: c.id, kind: c.kind });
      if (c.kind === 'dir') walk(c.id, sub);
    }
  };
  walk(rootId, '');
  return out;
}

t.test(`random renames, moves and deletes on disk, then indexing, keep the closure exact and moved entries their ids (seed ${SEED})`, async (t) => {
  const library = tempLibrary(t);
  const root = fs.realpathSync(tempDir(t, 'sd-closure-'));
  const rnd = random(SEED + 1);
  let serial = 0;
  const newName = (prefix: string) => `${prefix}${++serial}`;

  const relDirs = (): string[] => ['', ...[...diskTree(root)].filter(([, k]) => k === 'dir').map(([p]) => p)];
  const relFiles = (): string[] => [...diskTree(root)].filter(([, k]) => k === 'file').map(([p]) => p);
  const abs = (rel: string) => path.join(root, rel);
  const join = (dir: string, name: string) => (dir === '' ? name : `${dir}/${name}`);
  const addFile = (dir: string) => fs.writeFileSync(abs(join(dir, newName('f'))), 'x'.repeat(1 + rnd.int(3000)));
  const addDir = (dir: string) => {
    const d = join(dir, newName('d'));
    fs.mkdirSync(abs(d));
    return d;
  };

  for (let i = 0; i < 25; i++) addDir(rnd.pick(relDirs()));
  for (let i = 0; i < 150; i++) addFile(rnd.pick(relDirs()));
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'disk', mode: 'shallow' });
  indexLocation(library, location);
  t.same(closureStored(library), closureFromParents(library), 'closure exact after the first index');

  const ROUNDS = 8;
  let totalMoves = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const before = indexTree(library, location.rootEntryId!);
    // Where each entry known before the round lives now: path -> the id it must keep.
    const tracked = new Map<string, number>([...before].map(([p, e]) => [p, e.id]));
    const relocate = (from: string, to: string) => {
      for (const [p, id] of [...tracked]) {
        if (p === from || p.startsWith(from + '/')) {
          tracked.delete(p);
          tracked.set(to + p.slice(from.length), id);
        }
      }
    };
    const forget = (gone: string) => {
      for (const p of [...tracked.keys()]) if (p === gone || p.startsWith(gone + '/')) tracked.delete(p);
    };
    let moves = 0;
    for (let op = 0; op < 12; op++) {
      const r = rnd.next();
      const files = relFiles();
      const dirs = relDirs();
      if (r < 0.2 && files.length) {
        const f = rnd.pick(files); // rename in place
        const to = join(path.posix.dirname(f) === '.' ? '' : path.posix.dirname(f), newName('r'));
        fs.renameSync(abs(f), abs(to));
        relocate(f, to);
        moves++;
      } else if (r < 0.4 && files.length) {
        const f = rnd.pick(files); // move to another folder
        const to = join(rnd.pick(dirs), newName('mv'));
        fs.renameSync(abs(f), abs(to));
        relocate(f, to);
        moves++;
      } else if (r < 0.55 && dirs.length > 1) {
        const d = rnd.pick(dirs.filter((x) => x !== '')); // move a folder, never under itself
        const targets = dirs.filter((x) => x !== d && !x.startsWith(d + '/'));
        const to = join(rnd.pick(targets), newName('md'));
        fs.renameSync(abs(d), abs(to));
        relocate(d, to);
        moves++;
      } else if (r < 0.65 && files.length) {
        const f = rnd.pick(files);
        fs.rmSync(abs(f));
        forget(f);
      } else if (r < 0.72 && dirs.length > 3) {
        const d = rnd.pick(dirs.filter((x) => x !== ''));
        fs.rmSync(abs(d), { recursive: true });
        forget(d);
      } else if (r < 0.9) {
        addFile(rnd.pick(dirs));
      } else {
        const d = addDir(rnd.pick(dirs));
        addFile(d);
      }
    }
    const summary = indexLocation(library, location);
    totalMoves += moves;

    t.same(closureStored(library), closureFromParents(library), `round ${round}: closure exact`);
    const after = indexTree(library, location.rootEntryId!);
    t.same(new Map([...after].map(([p, e]) => [p, e.kind])), diskTree(root), `round ${round}: the index holds exactly what is on disk`);
    const lost = [...tracked].filter(([p, id]) => after.get(p)?.id !== id).map(([p, id]) => `${p}: was ${id}, now ${after.get(p)?.id}`);
    t.same(lost, [], `round ${round}: ${moves} renamed/moved and all untouched entries keep their ids (${summary.counts.moved} moves seen)`);
  }
  t.ok(totalMoves > 20, `the run moved things (${totalMoves} moves)`);
  assertAggregatesExact(t, library);
  t.equal(requireLocation(library.db, library.device.id, 'disk').rootEntryId, location.rootEntryId, 'the location keeps its root entry');
});
