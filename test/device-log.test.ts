// Device-owned sync: device A's index changes go to its own hypercore, B mirrors them.
// Two real libraries indexed from real folders, two corestores piped to each other.
import fs from 'node:fs';
import path from 'node:path';
import Corestore from 'corestore';
import type Hypercore from 'hypercore';
import hypercoreCrypto from 'hypercore-crypto';
import t, { type Test } from 'tap';
import { config } from '../src/config.js';
import { SdError } from '../src/errors.js';
import { DeviceLog, openOwnLog } from '../src/replication/device-log.js';
import { deviceKeys } from '../src/replication/identity.js';
import { startIndexSync } from '../src/replication/index-sync.js';
import { decodeLogBlock, encodeLogBlock } from '../src/replication/log-messages.js';
import { Namespace } from '../src/vdfs/namespace.js';
import { Mirror, type MirrorProgress } from '../src/replication/mirror.js';
import { addPeerDevice } from '../src/vdfs/device.js';
import { EntryStore } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import { openLibrary, type Library } from '../src/vdfs/library.js';
import { addLocation, listLocations, removeLocation, type Location } from '../src/vdfs/locations.js';
import { queuedCount } from '../src/vdfs/outbox.js';
import { tempDir, tempLibrary, waitFor, writeTree, runSd } from './helpers.js';
import { mountIdle, writerOf } from './library-writer.js';
import { startMount } from './mount-helpers.js';
import { assertClosureExact, sqlRows } from './index-assertions.js';

/** (path, kind, size, mtime, content id) of every entry of a device, path from its location name. */
/** Two libraries' corestores, replicating with each other over an in-memory stream; closed when the test ends. */
function replicatedStores(t: Test, a: Library, b: Library): { storeA: Corestore; storeB: Corestore } {
  const storeA = new Corestore(path.join(a.dir, 'cores'));
  const storeB = new Corestore(path.join(b.dir, 'cores'));
  t.teardown(async () => {
    await storeA.close();
    await storeB.close();
  });
  const s1 = storeA.replicate(true);
  const s2 = storeB.replicate(false);
  s1.pipe(s2).pipe(s1);
  return { storeA, storeB };
}

function indexOf(library: Library, deviceId: string): string[] {
  return sqlRows(library, `WITH RECURSIVE tree(id, path) AS (
      SELECT root_entry_id, name FROM locations WHERE device_id = ? AND root_entry_id IS NOT NULL
      UNION ALL SELECT e.id, tree.path || '/' || e.name FROM tree JOIN entries e ON e.parent_id = tree.id)
    SELECT tree.path, e.kind, e.size, e.mtime, e.content_id FROM tree JOIN entries e ON e.id = tree.id ORDER BY 1`, deviceId);
}

interface Pair {
  a: Library;
  b: Library;
  storeA: Corestore;
  storeB: Corestore;
  logA: DeviceLog;
  /** B's mirror of A, opened on the core B replicates from A. */
  mirror: Mirror;
  progress: MirrorProgress[];
  root: string;
  location: Location;
  store: EntryStore;
  /** A's index as B should now mirror it, after A re-indexes and pumps its log. */
  sync(what: string): Promise<void>;
}

async function pairedLibraries(t: Test, files: Record<string, string>): Promise<Pair> {
  const a = tempLibrary(t, 'alpha');
  const b = tempLibrary(t, 'beta');
  addPeerDevice(b.db, { id: a.device.id, name: a.device.name });
  const root = fs.realpathSync(writeTree(tempDir(t), files));
  const store = new EntryStore(a.db);
  const location = addLocation(a.db, store, a.device.id, { path: root, name: 'data' });
  indexLocation(a, location);

  const { storeA, storeB } = replicatedStores(t, a, b);
  const logA = new DeviceLog(a.db, a.device.id, openOwnLog(storeA, deviceKeys(a.dir).log));
  await logA.open();
  const progress: MirrorProgress[] = [];
  const mirror = new Mirror(b.db, a.device.id, storeB.get({ key: deviceKeys(a.dir).log.publicKey }), { onProgress: (p) => progress.push(p) });
  await mirror.open();
  const pair: Pair = {
    a, b, storeA, storeB, logA, mirror, progress, root, location, store,
    async sync(what) {
      indexLocation(a, location);
      await logA.pump();
      await mirror.catchUp(logA.core.length);
      t.same(indexOf(b, a.device.id), indexOf(a, a.device.id), `B mirrors A's index ${what}`);
      assertClosureExact(t, b, ` on B ${what}`);
      const contents = 'SELECT id, size, sampled_hash, full_hash FROM content_identities ORDER BY id';
      t.same(sqlRows(b, contents), sqlRows(a, contents), `B knows A's content identities ${what}`);
    },
  };
  return pair;
}

