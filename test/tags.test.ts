// Tags: hybrid logical clock stamps, last-writer-wins registers per (entry, tag), and the
// `sd tag` command. Two libraries exchanging each other's operations in different orders
// end with the same registers (convergence), whatever the wall clocks say.
import fs from 'node:fs';
import path from 'node:path';
import { getAttributeSync, listAttributesSync, removeAttributeSync, setAttributeSync } from '@napi-rs/xattr';
import t from 'tap';
import { HlcClock, formatHlc, parseHlc } from '../src/replication/hlc.js';
import { EntryStore } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import { addLocation } from '../src/vdfs/locations.js';
import { TagStore, parseTagList, type TagOp } from '../src/vdfs/tags.js';
import { sd } from './cli-process.js';
import { tempDir, tempLibrary, writeTree } from './helpers.js';
import { sqlRows, throwsSdError } from './index-assertions.js';
import { libraryWithLocation, startMount } from './mount-helpers.js';

t.test('HLC stamps sort in clock order and never go back', async (t) => {
  let wall = 1000;
  const clock = new HlcClock('dev-a', null, () => wall);
  const a = clock.tick();
  const b = clock.tick(); // same ms: the counter moves
  wall = 500; // the wall clock went back
  const c = clock.tick();
  t.ok(a < b && b < c, 'every stamp sorts after the one before');
  t.same(parseHlc(b), { ms: 1000, counter: 1, device: 'dev-a' });
  clock.observe(formatHlc({ ms: 5000, counter: 7, device: 'dev-b' }));
  t.ok(clock.tick() > formatHlc({ ms: 5000, counter: 7, device: 'dev-b' }), 'a stamp after an observed one sorts after it');
  clock.observe(formatHlc({ ms: 5000 + 10 * 86_400_000, counter: 0, device: 'dev-b' }));
  t.ok(parseHlc(clock.tick()).ms < 1_000_000, 'a stamp from a clock days ahead is not believed');
});

t.test('tag names are checked', async (t) => {
  t.same(parseTagList(' tax, 2025 ,tax,, '), ['tax', '2025']);
  throwsSdError(t, () => parseTagList('a/b'), 'USAGE', /may not contain/, 'a slash');
  throwsSdError(t, () => parseTagList('..'), 'USAGE', /not a tag name/, 'dot-dot');
  throwsSdError(t, () => parseTagList('x'.repeat(300)), 'USAGE', /longer than 255 bytes/, 'too long');
});

t.test('concurrent tag edits on two devices converge, last writer wins', async (t) => {
  const a = tempLibrary(t, 'alpha');
  const b = tempLibrary(t, 'beta');
  const root = writeTree(tempDir(t), { 'report.pdf': 'x', 'photo.jpg': 'y' });
  const location = addLocation(a.db, new EntryStore(a.db), a.device.id, { path: root, name: 'docs', mode: 'shallow' });
  await indexLocation(a, location);
  const store = new EntryStore(a.db);
  const report = store.resolve(location.rootEntryId!, ['report.pdf'])!;
  const tagsA = new TagStore(a.db, a.device.id);
  const tagsB = new TagStore(b.db, b.device.id);

  const fromA: TagOp[] = [...tagsA.add(report, ['tax', 'draft'])];
  // B (with a clock a little ahead) removes 'draft' and adds 'final' on A's file.
  const ref = tagsA.refOf(report);
  for (const op of fromA) tagsB.apply(op);
  const later = (hlc: string, tag: string, present: boolean): TagOp => {
    const s = parseHlc(hlc);
    return { target: ref, tag, present, hlc: formatHlc({ ms: s.ms + 5, counter: 0, device: b.device.id }) };
  };
  const fromB = [later(fromA[1]!.hlc, 'draft', false), later(fromA[1]!.hlc, 'final', true)];
  for (const op of fromB) tagsB.apply(op);
  // A meanwhile, with an older stamp, adds 'draft' again: it loses to B's removal.
  const stale: TagOp = { target: ref, tag: 'draft', present: true, hlc: formatHlc({ ...parseHlc(fromA[1]!.hlc), counter: 99 }) };
  t.equal(tagsA.apply(stale), true, 'A takes its own edit');
  // Exchange in the other order on each side.
  for (const op of [...fromB].reverse()) tagsA.apply(op);
  t.equal(tagsB.apply(stale), false, 'B keeps the newer removal');
  t.equal(tagsA.apply(fromA[0]!), false, 'an operation applied twice changes nothing');

  const registers = (db: typeof a.db) => db.prepare('SELECT device_id, entry_ref, tag, present, hlc FROM tag_ops ORDER BY tag').all();
  t.same(registers(a.db), registers(b.db), 'both devices hold the same registers');
  t.same(tagsA.tagsOf(report.id), ['final', 'tax'], "A's file carries the merged tags");
  t.same(tagsA.list(), [{ tag: 'final', entries: 1 }, { tag: 'tax', entries: 1 }]);
  const queued = sqlRows(a, "SELECT count(*) FROM index_outbox WHERE op = 'tag'");
  t.same(queued, ['2'], "only A's own two operations wait for A's log");
});

