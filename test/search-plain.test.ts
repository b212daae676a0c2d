// Plain-language search: sentences become the structured query (dates, sizes, kinds,
// topics, devices, locations, folders, tags, negation, "only on"), locally and without a
// model; then run over this device's files and a peer's mirror, grouped per content; and
// through `sd search` (--explain, --json, bad input).
import crypto from 'node:crypto';
import t from 'tap';
import { SdError } from '../src/errors.js';
import { addPeerDevice } from '../src/vdfs/device.js';
import { EntryStore } from '../src/vdfs/entries.js';
import { setLocationRoot, upsertMirroredLocation } from '../src/vdfs/locations.js';
import { parsePlain, type PlainContext } from '../src/vdfs/search/plain.js';
import { parseQuery } from '../src/vdfs/search/query.js';
import { runSearch } from '../src/vdfs/search/run.js';
import { TagStore } from '../src/vdfs/tags.js';
import { sd } from './cli-process.js';
import { tempLibrary } from './helpers.js';

const NOW = new Date(2026, 11, 6, 10, 0, 0).getTime(); // Sunday 6 December 2026, local time
const at = (y: number, m: number, d: number) => new Date(y, m - 1, d).getTime();

const CTX: PlainContext = {
  now: NOW,
  devices: [
    { slug: 'laptop', name: 'Laptop', local: true },
    { slug: 'nas', name: 'NAS', local: false },
    { slug: 'pixel', name: 'Pixel Phone', local: false },
  ],
  locations: ['photos', 'docs'],
  tags: ['keep'],
  folderExists: (name) => name.toLowerCase() === 'taxes 2025',
};