const FILES = {
  'docs/a.txt': 'alpha',
  'docs/b.txt': 'bravo!',
  'docs/deep/er/c.txt': 'charlie',
  'media/x.bin': 'x'.repeat(5000),
  'old/one.txt': 'one',
  'old/sub/two.txt': 'two2',
  'keep.txt': 'keep',
  'empty.txt': '',
};

t.test('B mirrors A through A\'s log: backfill, new, modified, moved, deleted, locations added and removed', async (t) => {
  const p = await pairedLibraries(t, FILES);
  const { a, b, root, mirror } = p;
  t.equal(p.logA.core.key!.toString('hex'), deviceKeys(a.dir).log.publicKey.toString('hex'), 'the log key is the device log key pair\'s public key');
  t.equal(queuedCount(a.db), 0, 'the snapshot that starts the log covers the changes queued before it');

  await mirror.catchUp(p.logA.core.length);
  t.same(indexOf(b, a.device.id), indexOf(a, a.device.id), 'backfill: B mirrors A\'s index');
  t.equal(indexOf(b, a.device.id).length, 15, 'all 15 entries (root, 6 folders, 8 files) are there');
  t.ok(indexOf(b, a.device.id).some((r) => r.startsWith('data/media/x.bin,file,5000,') && /,[0-9a-f]{16}$/.test(r)), 'content ids come along');
  assertClosureExact(t, b, ' on B after backfill');
  t.same(p.progress.at(-1), { device: 'alpha', applied: p.logA.core.length, length: p.logA.core.length }, 'progress reports applied/length up to the end');
  t.equal(sqlRows(b, 'SELECT count(*) FROM content_identities')[0], '7', 'B knows the 7 content identities');

  fs.writeFileSync(path.join(root, 'docs/new.txt'), 'brand new');
  fs.mkdirSync(path.join(root, 'fresh/inner'), { recursive: true });
  fs.writeFileSync(path.join(root, 'fresh/inner/f.txt'), 'f');
  await p.sync('after new files');

  fs.appendFileSync(path.join(root, 'docs/a.txt'), ' and more');
  fs.utimesSync(path.join(root, 'keep.txt'), new Date('2024-01-01'), new Date('2024-01-01'));
  await p.sync('after modified files');

  const bStore = new EntryStore(b.db);
  const mirroredOld = bStore.byRemoteId(a.device.id, p.store.resolve(p.location.rootEntryId!, ['old'])!.id)!;
  fs.renameSync(path.join(root, 'old'), path.join(root, 'docs/deep/moved'));
  await p.sync('after a moved folder');
  t.equal(bStore.relativePath(mirroredOld.id), 'docs/deep/moved', 'the moved folder keeps its row on B (moved, not re-created)');

  // A symlink's target travels right after its entry (read from disk; the index has none).
  fs.symlinkSync('deep/moved', path.join(root, 'docs/link'));
  await p.sync('after a symlink');
  const link = bStore.byRemoteId(a.device.id, p.store.resolve(p.location.rootEntryId!, ['docs', 'link'])!.id)!;
  t.equal(link.kind, 'symlink');
  t.equal(new Namespace(b.db).linkTarget(link), 'deep/moved', "B knows the link's target");

  const before = p.logA.core.length;
  fs.rmSync(path.join(root, 'docs'), { recursive: true });
  await p.sync('after a deleted subtree');
  const ops = [];
  for (let i = before; i < p.logA.core.length; i++) ops.push(...decodeLogBlock((await p.logA.core.get(i))!).ops);
  t.same(ops.filter((o) => o.op === 'tombstone').length, 1, 'the deleted subtree is one tombstone in the log');
  t.equal(sqlRows(b, 'SELECT count(*) FROM link_targets')[0], '0', 'and its link target went with it');

  const root2 = fs.realpathSync(writeTree(tempDir(t), { 'p/q.txt': 'q', 'r.txt': 'rr' }));
  // deep: full hashes too, which go through the log as their own operation.
  const second = addLocation(a.db, p.store, a.device.id, { path: root2, name: 'more', mode: 'deep' });
  indexLocation(a, second);
  await p.sync('after a location is added');
  t.equal(sqlRows(b, 'SELECT count(*) FROM content_identities WHERE full_hash IS NOT NULL')[0], '2', 'B has the full hashes of the deep location\'s 2 files');
  t.same(listLocations(b.db, a.device.id).map((l) => [l.name, l.rootPath]), [['data', root], ['more', root2]], 'B lists both locations with A\'s root paths');

  removeLocation(a.db, p.store, second);
  await p.sync('after a location is removed');
  t.same(listLocations(b.db, a.device.id).map((l) => l.name), ['data'], 'the removed location is gone on B');
  t.same(sqlRows(b, 'SELECT count(*) FROM entries WHERE device_id = ? AND location_id NOT IN (SELECT id FROM locations)', a.device.id), ['0'], 'with all its entries');
  t.same(sqlRows(b, 'SELECT count(*) FROM search WHERE search MATCH ?', 'q'), ['0'], 'and their search rows');
  t.same(sqlRows(b, 'SELECT count(*) FROM index_outbox'), ['0'], 'B queues nothing for its own log while mirroring');
});

