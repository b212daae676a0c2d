// Grouped commits of the mount's index changes: seen at once on the same connection,
// by other connections (other processes) within the group's delay, a failing change
// undone alone, and any other writer or closing the library commits the group first.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { FsOpApplier } from '../src/vdfs/actions/apply-fs-op.js';
import { openDatabase } from '../src/vdfs/db/database.js';
import { GroupCommit } from '../src/vdfs/db/group-commit.js';
import { EntryStore } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import { openLibrary } from '../src/vdfs/library.js';
import { addLocation } from '../src/vdfs/locations.js';
import { tempDir, tempLibrary, waitFor, writeTree } from './helpers.js';

const DELAY_MS = 300;

t.test('grouped creates are seen at once here and by another connection within the delay', async (t) => {
  const library = tempLibrary(t);
  const root = fs.realpathSync(writeTree(tempDir(t, 'sd-group-'), { 'old.txt': 'old' }));
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'data' });
  indexLocation(library, location);
  const other = openDatabase(library.dbPath, { create: false });
  t.teardown(() => other.close());
  const count = (db: typeof other) => db.prepare(`SELECT count(*) FROM entries WHERE location_id = ? AND kind = 'file'`).pluck().get(location.id) as number;

  const applier = new FsOpApplier(library, DELAY_MS);
  const started = Date.now();
  for (let i = 0; i < 20; i++) applier.apply(location, { op: 'create', path: `new${i}.txt`, mode: 0o644 });
  t.equal(count(library.db), 21, 'the same connection (the mount answering) sees every create at once');
  t.equal(count(other), 1, 'another connection sees nothing before the group commits');
  t.ok(await waitFor(() => count(other) === 21, DELAY_MS + 1000, 10), 'and all of it once it does');
  t.ok(Date.now() - started >= DELAY_MS - 20, `not before the delay (${Date.now() - started} ms)`);
  t.equal(applier.indexFailures, 0, 'no index update failed');

  // The indexer begins its own transaction: the group is committed first, nothing is lost.
  applier.apply(location, { op: 'create', path: 'before-index.txt', mode: 0o644 });
  fs.writeFileSync(path.join(root, 'outside.txt'), 'x');
  indexLocation(library, location);
  t.equal(count(other), 23, 'an index pass commits the grouped change with its own');

  applier.apply(location, { op: 'mkdir', path: 'dir', mode: 0o755 });
  library.close();
  t.equal(other.prepare(`SELECT count(*) FROM entries WHERE name = 'dir'`).pluck().get(), 1, 'closing the library commits the group');
});

t.test('a failing change in a group is undone alone', async (t) => {
  const library = tempLibrary(t);
  const group = new GroupCommit(library.db, DELAY_MS);
  const insert = library.db.prepare(`INSERT INTO tags (name, created_at) VALUES (?, 0)`);
  group.run(() => void insert.run('kept'));
  t.throws(() =>
    group.run(() => {
      insert.run('undone');
      throw new Error('the change failed half way');
    }),
  );
  group.run(() => void insert.run('kept too'));
  group.commit();
  t.same(library.db.prepare('SELECT name FROM tags ORDER BY name').pluck().all(), ['kept', 'kept too']);
  const reopened = openLibrary(library.dir);
  t.teardown(() => reopened.close());
  t.same(reopened.db.prepare('SELECT name FROM tags ORDER BY name').pluck().all(), ['kept', 'kept too'], 'and committed');
});