t.test('sentences become structured queries', async (t) => {
  const q = (text: string) => parsePlain(text, CTX).query;
  t.match(q('tax documents from last year'), { anyOf: [['tax', 'taxes', '1040', 'w2', 'w-2', '1099', 'irs', 'receipt', 'invoice', 'deduction', 'return']], kinds: ['document'], modified: [{ op: '>=', ms: at(2025, 1, 1) }, { op: '<', ms: at(2026, 1, 1) }], words: [] }, 'tax documents from last year: a topic, a kind, the whole of 2025');
  t.match(q('videos over 1 GB from last week on nas'), { kinds: ['video'], sizes: [{ op: '>', bytes: 1e9 }], modified: [{ op: '>=', ms: at(2026, 11, 23) }, { op: '<', ms: at(2026, 11, 30) }], devices: ['nas'], words: [] }, 'videos over 1 GB from last week on nas: kind, size, Monday to Sunday of last week, a device');
  t.match(q('photos of 2024 only on my phone'), { kinds: ['image'], kindExtensions: [], modified: [{ op: '>=', ms: at(2024, 1, 1) }, { op: '<', ms: at(2025, 1, 1) }], onlyOn: ['pixel'], words: [] }, "photos of 2024 only on my phone: images and camera raw, the year, only on the device whose name holds 'phone'");
  t.match(q("big files I haven't touched in 2 years"), { sizes: [{ op: '>=', bytes: 1e8 }], modified: [{ op: '<', ms: NOW - 2 * 365.25 * 86_400_000 }], words: [] }, "big files I haven't touched in 2 years: ≥ 100 MB, not modified for 2 years");
  t.match(q('screenshots older than a month'), { kinds: ['image'], anyOf: [['screenshot', 'screen shot', 'scrn']], modified: [{ op: '<' }] }, 'screenshots: images named so; older than a month');
  t.match(q('invoices in taxes 2025'), { folders: ['taxes 2025'], modified: [] }, 'a folder of two words wins over the year in its name');
  t.match(q('pdfs not on nas tagged keep'), { kindExtensions: ['pdf'], notOn: ['nas'], tags: ['keep'] }, 'not on a device, tagged');
  t.match(q('documents without drafts'), { kinds: ['document'], without: ['draft'] }, 'without a word (its stem, so draft and drafts both go)');
  t.match(q('reports since March'), { words: ['report'], modified: [{ op: '>=', ms: at(2026, 3, 1) }] }, 'a month with no year is the last one; words match by stem');
  t.match(q('holiday before 2023 in photos'), { words: ['holiday'], modified: [{ op: '<', ms: at(2023, 1, 1) }], locations: ['photos'] }, 'before a year; in a location');
  t.match(q('kind:image size:>1MB holiday'), { kinds: ['image'], sizes: [{ op: '>', bytes: 1e6 }], words: ['holiday'] }, 'the filters of before still work, beside words');
  t.match(q('music not photos'), { kinds: ['audio'], notKinds: ['image'] }, 'not a kind');
  t.match(q('w2 from yesterday'), { words: ['w2'], modified: [{ op: '>=', ms: at(2026, 12, 5) }, { op: '<', ms: at(2026, 12, 6) }] }, 'yesterday');
  t.match(q('photos taken last year'), { kinds: ['image'], taken: [{ op: '>=', ms: at(2025, 1, 1) }, { op: '<', ms: at(2026, 1, 1) }], modified: [] }, 'taken: the dates after it are when a photo was taken');
  t.match(q('documents at risk'), { kinds: ['document'], atRisk: true, words: [] }, 'at risk: the Data Guardian\'s count');
  t.match(q('photos with only one copy'), { copies: [{ op: '=', n: 1 }], words: [] }, 'only one copy');
  t.match(q('videos not backed up'), { kinds: ['video'], copies: [{ op: '=', n: 1 }], words: [] }, 'not backed up');
  t.match(q('documents with fewer than 3 copies'), { copies: [{ op: '<', n: 3 }], words: [] }, 'fewer than N copies');
  t.match(q('videos longer than 10 minutes'), { kinds: ['video'], durations: [{ op: '>', ms: 600_000 }], sizes: [], words: [] }, 'longer than: how long it plays');
  t.match(q('songs under 3 minutes'), { durations: [{ op: '<', ms: 180_000 }], words: [] }, 'under N minutes is a length, not a size');
  t.match(parseQuery('duration:>1.5h duration:<=90'), { durations: [{ op: '>', ms: 5_400_000 }, { op: '<=', ms: 90_000 }] }, 'duration: in hours, or seconds by default');
  t.throws(() => parseQuery('duration:>long'), /not a length/, 'a duration that is not one is refused');
  t.match(q('reports created last year'), { words: ['report'], modified: [{ op: '>=', ms: at(2025, 1, 1) }] }, 'created: no creation time is kept, the last change stands in');
  t.ok(parsePlain('reports created last year', CTX).notes.some((n) => /creation times are not kept/.test(n)), 'and the notes say so');
  t.throws(() => parseQuery('created:>2024-01-01'), /creation times are not kept/, 'created: as a filter is refused, saying why');
  const notes = parsePlain('tax documents from last year', CTX).notes;
  t.ok(notes.some((n) => n.includes('2025-01-01 .. 2025-12-31')), `the notes say what each part meant (${notes.join(' | ')})`);

  for (const [text, message] of [
    ['   ', /nothing to search for/],
    ['the of and my', /nothing to search for/],
    ['x'.repeat(10_000), /too long/],
  ] as const) {
    const started = performance.now();
    let refused: unknown;
    try {
      parsePlain(text, CTX);
    } catch (err) {
      refused = err;
    }
    t.ok(refused instanceof SdError && refused.code === 'USAGE' && message.test(refused.message), `refused: ${text.length > 20 ? `${text.length} characters` : `'${text}'`} (${String(refused)})`);
    t.ok(performance.now() - started < 50, 'at once');
  }
});

