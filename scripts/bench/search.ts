// Search at scale: a library of --entries files over three devices (this one and two
// paired peers' mirrors), with names, kinds, sizes, dates and folders as people have them,
// written through the library's own insert (names into the search index, closure rows).
// Documents carry extracted text and photos their camera and date taken (as extraction
// leaves them), so words reach into what files hold as they do in use.
// Then a fixed mix of 20 queries, plain language and filters, broad and narrow, each run
// --runs times with --limit 100 in one process (the library open, as a running mount has
// it): p50 and p95 of all runs, the slowest query, and the process's peak RSS. The
// reference is the same queries' result count (what they had to rank), printed beside.
// Run: node build/scripts/bench/search.js [--json] [--entries 1000000] [--runs 5] [--library DIR] [--keep]
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { addPeerDevice, type Device } from '../../src/vdfs/device.js';
import { EntryStore } from '../../src/vdfs/entries.js';
import { DATABASE_FILE, initLibrary, openLibrary } from '../../src/vdfs/library.js';
import { setLocationRoot, upsertMirroredLocation } from '../../src/vdfs/locations.js';
import { runSearch } from '../../src/vdfs/search/run.js';
import { EXTRACT_VERSION, ExtractStore } from '../../src/vdfs/content/extracts.js';
import type { Db } from '../../src/vdfs/db/database.js';
import { Report, formatCount, formatNumber, makeTempDir, mb, numberArg, parseArgs, peakRssBytes, seededRandom } from './common.js';

const AIM_P95_MS = 30;
const AIM_PEAK_MB = 300;
const LIMIT = 100;
const DEVICES = [
  { name: 'laptop', location: 'home' },
  { name: 'nas', location: 'archive' },
  { name: 'phone', location: 'camera' },
] as const;

/** The mix: plain sentences and filters, broad (most of the library) and narrow. */
const QUERIES = [
  'tax documents from last year',
  'videos over 1 GB from last week on nas',
  'photos of 2024 only on my phone',
  "big files I haven't touched in 2 years",
  'photos',
  'documents',
  'kind:file',
  'img',
  'w2',
  'invoice',
  'holiday beach 2023',
  'revenue forecast',
  'kind:image size:>5MB',
  'pdfs not on nas',
  'screenshots older than a month',
  'photos taken last year with canon',
  'invoices in taxes 2025',
  'ext:docx',
  'notes since march',
  'small files on phone',
];

/** The words documents are written in: everyday ones, so some queries match most of them. */
const TEXT_WORDS = (
  'the of and to in for on with by from at this that year total amount date account payment invoice tax return income revenue forecast budget ' +
  'quarter quarterly report meeting minutes project plan schedule contract agreement party client customer order receipt statement bank ' +
  'balance interest salary employer employee insurance policy claim rent lease house car travel flight hotel holiday summary notes draft'
).split(' ');
const CAMERAS = ['Apple iPhone 13', 'Apple iPhone 15 Pro', 'Canon EOS R5', 'Sony ILCE-7M3', 'Google Pixel 8', 'Nikon Z6'];

const args = parseArgs(undefined, ['library']);
const report = new Report('search', args.json);
const entries = numberArg(args, 'entries', 1_000_000);
const runs = numberArg(args, 'runs', 5);
const tmp = makeTempDir('sdfs-bench-search-', args.keep);
const dir = args.words.get('library') ?? path.join(tmp, 'library');

