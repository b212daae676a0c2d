// sd search over a real library: words match the start of words in names (FTS5,
// every word must match), and the filters kind:, ext:, size:, modified:, in: narrow
// the result alone or combined. Semantics through the library's own search (the code
// `sd search` runs), then the command itself for its output, errors and exit codes.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { SdError } from '../src/errors.js';
import { EntryStore } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import { addLocation } from '../src/vdfs/locations.js';
import { parseQuery } from '../src/vdfs/search/query.js';
import { searchEntries } from '../src/vdfs/search/search.js';
import { sd } from './cli-process.js';
import { tempDir, tempLibrary, writeTree } from './helpers.js';

const DAY = 86_400_000;
const NOW = Date.now();

/** name -> [size, mtime] for the files of two locations. */
const MEDIA: Record<string, [number, Date]> = {
  'Holiday 2024.jpg': [3000, new Date('2024-07-01T10:00:00Z')],
  'holiday-beach.png': [2000, new Date('2024-07-02T10:00:00Z')],
  'Holidays/IMG_0001.JPG': [1500, new Date('2023-12-31T10:00:00Z')],
  'video/trip.mp4': [200_000, new Date('2025-02-01T10:00:00Z')],
  'song.mp3': [4000, new Date('2024-03-03T10:00:00Z')],
};
const DOCS: Record<string, [number, Date]> = {
  'report 2024.pdf': [50_000, new Date('2024-12-31T23:00:00Z')],
  'notes.md': [100, new Date(NOW - 2 * DAY)],
  'holiday plan.txt': [300, new Date('2024-06-01T10:00:00Z')],
  'archive.tar.gz': [120_000, new Date('2022-01-01T10:00:00Z')],
  'code/main.ts': [10, new Date('2024-05-05T10:00:00Z')],
  'Ünïcode Straße.txt': [7, new Date('2024-05-05T10:00:00Z')],
};
const DIR_TIME = new Date('2024-08-08T10:00:00Z');

function makeTree(root: string, files: Record<string, [number, Date]>): string {
  writeTree(root, Object.fromEntries(Object.entries(files).map(([rel, [size]]) => [rel, Buffer.alloc(size, 0x61)])));
  for (const [rel, [, mtime]] of Object.entries(files)) fs.utimesSync(path.join(root, rel), mtime, mtime);
  for (const rel of Object.keys(files)) {
    const dir = path.dirname(rel);
    if (dir !== '.') fs.utimesSync(path.join(root, dir), DIR_TIME, DIR_TIME);
  }
  return root;
}