t.test('a crash between append and outbox cleanup neither loses nor repeats a change; replay is a no-op', async (t) => {
  const p = await pairedLibraries(t, FILES);
  await p.mirror.catchUp(p.logA.core.length);
  fs.writeFileSync(path.join(p.root, 'after-crash.txt'), 'x');
  fs.rmSync(path.join(p.root, 'old'), { recursive: true });
  indexLocation(p.a, p.location);
  const appended = await p.logA.appendQueued();
  t.ok(appended > 0, `${appended} changes appended, then the process "dies" before dropping them`);
  t.ok(queuedCount(p.a.db) > 0, 'they are still in the outbox');
  const length = p.logA.core.length;

  const restarted = new DeviceLog(p.a.db, p.a.device.id, p.logA.core);
  await restarted.open();
  t.equal(queuedCount(p.a.db), 0, 'on restart the outbox rows the log holds are dropped');
  t.equal(await restarted.pump(), 0, 'nothing is appended twice');
  t.equal(p.logA.core.length, length, 'the log did not grow');
  await p.mirror.catchUp(p.logA.core.length);
  t.same(indexOf(p.b, p.a.device.id), indexOf(p.a, p.a.device.id), 'B mirrors A exactly');

  const applied = p.mirror.applied;
  const blocks = [];
  for (let i = 0; i < applied; i++) blocks.push((await p.logA.core.get(i))!);
  const snapshot = indexOf(p.b, p.a.device.id);
  p.mirror.applyBatch(0, blocks);
  p.mirror.applyBatch(applied - 1, blocks.slice(-1));
  t.equal(p.mirror.applied, applied, 'replaying applied blocks leaves the watermark');
  t.same(indexOf(p.b, p.a.device.id), snapshot, 'and the mirror as it was');
  assertClosureExact(t, p.b);
});