t.test('sd tag add, ls, files and rm', async (t) => {
  const lib = tempDir(t);
  const root = writeTree(tempDir(t), { 'a.txt': 'a', 'sub/b.txt': 'b' });
  await sd(['init', '--name', 'lap'], { library: lib });
  await sd(['location', 'add', root, '--name', 'docs'], { library: lib });
  const added = await sd(['--json', 'tag', 'add', 'tax,2025', 'sd://lap/docs/a.txt', `${root}/sub`], { library: lib });
  t.equal(added.code, 0, added.stderr);
  t.same(JSON.parse(added.stdout).map((r: { tags: string[] }) => r.tags), [['2025', 'tax'], ['2025', 'tax']]);
  const files = await sd(['--json', 'tag', 'files', 'tax'], { library: lib });
  t.same(JSON.parse(files.stdout).map((v: { sdpath: string }) => v.sdpath).sort(), ['sd://lap/docs/a.txt', 'sd://lap/docs/sub']);
  await sd(['tag', 'rm', '2025', 'sd://lap/docs/a.txt'], { library: lib });
  const ls = await sd(['--json', 'tag', 'ls'], { library: lib });
  t.same(JSON.parse(ls.stdout), [{ tag: '2025', entries: 1 }, { tag: 'tax', entries: 2 }]);
  const bad = await sd(['tag', 'add', 'a/b', 'sd://lap/docs/a.txt'], { library: lib });
  t.equal(bad.code, 2, 'a bad tag name is a usage error');
  t.match(bad.stderr, /may not contain/);
  const missing = await sd(['tag', 'add', 'x', 'sd://lap/docs/nope'], { library: lib });
  t.equal(missing.code, 1);
  t.match(missing.stderr, /not in the index/);
});

t.test('the mount: setfattr user.sd.tags tags a file, /sd/.tags/<tag>/ links to it', async (t) => {
  const { library } = await libraryWithLocation(t, { 'a.txt': 'a', 'sub/b.txt': 'b' }, 'lap', 'docs');
  const m = await startMount(t, library);
  const file = path.join(m.mountpoint, 'lap/docs/a.txt');
  setAttributeSync(file, 'user.sd.tags', Buffer.from('tax, 2025'));
  t.equal(getAttributeSync(file, 'user.sd.tags')?.toString(), '2025,tax', 'the tags read back, sorted');
  t.ok(listAttributesSync(file).includes('user.sd.tags'), 'listed with the other sd attributes');
  t.same(fs.readdirSync(path.join(m.mountpoint, '.tags')).sort(), ['2025', 'tax']);
  t.equal(fs.readlinkSync(path.join(m.mountpoint, '.tags/tax/a.txt')), '../../lap/docs/a.txt', 'a relative link into the tree');
  t.equal(fs.readFileSync(path.join(m.mountpoint, '.tags/tax/a.txt'), 'utf8'), 'a', 'which opens the file');
  const cli = await sd(['--json', 'tag', 'ls', 'sd://lap/docs/a.txt'], { library });
  t.same(JSON.parse(cli.stdout)[0].tags, ['2025', 'tax'], 'sd tag ls in another process sees the same tags');
  t.throws(() => setAttributeSync(file, 'user.sd.tags', Buffer.from('a/b')), /Invalid argument/, 'a bad tag name is refused (EINVAL)');
  removeAttributeSync(file, 'user.sd.tags');
  t.same(fs.readdirSync(path.join(m.mountpoint, '.tags')), [], 'removing the attribute removes every tag');
  t.throws(() => fs.mkdirSync(path.join(m.mountpoint, '.tags/new')), { code: 'EROFS' }, '.tags is not written to');
});
