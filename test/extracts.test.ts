// Contents' extracts as the library keeps and shares them: one row per content, its text
// and metadata searchable, its kind by bytes taken by every file holding it, queued for
// extraction when a file of this device gets a content id, and carried to peers in the log.
import t from 'tap';
import { decodeLogBlock, encodeLogBlock, type LogOp } from '../src/replication/log-messages.js';
import { toBlocks } from '../src/replication/device-log.js';
import { EXTRACT_VERSION, ExtractStore, MAX_EXTRACT_TEXT_BYTES, type ContentExtract } from '../src/vdfs/content/extracts.js';
import { EntryStore } from '../src/vdfs/entries.js';
import { anyUnextracted, countUnextracted } from '../src/vdfs/indexer/extract-phase.js';
import { parsePlain } from '../src/vdfs/search/plain.js';
import { parseQuery } from '../src/vdfs/search/query.js';
import { plainContext } from '../src/vdfs/search/run.js';
import { searchEntries } from '../src/vdfs/search/search.js';
import { location, mirrorOf } from './guardian-helpers.js';
import { tempLibrary } from './helpers.js';

const extract = (contentId: string, over: Partial<ContentExtract> = {}): ContentExtract => ({
  contentId,
  version: EXTRACT_VERSION,
  status: 'ok',
  mime: 'application/pdf',
  text: 'Form 1040 adjusted gross income',
  meta: {},
  ...over,
});

t.test('an extract survives the log encoding; a block with too much text or bad metadata is refused', async (t) => {
  const ops: LogOp[] = [
    { op: 'extract', ...extract('c1', { meta: { takenAt: 1_700_000_000_000, width: 4032, height: 3024, camera: 'Apple iPhone 13', gps: true, values: ['Beach day'] } }) },
    { op: 'extract', ...extract('c2', { status: 'failed', mime: null, text: null, meta: { error: 'not a valid PDF' } }) },
    { op: 'extract', ...extract('c3', { text: '' }) },
  ];
  t.same(decodeLogBlock(encodeLogBlock({ lastSeq: 1, ops })).ops, ops, 'text, metadata, a failure and empty text come back as sent');
  const huge: LogOp = { op: 'extract', ...extract('c4', { text: 'x'.repeat(MAX_EXTRACT_TEXT_BYTES + 1) }) };
  t.throws(() => decodeLogBlock(encodeLogBlock({ lastSeq: 1, ops: [huge] })), /more than 1048576 bytes of text/, 'more text than a log may carry is refused');
  const bad = { op: 'extract', ...extract('c5'), meta: { takenAt: 'yesterday' } } as unknown as LogOp;
  t.throws(() => decodeLogBlock(encodeLogBlock({ lastSeq: 1, ops: [bad] })), /takenAt is not a number/, 'metadata of the wrong type is refused, naming the field');

  const big = Array.from({ length: 100 }, (_, i): LogOp => ({ op: 'extract', ...extract(`c${i}`, { text: 'word '.repeat(12_000) }) }));
  const blocks = toBlocks(big, null, 7, 1000);
  t.ok(blocks.length >= 5, `100 extracts of 60 KB are cut into several blocks (${blocks.length})`);
  t.ok(blocks.every((b) => b.byteLength < 1.2 * 1024 * 1024), 'no block is much over 1 MiB');
  t.same(blocks.flatMap((b) => decodeLogBlock(b).ops.map((o) => (o as { contentId: string }).contentId)), big.map((o) => (o as { contentId: string }).contentId), 'every extract is in one block, in order');
});