t.test("a new log's snapshot is streamed a few blocks at a time; cut short, it is written again whole; changes made meanwhile follow it", async (t) => {
  const a = tempLibrary(t, 'alpha');
  const b = tempLibrary(t, 'beta');
  addPeerDevice(b.db, { id: a.device.id, name: a.device.name });
  // 12 folders of 40 files (and the root): 493 entries, in blocks of 5 ops and appends of 16 blocks.
  const files: Record<string, string> = {};
  for (let d = 0; d < 12; d++) for (let f = 0; f < 40; f++) files[`d${d}/f${f}.txt`] = `${d}-${f}`;
  const root = fs.realpathSync(writeTree(tempDir(t), files));
  const store = new EntryStore(a.db);
  const location = addLocation(a.db, store, a.device.id, { path: root, name: 'data' });
  indexLocation(a, location);
  const storeA = new Corestore(path.join(a.dir, 'cores'));
  t.teardown(() => storeA.close());
  const core = openOwnLog(storeA, deviceKeys(a.dir).log);

  // The first log is stopped right after its first append, as a stopped process would leave it.
  const first = new DeviceLog(a.db, a.device.id, core, 5);
  core.once('append', () => first.interruptSnapshot());
  await first.open();
  const cutAt = core.length;
  t.ok(cutAt > 0, `the cut-short snapshot wrote ${cutAt} blocks`);
  t.notOk(first.ready, 'and the log does not count as holding the index');
  t.same(sqlRows(a, 'SELECT count(*) FROM device_log_snapshot'), ['1'], 'the library remembers a snapshot was started');
  t.equal(await first.pump(), 0, 'nothing queued goes into a log whose snapshot is not written');
  await first.close();

  // The next start writes it again; a change made while it streams comes after it.
  const second = new DeviceLog(a.db, a.device.id, core, 5);
  const snapshots: number[] = [];
  second.onSnapshot = (s) => snapshots.push(s.changes);
  let changedMidway = false;
  core.on('append', () => {
    if (changedMidway || core.length < cutAt + 32) return;
    changedMidway = true;
    fs.writeFileSync(path.join(root, 'd3/new.txt'), 'written while the snapshot streamed');
    fs.rmSync(path.join(root, 'd7'), { recursive: true });
    indexLocation(a, location);
  });
  await second.open();
  t.ok(second.ready, 'the second start wrote the snapshot whole');
  t.ok(changedMidway, 'the index changed while it streamed');
  t.same(sqlRows(a, 'SELECT count(*) FROM device_log_snapshot'), ['0'], 'the mark is gone');
  t.ok(snapshots[0]! >= 493, `it held every entry (${snapshots[0]} changes)`);
  await second.pump();
  t.equal(queuedCount(a.db), 0, 'the changes made meanwhile went into the log after it');

  const mirror = new Mirror(b.db, a.device.id, storeA.get({ key: deviceKeys(a.dir).log.publicKey }));
  await mirror.open();
  await mirror.catchUp(core.length);
  t.same(indexOf(b, a.device.id), indexOf(a, a.device.id), "B's mirror, fed the cut-short snapshot, the whole one and what followed, is A's index");
  t.ok(indexOf(b, a.device.id).some((r) => r.startsWith('data/d3/new.txt,')) && !indexOf(b, a.device.id).some((r) => r.startsWith('data/d7')), 'with the change made during the snapshot');
  assertClosureExact(t, b, ' on B');
  await second.close();
});

t.test('a malformed or inconsistent block is refused with an error naming the device; the mirror stays as it was', async (t) => {
  const b = tempLibrary(t, 'beta');
  const store = new Corestore(path.join(tempDir(t), 'cores'));
  t.teardown(() => store.close());
  const keyPair = hypercoreCrypto.keyPair();
  const core: Hypercore = store.get({ key: keyPair.publicKey, keyPair });
  await core.ready();
  await core.append([
    encodeLogBlock({ lastSeq: 1, ops: [{ op: 'location', id: 1, name: 'docs', rootPath: '/home/c/docs', indexMode: 'content' }] }),
    encodeLogBlock({ lastSeq: 2, ops: [{ op: 'entry', id: 1, locationId: 1, parentId: null, name: '', kind: 'dir', size: 0, mtime: 1, mode: 0o40755, contentId: null }] }),
    Buffer.from([1, 3, 1, 99, 9]), // a version-1 block with one operation of an unknown type
  ]);
  addPeerDevice(b.db, { id: 'c-device', name: 'charlie' });
  const errors: SdError[] = [];
  const mirror = new Mirror(b.db, 'c-device', core, { blocksPerBatch: 1, onError: (e) => errors.push(e) });
  await mirror.open();
  await t.rejects(mirror.catchUp(), { code: 'LIBRARY_CORRUPT', message: /index log of device charlie \(c-device\) cannot be applied at block 2: an operation of an unknown type/ }, 'the bad block is refused, naming the device and the block');
  t.equal(errors.length, 1, 'onError heard it once');
  t.equal(mirror.applied, 2, 'the blocks before it stay applied');
  t.same(listLocations(b.db, 'c-device').map((l) => l.name), ['docs'], 'the mirror is what those blocks made');
  t.same(sqlRows(b, 'SELECT count(*) FROM entries'), ['1'], 'one entry (the root)');

  const b2 = tempLibrary(t, 'beta2');
  addPeerDevice(b2.db, { id: 'c-device', name: 'charlie' });
  const orphan = new Mirror(b2.db, 'c-device', core, { blocksPerBatch: 1 });
  await orphan.open();
  t.throws(() => orphan.applyBatch(0, [encodeLogBlock({ lastSeq: 1, ops: [{ op: 'entry', id: 5, locationId: 1, parentId: 4, name: 'x', kind: 'file', size: 1, mtime: 1, mode: 0o100644, contentId: null }] })]),
    { code: 'LIBRARY_CORRUPT', message: /device charlie.*location 1 was never announced/ }, 'an entry in a location never announced is refused');
  t.throws(() => orphan.applyBatch(0, [Buffer.alloc(0)]), { message: /device charlie.*cut short/ }, 'an empty block is refused');
  t.throws(() => orphan.applyBatch(0, [Buffer.from([1, 5])]), { message: /device charlie.*cut short/ }, 'a block cut short is refused');
  t.equal(orphan.applied, 0, 'the refused blocks left the watermark at 0');
  t.same(sqlRows(b2, 'SELECT count(*) FROM entries'), ['0'], 'and wrote nothing');
});

