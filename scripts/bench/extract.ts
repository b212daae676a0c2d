// Content extraction's speed over a mixed folder: --files of each kind (txt, md, csv, html,
// PDFs of several pages, docx, odt, JPEGs with EXIF, WAVs; text documents of 5-200 KB of
// words, photos of 0.5-4 MB, recordings of 1-10 s), through one ExtractThread a file after
// another as the indexer asks. The reference, in the same run with the page cache warm:
// reading every byte of the same files (fs.readFile), and `cat` of them into /dev/null.
// Also how free the main thread stayed (its longest timer gap), the process's peak RSS, and
// for the PDFs poppler's pdftotext (a process a file) when it is installed.
// Run: node build/scripts/bench/extract.js [--json] [--files 50] [--text-kib 64] [--keep]
import fs from 'node:fs';
import path from 'node:path';
import { ExtractThread } from '../../src/vdfs/extract/extract-thread.js';
import { ExtractStore } from '../../src/vdfs/content/extracts.js';
import { toContentExtract } from '../../src/vdfs/indexer/extract-phase.js';
import { initLibrary } from '../../src/vdfs/library.js';
import type { Extracted } from '../../src/vdfs/extract/extract.js';
import { makeDocx, makeJpeg, makeOdt, makePdf, makeWav } from '../../test/extract-fixtures.js';
import { Report, bestOf, commandExists, formatCount, formatNumber, makeTempDir, mb, numberArg, parseArgs, RssSampler, seededRandom, timeCommand } from './common.js';

const AIM_MAIN_THREAD_GAP_MS = 100;

const args = parseArgs();
const report = new Report('extract', args.json);
const perKind = numberArg(args, 'files', 50);
const maxTextBytes = numberArg(args, 'text-kib', 64) * 1024;
const tmp = makeTempDir('sdfs-bench-extract-', args.keep);
const random = seededRandom(7);
const between = (lo: number, hi: number) => Math.floor(lo + random() * (hi - lo + 1));

// ---------------------------------------------------------------- the documents

/** Words as prose has them: common short ones often, a long tail of rarer ones. */
const COMMON = 'the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there been one all we their'.split(' ');
const RARE = 'invoice quarterly budget meeting project timeline summary proposal contract delivery schedule holiday beach mountain recipe garden kitchen library museum concert ticket flight hotel passport insurance mortgage salary pension doctor dentist vaccine school teacher homework football tennis bicycle weather forecast river bridge castle village harbour lighthouse telescope galaxy planet chemistry biology history geography language grammar poetry novel chapter author publisher'.split(' ');

function words(bytes: number): string {
  const out: string[] = [];
  let size = 0;
  let sentence = 0;
  while (size < bytes) {
    let w = random() < 0.7 ? COMMON[Math.floor(random() * COMMON.length)]! : RARE[Math.floor(random() * RARE.length)]!;
    if (sentence === 0) w = w[0]!.toUpperCase() + w.slice(1);
    sentence++;
    if (sentence > between(6, 18)) {
      w += random() < 0.15 ? '.\n\n' : '. ';
      sentence = 0;
    } else w += ' ';
    out.push(w);
    size += w.length;
  }
  return out.join('');
}

const paragraphs = (bytes: number) => words(bytes).split(/\n\n/).map((p) => p.trim()).filter(Boolean);

