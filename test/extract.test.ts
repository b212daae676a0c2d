// What a file's bytes say, on real files made here: office documents and PDFs give their
// text, photos their EXIF and size, recordings their duration; the bytes win over the
// extension; text is cut at a character; the worker thread keeps order, times out and goes on.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { strToU8, zipSync } from 'fflate';
import t, { type Test } from 'tap';
import { ExtractError, extractFile } from '../src/vdfs/extract/extract.js';
import { ExtractThread } from '../src/vdfs/extract/extract-thread.js';
import { makeDocx, makeJpeg, makeMp4, makeOdt, makePdf, makePng, makeWav } from './extract-fixtures.js';
import { tempDir } from './helpers.js';

const OPTIONS = { maxTextBytes: 64 * 1024 };

/** Writes `data` as `name` in a fresh folder; returns the path and the extension as the indexer gives it. */
function fileOf(t: Test, name: string, data: string | Buffer): [string, string] {
  const file = path.join(tempDir(t, 'sd-extract-'), name);
  fs.writeFileSync(file, data);
  return [file, path.extname(name).slice(1).toLowerCase()];
}

/** Pages of numbered lines, so a PDF holds as much text as wanted. */
function pagesOfText(pages: number, linesPerPage = 40): string[][] {
  return Array.from({ length: pages }, (_, p) => Array.from({ length: linesPerPage }, (_, l) => `Page ${p + 1} line ${l + 1} the quick brown fox jumps over the lazy dog`));
}

t.test("a docx's paragraphs become its text and its title and author values", async (t) => {
  const [file, ext] = fileOf(t, 'report.docx', makeDocx(['Quarterly figures are up', 'Costs & risks <below> plan'], { title: 'Quarterly report', creator: 'Ada Lovelace' }));
  const x = await extractFile(file, ext, OPTIONS);
  t.equal(x.mime, 'application/vnd.openxmlformats-officedocument.wordprocessingml.document');
  t.equal(x.text, 'Quarterly figures are up\nCosts & risks <below> plan', 'one line a paragraph, runs joined, entities decoded');
  t.same(x.values, ['Quarterly report', 'Ada Lovelace']);
  t.notOk(x.textTruncated);
});

t.test("an odt's heading and paragraphs become its text; its title and first author are values", async (t) => {
  const [file, ext] = fileOf(t, 'notes.odt', makeOdt(['Travel plans', 'Train to Lyon  on Monday morning'], { title: 'Notes', creator: 'Grace Hopper' }));
  const x = await extractFile(file, ext, OPTIONS);
  t.equal(x.mime, 'application/vnd.oasis.opendocument.text');
  t.equal(x.text, 'Travel plans\nTrain to Lyon on Monday morning', 'text:s is a space, spans join their paragraph');
  t.same(x.values, ['Notes', 'Grace Hopper']);
});

t.test("a pptx's slides give their text in slide order; an xlsx its cells' strings", async (t) => {
  const slide = (words: string) => strToU8(`<p:sld xmlns:p="p" xmlns:a="a"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>${words}</a:t></a:r></a:p><a:p><a:r><a:t>more</a:t></a:r><a:br/><a:r><a:t>below</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>`);
  const [pptx] = fileOf(t, 'talk.pptx', Buffer.from(zipSync({ 'ppt/slides/slide10.xml': slide('Ten'), 'ppt/slides/slide2.xml': slide('Two'), 'ppt/slides/slide1.xml': slide('One') })));
  t.equal((await extractFile(pptx, 'pptx', OPTIONS)).text, 'One\nmore\nbelow\nTwo\nmore\nbelow\nTen\nmore\nbelow', 'slide 10 after slide 2');
  const strings = strToU8('<sst xmlns="x"><si><t>Revenue</t></si><si><r><t>Q1 </t></r><r><t>2024</t></r><rPh><t>phonetic</t></rPh></si></sst>');
  const [xlsx] = fileOf(t, 'sheet.xlsx', Buffer.from(zipSync({ 'xl/sharedStrings.xml': strings })));
  t.equal((await extractFile(xlsx, 'xlsx', OPTIONS)).text, 'Revenue\nQ1 2024', 'rich-text runs joined, phonetic guides left out');
});

t.test("a PDF's pages become its text, with its page count, title and author", async (t) => {
  const [file, ext] = fileOf(t, 'paper.pdf', makePdf([['Hello PDF world', 'with (parentheses) inside'], ['Second page text']], { title: 'On Extraction', author: 'Alan Turing' }));
  const x = await extractFile(file, ext, OPTIONS);
  t.equal(x.mime, 'application/pdf');
  t.equal(x.text, 'Hello PDF world\nwith (parentheses) inside\nSecond page text');
  t.equal(x.pages, 2);
  t.same(x.values, ['On Extraction', 'Alan Turing']);
});