/**
 * A's index of 2,020 entries in a log of ten changes a block (some two hundred blocks), and
 * B ready to mirror it over piped corestores, one block a transaction.
 */
async function largeLog(t: Test): Promise<{ a: Library; b: Library; logA: DeviceLog; mirror: Mirror; errors: SdError[] }> {
  const a = tempLibrary(t, 'alpha');
  const b = tempLibrary(t, 'beta');
  addPeerDevice(b.db, { id: a.device.id, name: a.device.name });
  const root = tempDir(t);
  for (let d = 0; d < 20; d++) writeTree(root, Object.fromEntries(Array.from({ length: 100 }, (_, f) => [`d${d}/f${f}.txt`, `${d}/${f}`])));
  indexLocation(a, addLocation(a.db, new EntryStore(a.db), a.device.id, { path: fs.realpathSync(root), name: 'data' }));
  const { storeA, storeB } = replicatedStores(t, a, b);
  const logA = new DeviceLog(a.db, a.device.id, openOwnLog(storeA, deviceKeys(a.dir).log), 10);
  await logA.open();
  const errors: SdError[] = [];
  const mirror = new Mirror(b.db, a.device.id, storeB.get({ key: deviceKeys(a.dir).log.publicKey }), { blocksPerBatch: 1, onError: (e) => errors.push(e) });
  await mirror.open();
  return { a, b, logA, mirror, errors };
}

t.test('a mirror applies the whole log while another process writes the library (a write between its first read and its first write stopped it for good, as corrupt)', async (t) => {
  const { a, b, logA, mirror, errors } = await largeLog(t);
  t.ok(logA.core.length > 200, `A's log has ${logA.core.length} blocks`);
  const writer = await writerOf(t, b.dir, 'churn');
  await mirror.catchUp(logA.core.length, 60_000).catch((err: unknown) => t.fail(`the mirror stopped: ${String(err)}`));
  const writes = await writer.stop();
  t.ok(writes > 100, `the other process wrote the library ${writes} times meanwhile`);
  t.same(errors, [], 'no error stopped the mirror');
  t.equal(mirror.applied, logA.core.length, 'every block of the log is applied');
  t.same(indexOf(b, a.device.id), indexOf(a, a.device.id), "B mirrors A's whole index");
});

t.test('a mirror waits out another process holding the library past the busy timeout, then applies the rest', async (t) => {
  const { a, b, logA, mirror, errors } = await largeLog(t);
  const holdMs = config.dbBusyTimeoutMs + 1500;
  const writer = await writerOf(t, b.dir, 'hold', holdMs);
  const started = Date.now();
  await mirror.catchUp(logA.core.length, 60_000).catch((err: unknown) => t.fail(`the mirror stopped: ${String(err)}`));
  t.ok(Date.now() - started >= holdMs - 500, `the mirror was held up ${Date.now() - started} ms (the other process held the library ${holdMs} ms)`);
  t.equal(await writer.stop(), 1, "the other process's transaction committed");
  t.same(errors, [], 'no error stopped the mirror');
  t.equal(mirror.applied, logA.core.length, 'every block of the log is applied');
  t.same(indexOf(b, a.device.id), indexOf(a, a.device.id), "B mirrors A's whole index");
});