t.test('search words and filters', async (t) => {
  const base = tempDir(t, 'sd-search-');
  const library = tempLibrary(t, 'Finder');
  const store = new EntryStore(library.db);
  for (const [name, files] of [['media', MEDIA], ['docs', DOCS]] as const) {
    const location = addLocation(library.db, store, library.device.id, { path: makeTree(path.join(base, name), files), name, mode: 'shallow' });
    indexLocation(library, location);
  }
  const names = (query: string): string[] => searchEntries(library.db, parseQuery(query), { limit: 100 }).map((e) => e.name).sort();
  const cases: Array<[string, string[], string]> = [
    ['holiday', ['Holiday 2024.jpg', 'Holidays', 'holiday plan.txt', 'holiday-beach.png', 'IMG_0001.JPG'], 'a word matches names holding it, any case, and words it starts, and files in folders so named (Holidays/IMG_0001.JPG)'],
    ['holi', ['Holiday 2024.jpg', 'Holidays', 'holiday plan.txt', 'holiday-beach.png', 'IMG_0001.JPG'], 'a word matches as a prefix'],
    ['HOLIDAY', ['Holiday 2024.jpg', 'Holidays', 'holiday plan.txt', 'holiday-beach.png', 'IMG_0001.JPG'], 'case does not matter'],
    ['oliday', [], 'a word matches the start of a word in a name, not its middle'],
    ['beach', ['holiday-beach.png'], 'words in a name are split at - and .'],
    ['holiday 2024', ['Holiday 2024.jpg'], 'every word must match'],
    ['2024', ['Holiday 2024.jpg', 'report 2024.pdf'], 'digits are words too'],
    ['strasse', [], 'no folding of ß'],
    ['straße', ['Ünïcode Straße.txt'], 'unicode words match'],
    ['unicode', ['Ünïcode Straße.txt'], 'diacritics are folded'],
    ['nothing-like-this', [], 'no match, no result'],
    ['kind:image', ['Holiday 2024.jpg', 'IMG_0001.JPG', 'holiday-beach.png'], 'kind:image by extension, upper case too'],
    ['kind:audio', ['song.mp3'], 'kind:audio'],
    ['kind:document', ['Ünïcode Straße.txt', 'holiday plan.txt', 'notes.md', 'report 2024.pdf'], 'kind:document'],
    ['kind:archive', ['archive.tar.gz'], 'kind:archive'],
    ['kind:dir', ['Holidays', 'code', 'video'], 'kind:dir lists folders (never location roots)'],
    ['kind:image kind:audio', ['Holiday 2024.jpg', 'IMG_0001.JPG', 'holiday-beach.png', 'song.mp3'], 'two kinds: either'],
    ['ext:pdf', ['report 2024.pdf'], 'ext:'],
    ['ext:.md', ['notes.md'], 'ext: with a dot'],
    ['ext:jpg,png', ['Holiday 2024.jpg', 'IMG_0001.JPG', 'holiday-beach.png'], 'ext: with a list'],
    ['ext:gz', ['archive.tar.gz'], 'ext: is the last extension'],
    ['size:>100KB kind:file', ['archive.tar.gz', 'trip.mp4'], 'size:> in decimal units'],
    ['size:>120KB kind:file', ['trip.mp4'], 'size:> is strictly greater'],
    ['size:>=120KB kind:file', ['archive.tar.gz', 'trip.mp4'], 'size:>= includes the size'],
    ['size:>117KiB kind:file', ['archive.tar.gz', 'trip.mp4'], 'size:> in binary units (117 KiB = 119808 < 120000)'],
    ['size:>118KiB kind:file', ['trip.mp4'], 'size:> in binary units (118 KiB = 120832 > 120000)'],
    ['size:<=100', ['code', 'main.ts', 'notes.md', 'Ünïcode Straße.txt'], 'size:<= in bytes; folders by what they hold'],
    ['size:=3000', ['Holiday 2024.jpg'], 'size:= exact'],
    ['size:>150000', ['trip.mp4', 'video'], 'a folder matches by its total size'],
    ['modified:<2024-01-01', ['IMG_0001.JPG', 'archive.tar.gz'], 'modified:< a date'],
    ['modified:>2025-01-01', ['notes.md', 'trip.mp4'], 'modified:> a date'],
    ['modified:>7d', ['notes.md'], 'modified:>7d is within the last 7 days'],
    ['modified:<2024-07-02 modified:>2024-06-30', ['Holiday 2024.jpg'], 'two date filters make a range'],
    ['in:docs', ['Ünïcode Straße.txt', 'archive.tar.gz', 'code', 'holiday plan.txt', 'main.ts', 'notes.md', 'report 2024.pdf'], 'in:<location>'],
    ['in:docs holiday', ['holiday plan.txt'], 'in: with words'],
    ['in:media in:docs holiday', ['Holiday 2024.jpg', 'Holidays', 'holiday plan.txt', 'holiday-beach.png', 'IMG_0001.JPG'], 'two locations: either'],
    ['holiday kind:image size:>2500', ['Holiday 2024.jpg'], 'words, kind and size together'],
    ['in:media kind:image modified:<2024-07-02', ['Holiday 2024.jpg', 'IMG_0001.JPG'], 'location, kind and date together'],
    ['holiday kind:document in:docs modified:<2025-01-01 size:<1KB', ['holiday plan.txt'], 'five filters together'],
    ['2024 ext:pdf in:media', [], 'filters that exclude each other give nothing'],
  ];
  for (const [query, expected, what] of cases) t.same(names(query), [...expected].sort(), `${what}: ${query}`);
  t.same(names('kind:video'), ['trip.mp4'], 'kind:video finds videos, not TypeScript sources');

  t.same(names('"holiday'), names('holiday'), 'a stray quote in a word is ignored, not an FTS syntax error');
  t.same(names('holiday OR notes'), [], 'FTS operators are plain words (every word must match)');
  t.same(names('***'), [], 'a query of punctuation matches nothing');
  t.doesNotThrow(() => names('NEAR( holiday AND'), 'FTS syntax in a query never throws');

  const newest = searchEntries(library.db, parseQuery('kind:file'), { limit: 3 }).map((e) => e.name);
  t.same(newest, ['notes.md', 'trip.mp4', 'report 2024.pdf'], 'without words: newest first, up to the limit');

  for (const [query, message] of [['kind:bogus', /unknown kind 'bogus'/], ['size:>lots', /not a size/], ['modified:<yesterday', /not a date/], ['in:nowhere', /no location named 'nowhere'/]] as const) {
    let refused: unknown;
    try {
      names(query);
    } catch (err) {
      refused = err;
    }
    t.ok(refused instanceof SdError && message.test(refused.message), `${query} is refused with a clear message (${String(refused)})`);
  }

  // The command: the same results as SdPaths, newest first without words, usage errors exit 2.
  const o = { library: library.dir };
  const [combined, noWords, limited, badKind, badSize, badPlace, human] = await Promise.all([
    sd(['--json', 'search', 'holiday', 'kind:image', 'in:media'], o),
    sd(['--json', 'search', 'ext:jpg,png,pdf'], o),
    sd(['--json', 'search', 'kind:file', '--limit', '2'], o),
    sd(['search', 'kind:bogus'], o),
    sd(['search', 'size:>lots'], o),
    sd(['search', 'in:nowhere'], o),
    sd(['search', 'zzz-no-match'], o),
  ]);
  t.equal(combined.code, 0, 'sd search exits 0');
  const results = (r: { stdout: string }) => (JSON.parse(r.stdout) as { results: Array<{ sdpath: string; name: string }> }).results;
  t.same(results(combined).map((v) => v.sdpath).sort(), ['sd://finder/media/Holiday 2024.jpg', 'sd://finder/media/Holidays/IMG_0001.JPG', 'sd://finder/media/holiday-beach.png'], 'sd search prints the SdPaths of the matches');
  t.same(results(noWords).map((v) => v.name), ['report 2024.pdf', 'holiday-beach.png', 'Holiday 2024.jpg', 'IMG_0001.JPG'], 'without words the newest come first');
  t.equal(results(limited).length, 2, '--limit caps the results');
  for (const [r, what, code, message] of [[badKind, 'an unknown kind', 2, /unknown kind/], [badSize, 'a bad size', 2, /not a size/], [badPlace, 'an unknown location', 1, /no location named/]] as const) {
    t.equal(r.code, code, `${what} exits ${code}`);
    t.match(r.stderr, message, `${what}: the message says why`);
    t.match(r.stderr, /^sd: [^\n]+\n$/, `${what}: one line on stderr`);
  }
  t.same([human.code, human.stdout], [0, 'No matches\n'], 'no match is not an error');
});