t.test('a .pdf that is no PDF fails with ExtractError; so do a .docx that is no zip, an .mp3 and a .jpg of words', async (t) => {
  const [pdf] = fileOf(t, 'fake.pdf', 'this is not a PDF at all, just words\n'.repeat(20));
  await t.rejects(extractFile(pdf, 'pdf', OPTIONS), new ExtractError('not a valid PDF: Invalid PDF structure.'));
  const [docx] = fileOf(t, 'fake.docx', Buffer.alloc(3000, 7));
  await t.rejects(extractFile(docx, 'docx', OPTIONS), { name: 'ExtractError', message: /^not a valid DOCX: / });
  const [empty] = fileOf(t, 'empty.docx', '');
  await t.rejects(extractFile(empty, 'docx', OPTIONS), ExtractError, 'an empty .docx');
  const [mp3] = fileOf(t, 'song.mp3', 'not a song, only words\n'.repeat(100));
  await t.rejects(extractFile(mp3, 'mp3', OPTIONS), new ExtractError('not a valid MP3 file: no stream or tags found in its bytes'));
  const [jpg] = fileOf(t, 'photo.jpg', 'not a photo');
  await t.rejects(extractFile(jpg, 'jpg', OPTIONS), new ExtractError('not a valid JPG image: its bytes are in no image format'));
});

t.test("a JPEG's EXIF says when, with which camera and lens, and where; its frame header says its size", async (t) => {
  const [file, ext] = fileOf(t, 'IMG_0001.JPG', makeJpeg({
    width: 4032, height: 3024, make: 'Apple', model: 'iPhone 13', dateTimeOriginal: '2023:05:01 12:34:56', offsetTimeOriginal: '+02:00',
    lens: 'iPhone 13 back dual wide camera', gps: { latitude: 48.8584, longitude: -2.2945 }, scanBytes: 200_000,
  }));
  const x = await extractFile(file, ext, OPTIONS);
  t.equal(x.mime, 'image/jpeg');
  t.equal(x.takenAt, Date.UTC(2023, 4, 1, 10, 34, 56), 'DateTimeOriginal at its offset +02:00');
  t.equal(x.camera, 'Apple iPhone 13');
  t.equal(x.gps, true);
  t.ok(Math.abs(x.latitude! - 48.8584) < 1e-4 && Math.abs(x.longitude! + 2.2945) < 1e-4, `position ${x.latitude}, ${x.longitude} (west is negative)`);
  t.same([x.width, x.height], [4032, 3024]);
  t.same(x.values, ['iPhone 13 back dual wide camera']);
  t.equal(x.text, undefined);
});

t.test('a photo without a time zone is taken at its wall clock here; one turned a quarter gives its size as shown', async (t) => {
  const [file] = fileOf(t, 'dsc.jpg', makeJpeg({ width: 6000, height: 4000, make: 'Canon', model: 'Canon EOS R5', dateTimeOriginal: '2021:12:24 18:00:00', orientation: 6 }));
  const x = await extractFile(file, 'jpg', OPTIONS);
  t.equal(x.takenAt, new Date(2021, 11, 24, 18, 0, 0).getTime());
  t.equal(x.camera, 'Canon EOS R5', 'the make is not said twice');
  t.same([x.width, x.height], [4000, 6000]);
  t.equal(x.gps, undefined, 'no GPS, no gps field');
});

t.test('a truncated JPEG gives what its bytes hold, soon, without hanging', async (t) => {
  const whole = makeJpeg({ width: 800, height: 600, make: 'Nikon', model: 'D750', dateTimeOriginal: '2020:01:02 03:04:05', scanBytes: 10_000 });
  for (const keep of [3, 40, 120, whole.indexOf(Buffer.from([0xff, 0xc0])) + 6]) {
    const [file] = fileOf(t, `cut-${keep}.jpg`, whole.subarray(0, keep));
    const started = performance.now();
    const x = await extractFile(file, 'jpg', OPTIONS).catch((err: unknown) => err);
    const ms = performance.now() - started;
    t.ok(ms < 2000, `cut at ${keep} bytes: answered in ${ms.toFixed(0)} ms`);
    t.ok(x instanceof ExtractError || (typeof x === 'object' && x !== null && (x as { mime?: string }).mime === 'image/jpeg'), `cut at ${keep} bytes: a JPEG without size, or an ExtractError (${x instanceof Error ? x.message : JSON.stringify(x)})`);
  }
});