report.noteMachine('start');
if (fs.existsSync(path.join(dir, DATABASE_FILE))) report.note(`reusing the library at ${dir}`);
else {
  report.progress(`building a library of ${formatCount(entries)} files over ${DEVICES.length} devices in ${dir}`);
  const started = performance.now();
  buildLibrary(dir, entries);
  report.note(`library built in ${((performance.now() - started) / 1000).toFixed(1)} s, ${formatNumber(mb(fs.statSync(path.join(dir, DATABASE_FILE)).size))} MB`);
}
const library = openLibrary(dir);
if ((library.db.prepare('SELECT count(*) FROM content_extracts').pluck().get() as number) === 0) {
  report.progress('giving documents their text and photos their metadata, as extraction does');
  const started = performance.now();
  addExtracts(library.db);
  report.note(`extracts added in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
try {
  const files = library.db.prepare("SELECT count(*) FROM entries WHERE kind = 'file'").pluck().get() as number;
  report.note(`${formatCount(files)} files over ${DEVICES.length} devices (one local, two mirrors); ${QUERIES.length} queries × ${runs} runs, --limit ${LIMIT}`);
  runSearch(library.db, 'warm up', LIMIT);
  const times: number[] = [];
  const perQuery: Array<{ query: string; ms: number; results: number }> = [];
  for (const query of QUERIES) {
    let best = Infinity;
    let worst = 0;
    let results = 0;
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      results = runSearch(library.db, query, LIMIT).hits.length;
      const ms = performance.now() - t0;
      times.push(ms);
      best = Math.min(best, ms);
      worst = Math.max(worst, ms);
    }
    perQuery.push({ query, ms: worst, results });
    report.progress(`${query}: ${best.toFixed(1)}–${worst.toFixed(1)} ms, ${results} results`);
  }
  times.sort((a, b) => a - b);
  const pct = (p: number) => times[Math.min(times.length - 1, Math.ceil((p / 100) * times.length) - 1)]!;
  const slowest = [...perQuery].sort((a, b) => b.ms - a.ms).slice(0, 3);
  const label = files >= 1e6 ? `${Math.round(files / 1e5) / 10}M` : `${Math.round(files / 1e3)}k`;
  report.figure({ name: `search p50 ${label}`, value: pct(50), unit: 'ms', note: `${times.length} runs of ${QUERIES.length} queries, --limit ${LIMIT}, in process` });
  report.figure({ name: `search p95 ${label}`, value: pct(95), unit: 'ms', note: `slowest: ${slowest.map((s) => `'${s.query}' ${s.ms.toFixed(0)} ms`).join(', ')}`, aim: { op: '<=', value: AIM_P95_MS } });
  const peak = peakRssBytes();
  if (peak !== undefined) report.figure({ name: `search peak ${label}`, value: mb(peak), unit: 'MB', note: 'peak RSS of this process (VmHWM): the library open, every query run', aim: { op: '<=', value: AIM_PEAK_MB } });
  report.note('text extraction throughput and index size per file: node build/scripts/bench/extract.js');
} finally {
  library.close();
}
report.noteMachine('end');
report.finish();
if (args.keep) process.stdout.write(`kept ${tmp}\n`);

/**
 * Files as people have them: camera images by the thousand (IMG_1234.jpg, some raw),
 * screenshots, documents with topic words (invoice, tax, W-2, report, notes), music,
 * videos; in folders by year, and topic folders (taxes 2025); dates over ten years;
 * some content on two or three devices.
 */
function buildLibrary(dir: string, files: number): void {
  const random = seededRandom(3);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const now = Date.now();
  const { library } = initLibrary(dir, DEVICES[0].name);
  const db = library.db;
  db.pragma('cache_size = -400000');
  const store = new EntryStore(db);
  const devices: Device[] = [library.device];
  for (const d of DEVICES.slice(1)) devices.push(addPeerDevice(db, { id: crypto.randomUUID(), name: d.name, publicKey: crypto.randomBytes(32).toString('hex') }));
  const topics = ['invoice', 'tax', 'W-2', 'receipt', 'report', 'notes', 'contract', 'statement', 'letter', 'budget', 'plan', 'holiday', 'beach', 'meeting', 'draft'];
  let n = 0; // names are unique: a running number in each
  const kinds: Array<[number, () => { name: string; size: number }]> = [
    [0.45, () => ({ name: `IMG_${n++}.${random() < 0.1 ? 'dng' : 'jpg'}`, size: 2e6 + random() * 2e7 })],
    [0.05, () => ({ name: `Screenshot ${n++}.png`, size: 2e5 + random() * 2e6 })],
    [0.2, () => ({ name: `${pick(topics)} ${pick(topics)} ${n++}.${pick(['pdf', 'docx', 'txt', 'md', 'xlsx', 'odt'])}`, size: 1e3 + random() * 5e6 })],
    [0.15, () => ({ name: `track ${n++} ${pick(['live', 'remix', 'demo'])}.${pick(['mp3', 'flac'])}`, size: 3e6 + random() * 3e7 })],
    [0.05, () => ({ name: `${pick(['holiday', 'beach', 'birthday', 'clip'])} ${n++}.${pick(['mp4', 'mov'])}`, size: 5e7 + random() * 3e9 })],
    [0.1, () => ({ name: `file${n++}.${pick(['bin', 'dat', 'log', 'json', 'zip'])}`, size: 10 + random() * 1e7 })],
  ];
  const kindOf = () => {
    let r = random();
    for (const [w, make] of kinds) if ((r -= w) < 0) return make();
    return kinds[0]![1]();
  };
  let remote = 1;
  db.transaction(() => {
    const perDevice = [0.5, 0.3, 0.2];
    let contentSeq = 0;
    const shared: Array<{ name: string; size: number; mtime: number; content: string }> = [];
    devices.forEach((device, index) => {
      const location = upsertMirroredLocation(db, device.id, 1, { name: DEVICES[index]!.location, rootPath: `/home/${device.slug}/${DEVICES[index]!.location}`, indexMode: 'content' });
      const root = store.insertMirrored(device.id, location.id, [], { name: '', kind: 'dir', size: 0, mtime: now, mode: 0o40755 }, null, remote++);
      setLocationRoot(db, location.id, root);
      const folders = new Map<string, number[]>();
      const folder = (names: string[]): number[] => {
        const key = names.join('/');
        let chain = folders.get(key);
        if (!chain) {
          const parent: number[] = names.length > 1 ? folder(names.slice(0, -1)) : [root];
          const id = store.insertMirrored(device.id, location.id, parent, { name: names[names.length - 1]!, kind: 'dir', size: 0, mtime: now, mode: 0o40755 }, null, remote++);
          folders.set(key, (chain = [...parent, id]));
        }
        return chain;
      };
      const count = Math.round(files * perDevice[index]!);
      const held = new Set<string>();
      for (let i = 0; i < count; i++) {
        // A fifth of the files are copies of another device's.
        let copy = index > 0 && shared.length > 0 && random() < 0.2 ? pick(shared) : undefined;
        if (copy && held.has(copy.content)) copy = undefined;
        if (copy) held.add(copy.content);
        const f = copy ?? { ...kindOf(), mtime: now - random() * 10 * 365 * 86_400_000, content: `c${(contentSeq++).toString(16).padStart(14, '0')}` };
        held.add(f.content);
        if (!copy && random() < 0.3) shared.push(f as (typeof shared)[number]);
        const year = new Date(f.mtime).getFullYear();
        const place = /tax|W-2|receipt|invoice/.test(f.name) && random() < 0.5 ? [`taxes ${year}`] : [String(year), `m${Math.floor(random() * 40)}`];
        store.insertMirrored(device.id, location.id, folder(place), { name: f.name, kind: 'file', size: Math.round(f.size), mtime: f.mtime, mode: 0o100644 }, f.content, remote++);
      }
    });
  })();
  library.close();
}


/**
 * What extraction leaves, written as a peer's log would bring it: documents get ~80 words
 * of text, photos a camera and a date taken (near their time), other files their kind.
 */
function addExtracts(db: Db): void {
  const random = seededRandom(7);
  const owner = db.prepare('SELECT device_id FROM entries WHERE content_id = ? LIMIT 1').pluck();
  const store = new ExtractStore(db, '');
  const rows = db.prepare(`SELECT content_id, min(kind_class) AS kind, min(mtime) AS mtime FROM entries WHERE kind = 'file' AND content_id IS NOT NULL GROUP BY content_id`).raw(true).all() as Array<[string, string | null, number]>;
  db.transaction(() => {
    for (const [contentId, kind, mtime] of rows) {
      const base = { contentId, version: EXTRACT_VERSION, status: 'ok' as const, text: null, meta: {} };
      let x;
      if (kind === 'document') {
        const words = Array.from({ length: 80 }, () => TEXT_WORDS[Math.floor(random() * TEXT_WORDS.length)]!);
        x = { ...base, mime: 'application/pdf', text: words.join(' ') };
      } else if (kind === 'image') {
        x = { ...base, mime: 'image/jpeg', meta: { camera: CAMERAS[Math.floor(random() * CAMERAS.length)]!, takenAt: Math.round(mtime - random() * 86_400_000), width: 4032, height: 3024, gps: random() < 0.5 } };
      } else if (kind === 'video' || kind === 'audio') {
        x = { ...base, mime: kind === 'video' ? 'video/mp4' : 'audio/mpeg', meta: { durationMs: Math.round(random() * 3_600_000) } };
      } else {
        x = { ...base, mime: null };
      }
      store.recordFromPeer(x, owner.get(contentId) as string);
    }
  })();
}