t.test('run over this device and a mirror: grouped per content, the filters of a sentence applied', async (t) => {
  const library = tempLibrary(t, 'laptop');
  const db = library.db;
  const store = new EntryStore(db);
  const phone = addPeerDevice(db, { id: crypto.randomUUID(), name: 'Pixel Phone', publicKey: crypto.randomBytes(32).toString('hex') });
  const now = new Date();
  const lastYear = new Date(now.getFullYear() - 1, 5, 15).getTime();
  const long = Date.now() - 3 * 365 * 86_400_000;
  let remote = 1;
  // A location per device (mirrored rows for both: search reads them alike), files with contents.
  const place = (deviceId: string, name: string) => {
    const id = upsertMirroredLocation(db, deviceId, remote, { name, rootPath: `/x/${name}`, indexMode: 'deep' }).id;
    const root = store.insertMirrored(deviceId, id, [], { name: '', kind: 'dir', size: 0, mtime: Date.now(), mode: 0o40755 }, null, remote++);
    setLocationRoot(db, id, root);
    return { deviceId, id, root };
  };
  const add = (p: { deviceId: string; id: number; root: number }, chain: number[], name: string, size: number, mtime: number, content: string | null, kind: 'file' | 'dir' = 'file') =>
    store.insertMirrored(p.deviceId, p.id, [p.root, ...chain], { name, kind, size, mtime, mode: kind === 'dir' ? 0o40755 : 0o100644 }, content, remote++);
  const docs = place(library.device.id, 'docs');
  const cam = place(phone.id, 'camera');
  add(docs, [], 'W-2 2025.pdf', 40_000, lastYear, 'c-w2');
  add(docs, [], 'holiday notes.txt', 300, lastYear, 'c-notes');
  add(docs, [], 'old disk image.iso', 2e9, long, 'c-iso');
  const taxes = add(docs, [], 'Taxes 2025', 0, lastYear, null, 'dir');
  add(docs, [taxes], 'scan 0012.pdf', 90_000, lastYear, 'c-scan');
  add(docs, [], 'beach.jpg', 5_000_000, at(2024, 7, 1), 'c-beach');
  add(cam, [], 'beach.jpg', 5_000_000, at(2024, 7, 1), 'c-beach');
  add(cam, [], 'IMG_0001.jpg', 3_000_000, at(2024, 8, 2), 'c-img1');
  add(cam, [], 'IMG_0002.dng', 20_000_000, at(2024, 8, 3), 'c-img2');
  add(cam, [], 'IMG_0003.jpg', 3_000_000, at(2023, 8, 3), 'c-img3');
  new TagStore(db, library.device.id).add(store.resolve(docs.root, ['holiday notes.txt'])!, ['keep']);

  const names = (text: string) => runSearch(db, text, 100).hits.map((h) => h.entry.name).sort();
  t.same(names('w2'), ['W-2 2025.pdf'], 'w2 finds W-2');
  t.same(names('tax documents from last year'), ['W-2 2025.pdf', 'scan 0012.pdf'], 'tax documents from last year: the W-2 (its name says tax) and the scan in Taxes 2025 (its folder does), not the holiday notes');
  t.same(names('documents in Taxes 2025'), ['scan 0012.pdf'], 'documents below a folder named Taxes 2025');
  t.same(names('photos of 2024 only on my phone'), ['IMG_0001.jpg', 'IMG_0002.dng'], 'photos of 2024 only on the phone: camera raw too; the beach photo has a copy on the laptop');
  t.same(names("big files I haven't touched in 2 years"), ['old disk image.iso'], "big files not touched in 2 years");
  t.same(names('notes tagged keep'), ['holiday notes.txt'], 'tagged');
  t.same(names('photos not on laptop'), ['IMG_0001.jpg', 'IMG_0002.dng', 'IMG_0003.jpg'], 'not on a device: no copy there');
  const beach = runSearch(db, 'beach', 100).hits;
  t.equal(beach.length, 1, 'the same bytes on two devices are one result');
  t.equal(beach[0]?.alsoAt.length, 1, 'with the other copy beside it');
  t.same(runSearch(db, 'photos on pixel', 2).hits.map((h) => h.entry.name), ['IMG_0002.dng', 'IMG_0001.jpg'], 'no words: newest first, up to the limit');
  t.same(names('photos with only one copy'), ['IMG_0001.jpg', 'IMG_0002.dng', 'IMG_0003.jpg'], 'only one copy: the beach photo, on two devices, is not');
  t.same(names('copies:2'), ['beach.jpg'], 'copies:2 counts devices, not files');
  t.same(runSearch(db, 'photos at risk', 100, { atRisk: () => ['c-img1', 'c-notes'] }).hits.map((h) => h.entry.name), ['IMG_0001.jpg'], 'at risk: the contents the Data Guardian names, with the other filters');

  // The command.
  const o = { library: library.dir };
  const [explain, json, nothing, tooLong, badFilter] = await Promise.all([
    sd(['search', '--explain', 'tax', 'documents', 'from', 'last', 'year'], o),
    sd(['--json', 'search', 'photos of 2024 only on my phone'], o),
    sd(['search', 'the of and'], o),
    sd(['search', 'y'.repeat(10_000)], o),
    sd(['search', 'kind:bogus'], o),
  ]);
  t.equal(explain.code, 0, '--explain exits 0');
  t.match(explain.stdout, /from last year → modified \d{4}-01-01 \.\. \d{4}-12-31/, '--explain says how the date was read');
  t.match(explain.stdout, /documents → kind document/, 'and the kind');
  t.notMatch(explain.stdout, /W-2/, 'and searches nothing');
  const out = JSON.parse(json.stdout) as { query: { onlyOn: string[] }; results: Array<{ name: string }> };
  t.same(out.query.onlyOn, ['pixel-phone'], '--json: the query');
  t.same(out.results.map((r) => r.name).sort(), ['IMG_0001.jpg', 'IMG_0002.dng'], '--json: with the results');
  for (const [r, what, message] of [[nothing, 'a sentence with nothing to search for', /nothing to search for/], [tooLong, 'a 10 KB query', /too long/], [badFilter, 'a bad filter', /unknown kind/]] as const) {
    t.equal(r.code, 2, `${what} exits 2`);
    t.match(r.stderr, message, `${what}: says what`);
    t.match(r.stderr, /^sd: [^\n]+\n$/, `${what}: in one line`);
  }
});

