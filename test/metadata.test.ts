// User metadata: key/value last-writer-wins registers per (entry, key), `sd meta`, the
// xattrs user.sd.meta.<key> on the mount, and the log operation that carries them.
import fs from 'node:fs';
import path from 'node:path';
import { getAttributeSync, listAttributesSync, removeAttributeSync, setAttributeSync } from '@napi-rs/xattr';
import t from 'tap';
import { formatHlc, parseHlc } from '../src/replication/hlc.js';
import { decodeLogBlock, encodeLogBlock } from '../src/replication/log-messages.js';
import { EntryStore } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import { addLocation } from '../src/vdfs/locations.js';
import { MetaStore, type MetaOp } from '../src/vdfs/metadata.js';
import { indexSnapshot } from '../src/vdfs/outbox.js';
import { sd } from './cli-process.js';
import { tempDir, tempLibrary, writeTree } from './helpers.js';
import { sqlRows } from './index-assertions.js';
import { libraryWithLocation, startMount } from './mount-helpers.js';

t.test('concurrent metadata edits on two devices converge, last writer wins', async (t) => {
  const a = tempLibrary(t, 'alpha');
  const b = tempLibrary(t, 'beta');
  const root = writeTree(tempDir(t), { 'report.pdf': 'x' });
  const location = addLocation(a.db, new EntryStore(a.db), a.device.id, { path: root, name: 'docs', mode: 'shallow' });
  await indexLocation(a, location);
  const report = new EntryStore(a.db).resolve(location.rootEntryId!, ['report.pdf'])!;
  const metaA = new MetaStore(a.db, a.device.id);
  const metaB = new MetaStore(b.db, b.device.id);

  const first = metaA.set(report, 'status', 'draft');
  const author = metaA.set(report, 'author', 'Ada');
  // B, a little later, sets status and removes author; A, with an older stamp, sets status again.
  const later = (key: string, value: string | null): MetaOp => ({ target: first.target, key, value, hlc: formatHlc({ ms: parseHlc(author.hlc).ms + 5, counter: 0, device: b.device.id }) });
  const fromB = [later('status', 'final'), later('author', null)];
  const stale: MetaOp = { target: first.target, key: 'status', value: 'review', hlc: formatHlc({ ...parseHlc(author.hlc), counter: 99 }) };
  for (const op of [first, author, ...fromB]) metaB.apply(op);
  t.equal(metaA.apply(stale), true, 'A takes its own edit');
  for (const op of [...fromB].reverse()) metaA.apply(op);
  t.equal(metaB.apply(stale), false, 'B keeps the newer value');
  t.equal(metaA.apply(first), false, 'an operation applied twice changes nothing');
  const registers = (db: typeof a.db) => db.prepare('SELECT device_id, entry_ref, key, value, hlc FROM meta_ops ORDER BY key').all();
  t.same(registers(a.db), registers(b.db), 'both devices hold the same registers');
  t.same(metaA.of(report), { status: 'final' }, "A's file has the merged metadata (author removed)");
  t.same(sqlRows(a, "SELECT count(*) FROM index_outbox WHERE op = 'meta'"), ['2'], "only A's own two operations wait for A's log");
  metaA.set(report, 'pages', '12');
  t.same(indexSnapshot(a.db, a.device.id).changes.filter((c) => c.op === 'meta').map((c) => c.op === 'meta' && c.key), ['pages'], "a new log's snapshot carries the registers A wrote last (status and author are B's now)");

  const ops = [
    { op: 'meta' as const, device: a.device.id, entry: 7, key: 'k', value: 'v', hlc: author.hlc },
    { op: 'meta' as const, device: a.device.id, entry: 7, key: 'gone', value: null, hlc: author.hlc },
  ];
  t.same(decodeLogBlock(encodeLogBlock({ lastSeq: 3, ops })).ops, ops, 'metadata operations survive the log encoding, removals included');
  t.throws(() => metaA.set(report, 'bad key', 'x'), /letters, digits/);
  t.throws(() => metaA.set(report, 'big', 'x'.repeat(5000)), /at most 4096 bytes/);
});

t.test('sd meta set, ls and rm', async (t) => {
  const lib = tempDir(t);
  const root = writeTree(tempDir(t), { 'a.txt': 'a' });
  await sd(['init', '--name', 'lap'], { library: lib });
  await sd(['location', 'add', root, '--name', 'docs'], { library: lib });
  t.equal((await sd(['meta', 'set', 'sd://lap/docs/a.txt', 'rating', '4'], { library: lib })).code, 0);
  const set = await sd(['--json', 'meta', 'set', `${root}/a.txt`, 'author', 'Grace Hopper'], { library: lib });
  t.same(JSON.parse(set.stdout).metadata, { author: 'Grace Hopper', rating: '4' });
  const ls = await sd(['meta', 'ls', 'sd://lap/docs/a.txt'], { library: lib });
  t.match(ls.stdout, /author\s+Grace Hopper/);
  await sd(['meta', 'rm', 'sd://lap/docs/a.txt', 'rating'], { library: lib });
  const after = await sd(['--json', 'meta', 'ls', 'sd://lap/docs/a.txt'], { library: lib });
  t.same(JSON.parse(after.stdout)[0].metadata, { author: 'Grace Hopper' });
  const bad = await sd(['meta', 'set', 'sd://lap/docs/a.txt', 'a/b', 'x'], { library: lib });
  t.equal(bad.code, 2, 'a bad key is a usage error');
  const missing = await sd(['meta', 'set', 'sd://lap/docs/nope', 'k', 'v'], { library: lib });
  t.equal(missing.code, 1);
  const usage = await sd(['meta', 'set', 'sd://lap/docs/a.txt', 'k'], { library: lib });
  t.equal(usage.code, 2);
  t.match(usage.stderr, /SDPATH KEY VALUE/);
});

t.test('the mount: user.sd.meta.<key> xattrs read, set and remove metadata', async (t) => {
  const { library } = await libraryWithLocation(t, { 'a.txt': 'a' }, 'lap', 'docs');
  const m = await startMount(t, library);
  const file = path.join(m.mountpoint, 'lap/docs/a.txt');
  setAttributeSync(file, 'user.sd.meta.rating', Buffer.from('5'));
  t.equal(getAttributeSync(file, 'user.sd.meta.rating')?.toString(), '5', 'reads back');
  t.ok(listAttributesSync(file).includes('user.sd.meta.rating'), 'listed');
  const cli = await sd(['--json', 'meta', 'ls', 'sd://lap/docs/a.txt'], { library });
  t.same(JSON.parse(cli.stdout)[0].metadata, { rating: '5' }, 'sd meta in another process sees it');
  t.throws(() => setAttributeSync(file, 'user.sd.meta.bad key', Buffer.from('x')), /Invalid argument/, 'a bad key is refused (EINVAL)');
  removeAttributeSync(file, 'user.sd.meta.rating');
  t.equal(getAttributeSync(file, 'user.sd.meta.rating'), null, 'removed');
  t.throws(() => removeAttributeSync(file, 'user.sd.meta.rating'), /No data available|ENODATA/, 'removing a missing key is ENODATA');
  t.notOk(fs.readdirSync(path.join(m.mountpoint, 'lap/docs')).includes('.sd-meta'), 'no files are made for it');
});
