// Indexing what files hold, end to end: `sd index` reads new contents' bytes after their
// identity (text of documents, photo and media metadata, kinds by bytes), `sd search`
// finds files by them, a file that cannot be parsed is a warning and still found by name,
// a stopped run resumes, the running mount does it in the background, and a paired
// device finds the other's files by what they hold without fetching their bytes.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import Database from 'better-sqlite3';
import { DATABASE_FILE } from '../src/vdfs/library.js';
import { sd, spawnSd } from './cli-process.js';
import { makeDocx, makeJpeg, makeOdt, makePdf, makePng, makeWav } from './extract-fixtures.js';
import { runSd, tempDir, waitFor } from './helpers.js';
import { libraryWithLocation, startMount } from './mount-helpers.js';
import { pairedMounts } from './remote-helpers.js';

interface SearchJson {
  results: Array<{ name: string; sdpath: string; device: string }>;
}

async function search(library: string, ...query: string[]): Promise<string[]> {
  const r = await sd(['--json', 'search', ...query], { library });
  if (r.code !== 0) throw new Error(`sd search ${query.join(' ')} failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as SearchJson).results.map((x) => x.name).sort();
}

const DOCUMENTS = (): Record<string, string | Buffer> => ({
  'scan-0001.pdf': makePdf([['Form 1040 U.S. Individual Income Tax Return'], ['Adjusted gross income']], { title: 'Return 2025', author: 'Ada Lovelace' }),
  'letter.docx': makeDocx(['Dear landlord,', 'the boiler in flat 3 is broken again.']),
  'minutes.odt': makeOdt(['Minutes of the allotment society', 'Rhubarb prizes were awarded.']),
  'notes.md': '# Groceries\n\n- quinoa\n- saffron\n',
  'budget.csv': 'item,amount\nzeppelin tickets,400\n',
  'page.html': '<html><head><style>.x{}</style><script>var hidden = "marmalade"</script></head><body><p>Visit the lighthouse</p></body></html>',
  'IMG_0042.jpg': makeJpeg({ width: 4032, height: 3024, make: 'Apple', model: 'iPhone 13', dateTimeOriginal: '2024:07:01 10:00:00', gps: { latitude: 38.7, longitude: -9.1 } }),
  'download.bin': makePng(640, 480),
  'voice memo.wav': makeWav(1500),
  'broken.pdf': 'this is not a PDF at all',
});

t.test('sd index reads what files hold; sd search finds them by it', async (t) => {
  const { library } = await libraryWithLocation(t, DOCUMENTS(), 'laptop', 'docs');
  const index = await sd(['--json', 'index'], { library });
  t.equal(index.code, 0, 'sd index exits 0');
  const [summary] = JSON.parse(index.stdout) as Array<{ counts: { extracted: number; extractFailed: number }; warnings: number; warningSamples: Array<{ path: string; reason: string }> }>;
  // sd location add indexed and extracted already: a second index finds nothing new to read.
  t.equal(summary!.counts.extracted + summary!.counts.extractFailed, 0, 'an index with nothing new reads nothing again');

  t.same(await search(library, 'adjusted', 'gross'), ['scan-0001.pdf'], 'words of a PDF\'s text');
  t.same(await search(library, 'lovelace'), ['scan-0001.pdf'], 'a PDF\'s author (metadata)');
  t.same(await search(library, 'boiler'), ['letter.docx'], 'words of a docx');
  t.same(await search(library, 'rhubarb'), ['minutes.odt'], 'words of an odt');
  t.same(await search(library, 'saffron'), ['notes.md'], 'words of a markdown file');
  t.same(await search(library, 'zeppelin'), ['budget.csv'], 'words of a CSV');
  t.same(await search(library, 'lighthouse'), ['page.html'], 'words of a web page');
  t.same(await search(library, 'marmalade'), [], 'not its scripts');
  t.same(await search(library, 'iphone'), ['IMG_0042.jpg'], 'a photo by its camera');
  t.same(await search(library, 'photos taken in 2024'), ['IMG_0042.jpg'], 'a photo by the date it was taken');
  t.same(await search(library, 'kind:image'), ['IMG_0042.jpg', 'download.bin'], 'a PNG named .bin is an image by its bytes');
  t.same(await search(library, 'kind:audio'), ['voice memo.wav'], 'audio');
  t.same(await search(library, 'recordings shorter than 2 seconds'), ['voice memo.wav'], 'a recording by how long it plays (1.5 s)');
  t.same(await search(library, 'duration:>2s'), [], 'and not by a length it does not have');
  t.same(await search(library, 'tax', 'documents'), ['scan-0001.pdf'], 'the whitepaper\'s topic words reach into text: a scan named scan-0001 is a tax document');
  const broken = await sd(['--json', 'search', 'broken'], { library });
  t.same((JSON.parse(broken.stdout) as SearchJson).results.map((x) => x.name), ['broken.pdf', 'letter.docx'], 'a file that cannot be parsed is still found by its name; a name match ranks before a match in the text');
  const why = (JSON.parse(broken.stdout) as { results: Array<{ matched: string; snippet?: string }> }).results;
  t.match(why, [{ matched: 'name' }, { matched: 'content', snippet: /boiler in flat 3 is \[broken\] again/ }], '--json says where each was found, and shows the words around a match in the text');
  const human = await sd(['search', 'broken'], { library });
  t.match(human.stdout, /letter\.docx\n\s+.*\[broken\]/, 'so does the human listing, under the file');
});

t.test('a file that cannot be parsed is a warning; a stopped extraction resumes', async (t) => {
  const base = tempDir(t, 'sd-extract-');
  const root = path.join(base, 'docs');
  fs.mkdirSync(root);
  const library = path.join(base, 'library');
  t.equal((await runSd(['init', '--name', 'laptop'], { library })).code, 0, 'sd init');
  t.equal((await runSd(['location', 'add', root, '--name', 'docs', '--no-index'], { library })).code, 0, 'sd location add --no-index');
  for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(root, `note ${i}.txt`), `entry ${i} mentions the word kumquat${i}\n`);
  fs.writeFileSync(path.join(root, 'broken.pdf'), 'not a PDF');

  const first = await sd(['--json', 'index'], { library });
  t.equal(first.code, 0, 'sd index exits 0 with a file it cannot parse');
  const [s] = JSON.parse(first.stdout) as Array<{ counts: { extracted: number; extractFailed: number }; warnings: number; warningSamples: Array<{ path: string; reason: string }> }>;
  t.equal(s!.counts.extracted, 40, 'every text file is read');
  t.equal(s!.counts.extractFailed, 1, 'the broken PDF is counted');
  t.ok(s!.warningSamples.some((w) => w.path.endsWith('broken.pdf') && /PDF/.test(w.reason) && /name only/.test(w.reason)), `its warning says what failed and that it is found by name (${JSON.stringify(s!.warningSamples)})`);
  t.same(await search(library, 'kumquat7'), ['note 7.txt'], 'the text is searched');

  // More files, and a run killed once it has read some of them: the next reads only the rest.
  for (let i = 40; i < 400; i++) fs.writeFileSync(path.join(root, `note ${i}.txt`), `entry ${i} mentions the word kumquat${i}\n`);
  const db = new Database(path.join(library, DATABASE_FILE), { readonly: true });
  t.teardown(() => db.close());
  const extracted = () => db.prepare('SELECT count(*) FROM content_extracts').pluck().get() as number;
  const child = spawnSd(['index'], { library });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  t.ok(await waitFor(() => extracted() >= 41 + 20, 30_000, 5), 'the run reads some of the new files');
  child.kill('SIGKILL');
  await exited;
  const readBefore = extracted() - 41;
  t.ok(readBefore < 360, `killed before it read them all (${readBefore} of 360)`);
  const again = await sd(['--json', 'index'], { library });
  const [rest] = JSON.parse(again.stdout) as Array<{ counts: { extracted: number } }>;
  t.equal(rest!.counts.extracted, 360 - readBefore, 'the next run reads only what is left');
  t.same(await search(library, 'kumquat399'), ['note 399.txt'], 'and every file ends up searched');
});

t.test('the running mount reads new files in the background', async (t) => {
  const { library, root } = await libraryWithLocation(t, { 'old.txt': 'nothing' }, 'laptop', 'docs');
  await startMount(t, library);
  fs.writeFileSync(path.join(root, 'report.docx'), makeDocx(['The quarterly figures for Narnia']));
  t.ok(await waitFor(async () => (await search(library, 'narnia')).includes('report.docx'), 15_000, 200), 'a docx written into the location is found by its text within seconds');
});

t.test('a paired device finds the other\'s files by what they hold, without their bytes', async (t) => {
  const { b } = await pairedMounts(
    t,
    { name: 'nas', location: 'archive', files: { 'W2 scan.pdf': makePdf([['Wage and Tax Statement', 'Employer: Acme Anvils']]), 'probe.txt': 'ready' } },
    { name: 'laptop', location: 'home', files: { 'x.txt': 'x' } },
    { file: 'probe.txt', text: 'ready' },
  );
  t.ok(await waitFor(async () => (await search(b.library, 'acme', 'anvils')).includes('W2 scan.pdf'), 20_000, 200), 'the laptop finds the NAS\'s PDF by its text');
  const r = await sd(['--json', 'search', 'acme'], { library: b.library });
  const hit = (JSON.parse(r.stdout) as SearchJson).results[0]!;
  t.match(hit.sdpath, /^sd:\/\/nas\/archive\//, 'the result is the NAS\'s file');
});