t.test("every file's extension and kind are columns of the index (migration 16)", async (t) => {
  const library = tempLibrary(t, 'laptop');
  const db = library.db;
  const store = new EntryStore(db);
  const l = upsertMirroredLocation(db, library.device.id, 1, { name: 'x', rootPath: '/x', indexMode: 'shallow' });
  const root = store.insertMirrored(library.device.id, l.id, [], { name: '', kind: 'dir', size: 0, mtime: 1, mode: 0o40755 }, null, 1);
  const cases: Array<[string, 'file' | 'dir', string | null, string | null]> = [
    ['IMG_0001.JPG', 'file', 'jpg', 'image'],
    ['raw shot.CR3', 'file', 'cr3', 'image'],
    ['archive.tar.gz', 'file', 'gz', 'archive'],
    ['notes.md', 'file', 'md', 'document'],
    ['Makefile', 'file', null, null],
    ['.bashrc', 'file', 'bashrc', null],
    ['odd.b,jpg', 'file', 'b,jpg', null],
    ['photos.jpg', 'dir', null, null],
    ['ünï.FLAC', 'file', 'flac', 'audio'],
  ];
  let remote = 2;
  for (const [name, kind] of cases) store.insertMirrored(library.device.id, l.id, [root], { name, kind, size: 1, mtime: 1, mode: kind === 'dir' ? 0o40755 : 0o100644 }, null, remote++);
  const got = db.prepare('SELECT name, ext, kind_class FROM entries WHERE parent_id = ? ORDER BY id').raw().all(root);
  t.same(got, cases.map(([name, , ext, kind]) => [name, ext, kind]), 'the last extension in lower case, and the kind it belongs to; none for folders, names without one, or commas');
});