function lines(text: string, width = 90): string[] {
  const out: string[] = [];
  let line = '';
  for (const w of text.replace(/\s+/g, ' ').split(' ')) {
    if (line.length + w.length + 1 > width) {
      out.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) out.push(line);
  return out;
}

const KINDS: Record<string, (i: number) => string | Buffer> = {
  txt: () => words(between(5, 200) * 1024),
  md: () => paragraphs(between(5, 200) * 1024).map((p, j) => (j % 5 === 0 ? `## ${p.slice(0, 40)}\n\n${p}` : p)).join('\n\n'),
  csv: () => Array.from({ length: between(100, 4000) }, (_, r) => `${r},${words(20).trim()},${(random() * 1000).toFixed(2)},2024-0${1 + (r % 9)}-1${r % 10}`).join('\n'),
  html: () => `<!DOCTYPE html><html><head><title>${words(40)}</title><style>${'p { margin: 0 } '.repeat(50)}</style><script>${'var x = 1; '.repeat(200)}</script></head><body>${paragraphs(between(5, 200) * 1024).map((p) => `<div class="c"><p>${p.replace(/ (\w+) /g, (m, w: string) => (random() < 0.05 ? ` <a href="/${w}">${w}</a> ` : m))}</p></div>`).join('\n')}</body></html>`,
  pdf: (i) => {
    const pageLines = lines(words(between(5, 60) * 1024));
    const pages: string[][] = [];
    for (let p = 0; p < pageLines.length; p += 50) pages.push(pageLines.slice(p, p + 50));
    return makePdf(pages, { title: `Report ${i}`, author: 'Bench Writer' });
  },
  docx: (i) => makeDocx(paragraphs(between(5, 200) * 1024), { title: `Document ${i}`, creator: 'Bench Writer' }),
  odt: (i) => makeOdt(paragraphs(between(5, 200) * 1024), { title: `Notes ${i}`, creator: 'Bench Writer' }),
  jpg: (i) => makeJpeg({
    width: 4032, height: 3024, make: 'Apple', model: 'iPhone 13', dateTimeOriginal: `2023:0${1 + (i % 9)}:1${i % 10} 12:34:56`, offsetTimeOriginal: '+01:00',
    lens: 'iPhone 13 back dual wide camera 5.1mm f/1.6', gps: { latitude: 40 + random() * 10, longitude: -5 + random() * 10 }, scanBytes: between(512, 4096) * 1024,
  }),
  wav: () => makeWav(between(1000, 10_000), 44_100),
};

interface Item {
  kind: string;
  file: string;
  bytes: number;
}

report.noteMachine('start');
report.progress(`writing ${perKind} files of each of ${Object.keys(KINDS).length} kinds under ${tmp}`);
const items: Item[] = [];
for (const [kind, make] of Object.entries(KINDS)) {
  const dir = path.join(tmp, kind);
  fs.mkdirSync(dir);
  for (let i = 0; i < perKind; i++) {
    const file = path.join(dir, `${kind}-${i}.${kind}`);
    const data = make(i);
    fs.writeFileSync(file, data);
    items.push({ kind, file, bytes: Buffer.byteLength(data) });
  }
}
const totalBytes = items.reduce((n, x) => n + x.bytes, 0);
report.note(`${formatCount(items.length)} files, ${formatNumber(mb(totalBytes))} MB; text kept up to ${maxTextBytes / 1024} KiB a file`);
for (const kind of Object.keys(KINDS)) {
  const sizes = items.filter((x) => x.kind === kind).map((x) => x.bytes);
  report.note(`${kind}: ${formatNumber(mb(sizes.reduce((a, b) => a + b, 0) / sizes.length) * 1000)} KB on average (${formatNumber(Math.min(...sizes) / 1024)}-${formatNumber(Math.max(...sizes) / 1024)} KiB)`);
}

// ---------------------------------------------------------------- the reference: reading the bytes

for (const x of items) fs.readFileSync(x.file); // the page cache warm for everyone
const readAll = await bestOf(3, async () => {
  const started = performance.now();
  for (const x of items) await fs.promises.readFile(x.file);
  return { seconds: (performance.now() - started) / 1000 };
});
report.figure({ name: 'read (reference)', value: items.length / readAll.seconds, unit: 'files/s', note: `fs.promises.readFile of every file, one after another: ${formatNumber(mb(totalBytes) / readAll.seconds)} MB/s, ${readAll.seconds.toFixed(3)} s, best of 3` });
let catSeconds: number | undefined;
if (await commandExists('cat')) {
  // One cat over all files (xargs keeps the argument list in bounds).
  const list = path.join(tmp, 'files.txt');
  fs.writeFileSync(list, items.map((x) => x.file).join('\0'));
  const cat = await bestOf(3, () => timeCommand('sh', ['-c', `xargs -0 cat < '${list}' > /dev/null`]));
  catSeconds = cat.seconds;
  report.figure({ name: 'cat (reference)', value: items.length / cat.seconds, unit: 'files/s', note: `xargs cat > /dev/null: ${formatNumber(mb(totalBytes) / cat.seconds)} MB/s, ${cat.seconds.toFixed(3)} s, best of 3` });
}

// ---------------------------------------------------------------- extraction

const rssBefore = process.memoryUsage.rss();
const rss = new RssSampler().start();
const thread = new ExtractThread();
interface Pass {
  seconds: number;
  perKind: Map<string, number>;
  textBytes: number;
  failed: string[];
  longestGapMs: number;
  /** What each file gave (the index-size figure records them). */
  found: Extracted[];
}

async function pass(): Promise<Pass> {
  const found: Extracted[] = [];
  const perKindSeconds = new Map<string, number>();
  const failed: string[] = [];
  let textBytes = 0;
  let longestGapMs = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    longestGapMs = Math.max(longestGapMs, now - last);
    last = now;
  }, 5);
  const started = performance.now();
  for (const x of items) {
    const t0 = performance.now();
    let got: Extracted | undefined;
    try {
      got = await thread.extract(x.file, x.kind, { maxTextBytes });
    } catch (err) {
      failed.push(`${path.basename(x.file)}: ${err instanceof Error ? err.message : String(err)}`);
    }
    perKindSeconds.set(x.kind, (perKindSeconds.get(x.kind) ?? 0) + (performance.now() - t0) / 1000);
    if (got?.text) textBytes += Buffer.byteLength(got.text);
    if (got) found.push(got);
  }
  const seconds = (performance.now() - started) / 1000;
  clearInterval(ticker);
  return { seconds, perKind: perKindSeconds, textBytes, failed, longestGapMs, found };
}