t.test('a change on A is listed in B\'s mirror within a second while B follows A\'s log', async (t) => {
  const p = await pairedLibraries(t, { 'a.txt': 'a' });
  p.mirror.follow();
  t.teardown(() => p.mirror.stop());
  p.logA.startPumping(20);
  t.teardown(() => p.logA.close());
  t.ok(await waitFor(() => indexOf(p.b, p.a.device.id).length === 2, 5000, 10), 'B follows the backfill');
  fs.writeFileSync(path.join(p.root, 'live.txt'), 'live');
  const started = Date.now();
  indexLocation(p.a, p.location);
  t.ok(await waitFor(() => indexOf(p.b, p.a.device.id).some((r) => r.startsWith('data/live.txt,')), 1000, 5), 'live.txt is on B within 1 s');
  t.comment(`seen on B after ${Date.now() - started} ms`);
});

t.test('the running node\'s log takes changes another process makes to the index', async (t) => {
  const a = tempLibrary(t, 'alpha');
  const b = tempLibrary(t, 'beta');
  addPeerDevice(b.db, { id: a.device.id, name: a.device.name });
  const root = fs.realpathSync(writeTree(tempDir(t), { 'x/y.txt': 'y' }));
  const sync = await startIndexSync(a, { pumpIntervalMs: 10 });
  t.teardown(() => sync.close());
  const storeB = new Corestore(path.join(b.dir, 'cores'));
  t.teardown(() => storeB.close());
  const s1 = sync.store.replicate(true);
  const s2 = storeB.replicate(false);
  s1.pipe(s2).pipe(s1);
  const mirror = new Mirror(b.db, a.device.id, storeB.get({ key: sync.ownLog.key }));
  await mirror.open();
  mirror.follow();
  t.teardown(() => mirror.stop());

  // `sd location add` and `sd index` in a child process: their own connection to A's library.
  const other = openLibrary(a.dir);
  const location = addLocation(other.db, new EntryStore(other.db), other.device.id, { path: root, name: 'docs' });
  indexLocation(other, location);
  other.close();
  t.ok(await waitFor(() => indexOf(b, a.device.id).length === 3, 5000, 10), 'B mirrors what the other process indexed');
  t.same(indexOf(b, a.device.id), indexOf(a, a.device.id), 'exactly');
  t.equal(queuedCount(a.db), 0, 'the outbox is empty once the log has it');
});

t.test('the mount lists a peer\'s mirrored tree under /sd/<peer>/<location>; changes there wait for it', async (t) => {
  const p = await pairedLibraries(t, { 'docs/a.txt': 'alpha', 'docs/deep/b.txt': 'bravo!', 'top.txt': 'top' });
  await p.mirror.catchUp(p.logA.core.length);
  p.mirror.stop();
  await p.logA.close();
  await p.storeB.close(); // the mount process opens B's corestore itself
  const mounted = await startMount(t, p.b.dir);
  const base = path.join(mounted.mountpoint, 'alpha', 'data');
  t.same(fs.readdirSync(path.join(mounted.mountpoint, 'alpha')), ['data'], 'the peer device lists its location');
  t.same(fs.readdirSync(base).sort(), ['docs', 'top.txt'], 'the location root lists A\'s entries');
  t.same(fs.readdirSync(path.join(base, 'docs')).sort(), ['a.txt', 'deep'], 'and a folder below it');
  const st = fs.statSync(path.join(base, 'docs/deep/b.txt'));
  const real = fs.statSync(path.join(p.root, 'docs/deep/b.txt'));
  t.equal(st.size, 6, 'a file has the size A indexed');
  t.ok(Math.abs(st.mtimeMs - real.mtimeMs) < 1, `and its mtime (${st.mtimeMs} vs ${real.mtimeMs})`);
  t.ok(st.isFile() && fs.statSync(path.join(base, 'docs')).isDirectory(), 'files are files, folders folders');
  t.equal(st.mode & 0o777, real.mode & 0o777, "A's mode");
  t.throws(() => fs.statSync(path.join(base, 'nope.txt')), { code: 'ENOENT' }, 'a name A does not have is ENOENT');
  // A is offline (never connected): a change in its tree is a job that waits for it.
  fs.writeFileSync(path.join(base, 'new.txt'), 'x');
  t.equal(fs.readFileSync(path.join(base, 'new.txt'), 'utf8'), 'x', "a file created in a peer's tree reads back (staged here)");
  fs.rmSync(path.join(base, 'top.txt'));
  t.same(fs.readdirSync(base).sort(), ['docs', 'new.txt'], 'a removed one is gone from the listing');
  const jobs = await runSd(['--json', 'jobs'], { library: p.b.dir });
  t.same((JSON.parse(jobs.stdout) as Array<{ kind: string; status: string; device: string }>).map((j) => [j.kind, j.status, j.device]).sort(), [['copy', 'queued', 'alpha'], ['delete', 'queued', 'alpha']], 'both wait in sd jobs for alpha');
  t.throws(() => fs.readFileSync(path.join(base, 'docs/a.txt')), { code: 'EIO' }, 'bytes of an offline device, never cached, answer EIO');
});