t.test('a recorded extract is searched by its words, gives its kind to every file holding it, and is queued for the log', async (t) => {
  const library = tempLibrary(t, 'laptop');
  const db = library.db;
  const l = location(t, library, 'docs', 'content', { 'scan-0001.pdf': 'the bytes of a scan', 'photo.dat': 'the bytes of a photo', 'copy.bin': 'the bytes of a photo' });
  const store = new EntryStore(db);
  const scan = store.resolve(l.rootEntryId!, ['scan-0001.pdf'])!;
  const photo = store.resolve(l.rootEntryId!, ['photo.dat'])!;
  t.ok(anyUnextracted(db), 'files given a content id wait for extraction');
  t.equal(countUnextracted(db, l.id), 2, 'one per content (photo.dat and copy.bin hold the same bytes)');

  const extracts = new ExtractStore(db, library.device.id);
  const names = (query: string) => searchEntries(db, parseQuery(query), { limit: 10 }).map((e) => e.name).sort();
  t.same(names('1040'), [], 'before extraction, a word inside the file finds nothing');
  t.same(names('kind:image'), [], 'and a .dat is of no kind');
  extracts.record(extract(scan.contentId!));
  extracts.record(extract(photo.contentId!, { mime: 'image/jpeg', text: null, meta: { takenAt: Date.UTC(2024, 6, 1), camera: 'Canon EOS R5', values: ['Lisbon'] } }));
  t.same(names('1040'), ['scan-0001.pdf'], 'a word of the text finds the file');
  t.same(names('adjusted income'), ['scan-0001.pdf'], 'every word must be in it');
  t.same(names('canon'), ['copy.bin', 'photo.dat'], 'a metadata value finds every file with those bytes');
  t.same(names('kind:image'), ['copy.bin', 'photo.dat'], 'the kind the bytes say wins over the extension');
  t.same(names('taken:>2024-06-30 taken:<2024-07-02'), ['copy.bin', 'photo.dat'], 'taken: filters by the date the photo was taken');
  t.same(names('taken:<2024-01-01'), [], 'and only by it');
  const parsed = parsePlain('photos taken in 2024', plainContext(db));
  t.equal(parsed.query.taken.length, 2, '"taken in 2024" is a range of the date taken');
  t.same(searchEntries(db, parsed.query, { limit: 10 }).map((e) => e.name).sort(), ['copy.bin', 'photo.dat'], 'photos taken in 2024');
  t.notOk(anyUnextracted(db), 'nothing waits any more');
  const queued = db.prepare(`SELECT count(*) FROM index_outbox WHERE op = 'extract'`).pluck().get();
  t.equal(queued, 2, 'each extract is queued for the device log');

  // A file that changes gets a new content id: it waits for extraction again, and loses the old kind.
  store.update(photo.id, { kind: 'file', size: 99, mtime: 5, inode: photo.inode, mode: photo.mode }, 'c-new');
  t.ok(anyUnextracted(db), 'new bytes wait for extraction');
  t.same(names('kind:image'), ['copy.bin'], 'a file with new bytes no longer takes the old bytes\' kind');
});

t.test('a peer\'s extract is kept unless one as good is held; a mirror finds the peer\'s files by what they hold', async (t) => {
  const a = tempLibrary(t, 'nas');
  const b = tempLibrary(t, 'laptop');
  const l = location(t, a, 'archive', 'content', { 'W2.pdf': 'scan bytes' });
  const w2 = new EntryStore(a.db).resolve(l.rootEntryId!, ['W2.pdf'])!;
  const feed = await mirrorOf(t, a, b);
  new ExtractStore(a.db, a.device.id).record(extract(w2.contentId!, { text: 'Wage and Tax Statement employer Acme' }));
  feed.sync();
  const names = (query: string) => searchEntries(b.db, parseQuery(query), { limit: 10 }).map((e) => `${e.deviceId === a.device.id ? 'nas' : 'laptop'}:${e.name}`);
  t.same(names('acme'), ['nas:W2.pdf'], 'the laptop finds the NAS\'s file by a word inside it, without its bytes');

  // A device paired later starts from a snapshot of the NAS's index: the extracts follow it.
  const c = tempLibrary(t, 'phone');
  const late = await mirrorOf(t, a, c);
  t.same(searchEntries(c.db, parseQuery('acme'), { limit: 10 }).map((e) => e.name), [], 'the snapshot itself carries no text');
  late.sync();
  t.same(searchEntries(c.db, parseQuery('acme'), { limit: 10 }).map((e) => e.name), ['W2.pdf'], 'the extracts queued after it bring it');

  const bStore = new ExtractStore(b.db, b.device.id);
  t.notOk(bStore.recordFromPeer(extract(w2.contentId!, { status: 'failed', text: null, meta: { error: 'x' } }), a.device.id), 'a failed extract does not replace a parsed one');
  t.notOk(bStore.recordFromPeer(extract(w2.contentId!, { version: EXTRACT_VERSION - 1, text: 'older' }), a.device.id), 'an older version does not replace a newer one');
  t.ok(bStore.recordFromPeer(extract(w2.contentId!, { version: EXTRACT_VERSION + 1, text: 'newer words' }), a.device.id), 'a newer version does');
  t.same(names('newer'), ['nas:W2.pdf'], 'and its words are searched');
  t.same(names('acme'), [], 'the old words are gone');
});