report.progress('extracting, first pass (a fresh worker loads its parsers)');
const first = await pass();
report.progress('extracting, second pass');
const second = await pass();
const best = second.seconds <= first.seconds ? second : first;
await thread.close();
rss.stop();

for (const f of [...new Set([...first.failed, ...second.failed])].slice(0, 10)) report.note(`failed: ${f}`);
report.figure({ name: 'extract', value: items.length / best.seconds, unit: 'files/s', note: `all kinds mixed, one ExtractThread: ${best.seconds.toFixed(2)} s (first pass, fresh worker: ${first.seconds.toFixed(2)} s)` });
report.figure({ name: 'extract input', value: mb(totalBytes) / best.seconds, unit: 'MB/s', note: 'the files\' sizes over the time; photos and recordings are read only in their headers' });
report.figure({ name: 'extract text', value: mb(best.textBytes), unit: 'MB', note: `text kept from ${items.length} files (${formatNumber(mb(best.textBytes) / best.seconds)} MB/s of text)` });
report.figure({ name: 'extract vs readFile', value: best.seconds / readAll.seconds, unit: '×', note: 'extraction time over the time to read every byte of the same files' });
if (catSeconds !== undefined) report.figure({ name: 'extract vs cat', value: best.seconds / catSeconds, unit: '×', note: 'extraction time over one cat of the same files' });
if (await commandExists('pdftotext')) {
  // The alternative for PDFs: poppler's pdftotext, a process a file (as an async child, one after another).
  const pdfs = items.filter((x) => x.kind === 'pdf');
  const poppler = await bestOf(2, async () => {
    const started = performance.now();
    for (const x of pdfs) await timeCommand('pdftotext', ['-q', '-enc', 'UTF-8', x.file, '-']);
    return { seconds: (performance.now() - started) / 1000 };
  });
  const ours = best.perKind.get('pdf') ?? 0;
  report.figure({ name: 'pdftotext (reference)', value: (poppler.seconds / pdfs.length) * 1000, unit: 'ms/file', note: `the same ${pdfs.length} PDFs, a pdftotext process each, best of 2; pdf.js here takes ${formatNumber(ours / poppler.seconds)}× as long` });
} else report.note('pdftotext not installed: no poppler reference for the PDFs');
for (const kind of Object.keys(KINDS)) {
  const seconds = best.perKind.get(kind) ?? 0;
  const kindItems = items.filter((x) => x.kind === kind);
  const bytes = kindItems.reduce((n, x) => n + x.bytes, 0);
  report.figure({ name: `extract ${kind}`, value: (seconds / kindItems.length) * 1000, unit: 'ms/file', note: `${formatNumber(kindItems.length / seconds)} files/s, ${formatNumber(mb(bytes) / seconds)} MB/s` });
}
report.figure({ name: 'main thread longest gap', value: best.longestGapMs, unit: 'ms', note: 'the longest wait of a 5 ms timer on the calling thread during the pass', aim: { op: '<=', value: AIM_MAIN_THREAD_GAP_MS } });
report.figure({ name: 'RSS while extracting', value: mb(rss.peak), unit: 'MB', note: `peak of this process sampled every 50 ms during both passes, the worker and its parsers included; ${formatNumber(mb(rssBefore))} MB before the worker started` });

// ---------------------------------------------------------------- what the library keeps

// The extracts recorded in a fresh library as the indexer records them: the rows and their
// full-text index, measured in the database's pages used.
{
  const { library } = initLibrary(path.join(tmp, 'library'), 'bench');
  const db = library.db;
  const used = () => {
    db.pragma('wal_checkpoint(TRUNCATE)');
    return ((db.pragma('page_count', { simple: true }) as number) - (db.pragma('freelist_count', { simple: true }) as number)) * (db.pragma('page_size', { simple: true }) as number);
  };
  const before = used();
  const store = new ExtractStore(db, library.device.id);
  db.transaction(() => best.found.forEach((x, i) => store.recordFromPeer(toContentExtract(`content-${i}`, x), library.device.id)))();
  const added = used() - before;
  const withText = best.found.filter((x) => x.text).length;
  report.figure({ name: 'index per file with text', value: added / 1024 / withText, unit: 'KiB', note: `the library grew ${formatNumber(mb(added))} MB for ${withText} files with text (${formatNumber(mb(best.textBytes))} MB of it) and ${best.found.length - withText} without: ${formatNumber(added / best.textBytes)} bytes per byte of text, rows and full-text index together` });
  library.close();
}
report.noteMachine('end');
report.finish();