t.test('a PNG gives its pixel size', async (t) => {
  const [file, ext] = fileOf(t, 'dot.png', makePng(31, 17));
  t.same(await extractFile(file, ext, OPTIONS), { mime: 'image/png', width: 31, height: 17 });
});

t.test('the bytes win over the extension: a .txt holding a PNG is an image with no text', async (t) => {
  const [file, ext] = fileOf(t, 'notes.txt', makePng(5, 7));
  t.same(await extractFile(file, ext, OPTIONS), { mime: 'image/png', width: 5, height: 7 });
});

t.test("an HTML page's text leaves out script, style and comments, and decodes its entities", async (t) => {
  const html = `<!DOCTYPE html><html><head><title>Caf&eacute; menu</title><style>p { color: red }</style>
    <script>var s = "<p>not text</p>"; if (a < b) {}</script></head>
    <body><!-- hidden comment --><h1>Today</h1><p>Soup&nbsp;&amp;&nbsp;bread <b>3&euro;</b></p><ul><li>Tea</li><li>Coffee &#8212; &#x263A;</li></ul></body></html>`;
  const [file, ext] = fileOf(t, 'menu.html', html);
  const x = await extractFile(file, ext, OPTIONS);
  t.equal(x.mime, undefined, 'the bytes name no binary kind');
  t.equal(x.text, 'Café menu\nToday\nSoup & bread 3€\nTea\nCoffee — ☺');
});

t.test("a CSV's cells are its text, one line a row; markdown stays as written, whitespace collapsed", async (t) => {
  const [csv] = fileOf(t, 'people.csv', 'name,city\r\nAda,London\r\n"Hopper, Grace",Arlington\r\n\r\n');
  t.same(await extractFile(csv, 'csv', OPTIONS), { text: 'name,city\nAda,London\n"Hopper, Grace",Arlington' });
  const [md] = fileOf(t, 'README.md', '# Title\n\n\n  Some   *emphasis*\there.\n');
  t.same(await extractFile(md, 'md', OPTIONS), { text: '# Title\nSome *emphasis* here.' });
});

t.test('text that is not UTF-8 is read as Latin-1; binary bytes under .txt give no text; an empty file gives nothing', async (t) => {
  const [latin] = fileOf(t, 'old.txt', Buffer.from('Cr\xe8me br\xfbl\xe9e, na\xefve \xa9 1998', 'latin1'));
  t.same(await extractFile(latin, 'txt', OPTIONS), { text: 'Crème brûlée, naïve © 1998' });
  const [binary] = fileOf(t, 'data.txt', Buffer.from([0x00, 0x01, 0x02, 0x03, 0xfe, 0x10, 0x00, 0x41, 0x42]));
  t.same(await extractFile(binary, 'txt', OPTIONS), {});
  const [empty] = fileOf(t, 'empty.txt', '');
  t.same(await extractFile(empty, 'txt', OPTIONS), {});
  const [noExt] = fileOf(t, 'LICENSE', 'MIT License\n\nPermission is hereby granted');
  t.same(await extractFile(noExt, '', OPTIONS), { text: 'MIT License\nPermission is hereby granted' }, 'a file without an extension is read when its bytes are text');
});

t.test('maxTextBytes cuts the text at a UTF-8 character boundary and says it was cut', async (t) => {
  // 1-, 2-, 3- and 4-byte characters over and over.
  const full = 'aé€😀'.repeat(300);
  const [file, ext] = fileOf(t, 'mixed.txt', full);
  for (const max of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 100, 101, 102, 103]) {
    const x = await extractFile(file, ext, { maxTextBytes: max });
    const text = x.text ?? '';
    t.ok(Buffer.byteLength(text) <= max && Buffer.byteLength(text) > max - 4, `max ${max}: ${Buffer.byteLength(text)} bytes`);
    t.ok(full.startsWith(text) && !text.includes('\ufffd'), `max ${max}: a prefix of the text, no broken character`);
    t.equal(x.textTruncated, true);
  }
  const whole = await extractFile(file, ext, { maxTextBytes: Buffer.byteLength(full) });
  t.equal(whole.text, full, 'a limit the text fits in keeps it all');
  t.equal(whole.textTruncated, undefined);
});