t.test("a new file in a peer's tree, closed while another process holds the library past the busy timeout, still becomes a job for the peer (it stayed pending for good, never sent)", async (t) => {
  const p = await pairedLibraries(t, { 'top.txt': 'top' });
  await p.mirror.catchUp(p.logA.core.length);
  p.mirror.stop();
  await p.logA.close();
  await p.storeB.close();
  const mounted = await startMount(t, p.b.dir);
  const fd = fs.openSync(path.join(mounted.mountpoint, 'alpha', 'data', 'new.txt'), 'w');
  fs.writeSync(fd, 'new');
  await mountIdle(p.b.dir);
  const writer = await writerOf(t, p.b.dir, 'hold', config.dbBusyTimeoutMs + 1500);
  fs.closeSync(fd); // the mount commits the file's copy job when the kernel releases the handle, just after
  t.equal(await writer.stop(), 1, "the other process's transaction committed");
  const jobs = async () => JSON.parse((await runSd(['--json', 'jobs'], { library: p.b.dir })).stdout) as Array<{ kind: string; status: string; device: string }>;
  t.ok(await waitFor(async () => (await jobs()).length > 0, 10_000, 200), 'a job is committed once the library is free');
  t.same((await jobs()).map((j) => [j.kind, j.status, j.device]), [['copy', 'queued', 'alpha']], 'the copy of new.txt waits in sd jobs for alpha');
});

t.test("a new log's snapshot written in the background waits for what it is told to (the mount's start-up diff), and the log closes while it waits", async (t) => {
  const newLog = (name: string) => {
    const lib = tempLibrary(t, name);
    const root = fs.realpathSync(writeTree(tempDir(t), { 'x/a.txt': 'a', 'b.txt': 'b' }));
    indexLocation(lib, addLocation(lib.db, new EntryStore(lib.db), lib.device.id, { path: root, name: 'data' }));
    const store = new Corestore(path.join(lib.dir, 'cores'));
    t.teardown(() => store.close());
    const core = openOwnLog(store, deviceKeys(lib.dir).log);
    return { core, log: new DeviceLog(lib.db, lib.device.id, core) };
  };
  let go!: () => void;
  const told = new Promise<void>((resolve) => (go = resolve));
  const waiting = newLog('alpha');
  await waiting.log.open({ background: true, after: told });
  const pumped = waiting.log.pump();
  await new Promise((r) => setTimeout(r, 300));
  t.equal(waiting.core.length, 0, 'nothing is in the log while it waits');
  t.notOk(waiting.log.ready, 'and it does not count as holding the index');
  go();
  await pumped;
  t.ok(waiting.log.ready, 'once told, it writes the snapshot');
  t.ok(waiting.core.length > 0, `(${waiting.core.length} blocks)`);

  const never = newLog('beta');
  await never.log.open({ background: true, after: new Promise(() => undefined) });
  void never.log.pump();
  const started = performance.now();
  await never.log.close();
  t.ok(performance.now() - started < 1000, 'a log whose go never comes closes at once');
  t.equal(never.core.length, 0, 'with nothing written');
});