t.test('a long PDF is read until the text is had, and says it was cut', async (t) => {
  const [file, ext] = fileOf(t, 'long.pdf', makePdf(pagesOfText(50)));
  const x = await extractFile(file, ext, { maxTextBytes: 4096 });
  t.equal(x.pages, 50);
  t.ok(x.text!.startsWith('Page 1 line 1 the quick brown fox'), 'from the first page');
  t.ok(Buffer.byteLength(x.text!) <= 4096 && Buffer.byteLength(x.text!) > 4000, `${Buffer.byteLength(x.text!)} bytes`);
  t.equal(x.textTruncated, true);
});

t.test("a WAV's duration comes from its header", async (t) => {
  const [file, ext] = fileOf(t, 'tone.wav', makeWav(2750, 8000));
  t.same(await extractFile(file, ext, OPTIONS), { mime: 'audio/wav', durationMs: 2750 });
});

t.test("an MP4's duration and picture size come from its moov, before or after the media data; a portrait video is turned", async (t) => {
  const [first, ext] = fileOf(t, 'clip.mp4', makeMp4({ durationMs: 12_345, width: 1920, height: 1080, mdatBytes: 300_000 }));
  t.same(await extractFile(first, ext, OPTIONS), { mime: 'video/mp4', durationMs: 12_345, width: 1920, height: 1080 });
  const [last] = fileOf(t, 'phone.mp4', makeMp4({ durationMs: 4000, width: 1920, height: 1080, turned: true, moovLast: true, mdatBytes: 300_000 }));
  t.same(await extractFile(last, 'mp4', OPTIONS), { mime: 'video/mp4', durationMs: 4000, width: 1080, height: 1920 });
});

t.test('a FIFO is refused at once instead of waited on', async (t) => {
  const fifo = path.join(tempDir(t, 'sd-extract-'), 'pipe.txt');
  execFileSync('mkfifo', [fifo]);
  await t.rejects(extractFile(fifo, 'txt', OPTIONS), new ExtractError('not a regular file'));
});

t.test('the thread answers in order, passes an unreadable file its errno, and keeps the main thread free while a PDF parses', async (t) => {
  const thread = new ExtractThread();
  t.teardown(() => thread.close());
  const [docx] = fileOf(t, 'a.docx', makeDocx(['One']));
  const [wav] = fileOf(t, 'b.wav', makeWav(1000));
  const [big] = fileOf(t, 'big.pdf', makePdf(pagesOfText(400)));
  const answers = await Promise.all([thread.extract(docx, 'docx', OPTIONS), thread.extract(wav, 'wav', OPTIONS)]);
  t.same(answers.map((a) => a.text ?? a.durationMs), ['One', 1000]);
  await t.rejects(thread.extract(path.join(path.dirname(docx), 'missing.pdf'), 'pdf', OPTIONS), { code: 'ENOENT' });

  let longestGap = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
  }, 5);
  const started = performance.now();
  const x = await thread.extract(big, 'pdf', { maxTextBytes: 10 * 1024 * 1024 });
  const ms = performance.now() - started;
  clearInterval(ticker);
  t.equal(x.pages, 400);
  t.ok(longestGap < 150, `while 400 pages parsed (${ms.toFixed(0)} ms) the main thread's timers ran every ${longestGap.toFixed(0)} ms at worst`);
});

t.test('the thread gives up on a file that takes too long, with ExtractError, and serves the next', async (t) => {
  const thread = new ExtractThread({ timeoutMs: 10_000 });
  t.teardown(() => thread.close());
  const [pdf] = fileOf(t, 'slow.pdf', makePdf(pagesOfText(100)));
  const [txt] = fileOf(t, 'next.txt', 'the next file');
  const slow = thread.extract(pdf, 'pdf', { ...OPTIONS, timeoutMs: 1 });
  const next = thread.extract(txt, 'txt', OPTIONS);
  await t.rejects(slow, new ExtractError('extraction took longer than 0.001 s'));
  t.same(await next, { text: 'the next file' }, 'queued behind it, served by a fresh worker');
  t.same((await thread.extract(pdf, 'pdf', OPTIONS)).pages, 100, 'and the same file parses in time when given it');

  const strict = new ExtractThread({ timeoutMs: 1 });
  t.teardown(() => strict.close());
  await t.rejects(strict.extract(pdf, 'pdf', OPTIONS), { name: 'ExtractError', message: /took longer than 0.001 s$/ }, 'the constructor sets the timeout');
});

t.test('a closed thread rejects what it was still asked', async (t) => {
  const thread = new ExtractThread();
  const [pdf] = fileOf(t, 'x.pdf', makePdf(pagesOfText(50)));
  const pending = t.rejects(thread.extract(pdf, 'pdf', OPTIONS), /closed/);
  await thread.close();
  await pending;
  await t.rejects(thread.extract(pdf, 'pdf', OPTIONS), /closed/);
});
