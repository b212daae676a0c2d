// Content identity exactly as DESIGN.md states it, recomputed here without the code
// under test: BLAKE3 over the size (u64 little-endian) and then the whole file up to
// 100 KiB, or an 8 KiB header, 4 samples of 10 KiB and an 8 KiB footer beyond that;
// the id is the first 16 hex chars; empty files have none. Then `sd dupes` on top.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Blake3Hasher, blake3 } from '@napi-rs/blake-hash';
import t from 'tap';
import { sampleRanges } from '../src/vdfs/content/identity.js';
import { EntryStore } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import { addLocation } from '../src/vdfs/locations.js';
import { sdJson } from './cli-process.js';
import { tempDir, tempLibrary, writeTree } from './helpers.js';

const KiB = 1024;

/** Where the recipe reads a file of this size: [offset, length] pairs in order. */
function recipeRanges(size: number): Array<[number, number]> {
  if (size <= 100 * KiB) return [[0, size]];
  const header = 8 * KiB;
  const footer = 8 * KiB;
  const sample = 10 * KiB;
  // Four samples spread evenly over the body between header and footer: the first at
  // the body's start, the last ending at the body's end.
  const bodyStart = header;
  const lastStart = size - footer - sample;
  const samples = [0, 1, 2, 3].map((i): [number, number] => [bodyStart + Math.floor(((lastStart - bodyStart) * i) / 3), sample]);
  return [[0, header], ...samples, [size - footer, footer]];
}

/** The content id of some bytes, by the recipe; null for no bytes. */
function expectedContentId(data: Buffer): string | null {
  if (data.length === 0) return null;
  const hasher = new Blake3Hasher();
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(data.length));
  hasher.update(size);
  for (const [offset, length] of recipeRanges(data.length)) hasher.update(data.subarray(offset, offset + length));
  return hasher.digest('hex').slice(0, 16);
}

/** Bytes that differ everywhere, so every sample reads something of its own. */
function patterned(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function flip(b: Buffer, at: number): void {
  b[at] = b[at]! ^ 0xff;
}

t.test('the sample positions for a 1 MiB file, worked out by hand', async (t) => {
  // body = [8192, 1048576 - 8192 = 1040384); the last sample starts at 1040384 - 10240 = 1030144;
  // the step is (1030144 - 8192) / 3 = 340650.67, so samples start at 8192, 348842, 689493, 1030144.
  const expected = [[0, 8192], [8192, 10240], [348842, 10240], [689493, 10240], [1030144, 10240], [1040384, 8192]];
  t.same(recipeRanges(1024 * 1024), expected, 'the recipe as this test reads DESIGN.md');
  t.same(sampleRanges(1024 * 1024), expected, 'the ranges identity.ts reads');
  t.same(sampleRanges(100 * KiB), [[0, 100 * KiB]], 'a 100 KiB file is read whole');
  t.same(sampleRanges(100 * KiB + 1).length, 6, 'one byte more and it is sampled: header, 4 samples, footer');
  for (const size of [100 * KiB + 1, 123_457, 5_000_000, 2 ** 32 + 5]) {
    t.same(sampleRanges(size), recipeRanges(size), `ranges for ${size} bytes match the recipe`);
  }
});

t.test('indexed files get the content id of the recipe; empty files get none', async (t) => {
  const files: Record<string, Buffer> = {
    'one-byte': Buffer.from('x'),
    'small.txt': Buffer.from('hello, content identity\n'),
    'exactly-100KiB.bin': patterned(100 * KiB, 1),
    'just-over.bin': patterned(100 * KiB + 1, 2),
    'odd-size.bin': patterned(123_457, 3),
    'one-MiB.bin': patterned(KiB * KiB, 4),
    'three-MiB.bin': patterned(3 * KiB * KiB + 7, 5),
    'empty': Buffer.alloc(0),
    'copy/small.txt': Buffer.from('hello, content identity\n'),
  };
  const root = writeTree(tempDir(t), files);
  const library = tempLibrary(t);
  const store = new EntryStore(library.db);
  const location = addLocation(library.db, store, library.device.id, { path: root, name: 'ids' });
  const summary = indexLocation(library, location);
  t.equal(summary.counts.identified, 8, 'every non-empty file is identified');
  const idOf = (rel: string) => store.resolve(location.rootEntryId!, rel.split('/'))!.contentId;
  for (const [rel, data] of Object.entries(files)) {
    t.equal(idOf(rel), expectedContentId(data), `${rel} (${data.length} bytes): ${expectedContentId(data) ?? 'no id'}`);
  }
  t.match(idOf('small.txt'), /^[0-9a-f]{16}$/, 'an id is 16 lowercase hex chars');
  t.not(idOf('small.txt'), blake3(files['small.txt']!).toString('hex').slice(0, 16), 'the size prefix is part of the hash');
  t.equal(idOf('copy/small.txt'), idOf('small.txt'), 'the same bytes in two files give the same id');
  t.equal(library.db.prepare('SELECT count(*) FROM content_identities').pluck().get(), 7, 'one content identity row per distinct content');
  const row = library.db.prepare('SELECT size, sampled_hash, full_hash FROM content_identities WHERE id = ?').get(idOf('one-MiB.bin')) as { size: number; sampled_hash: string; full_hash: string | null };
  t.equal(row.size, KiB * KiB, 'the identity row records the size');
  t.ok(row.sampled_hash.startsWith(idOf('one-MiB.bin')!), 'and the whole sampled hash the id starts with');
  t.equal(row.full_hash, null, 'content mode stores no full hash');
});

t.test('a large file is identified by its samples: bytes between samples do not count, bytes inside do', async (t) => {
  const base = patterned(KiB * KiB, 9);
  const between = Buffer.from(base);
  flip(between, 200_000); // between the first and second sample (8192+10240 .. 348842)
  const inSample = Buffer.from(base);
  flip(inSample, 348_842 + 5); // inside the second sample
  const inFooter = Buffer.from(base);
  flip(inFooter, KiB * KiB - 1);
  const root = writeTree(tempDir(t), { 'base.bin': base, 'between.bin': between, 'in-sample.bin': inSample, 'in-footer.bin': inFooter, 'longer.bin': Buffer.concat([base, Buffer.from([0])]) });
  const library = tempLibrary(t);
  const store = new EntryStore(library.db);
  const location = addLocation(library.db, store, library.device.id, { path: root, name: 'samples' });
  indexLocation(library, location);
  const idOf = (rel: string) => store.resolve(location.rootEntryId!, [rel])!.contentId;
  t.equal(idOf('between.bin'), idOf('base.bin'), 'a change between samples keeps the id (the sampling trade-off)');
  t.not(idOf('in-sample.bin'), idOf('base.bin'), 'a change inside a sample changes the id');
  t.not(idOf('in-footer.bin'), idOf('base.bin'), 'a change in the footer changes the id');
  t.not(idOf('longer.bin'), idOf('base.bin'), 'one byte longer changes the id');
  for (const rel of ['base.bin', 'between.bin', 'in-sample.bin', 'in-footer.bin']) {
    t.equal(idOf(rel), expectedContentId(fs.readFileSync(path.join(root, rel))), `${rel} matches the recipe`);
  }
});

t.test('the BLAKE3 used is the standard one (matches b3sum)', { skip: spawnSync('b3sum', ['--version']).status !== 0 && 'b3sum is not installed' }, async (t) => {
  const file = path.join(tempDir(t), 'data.bin');
  const data = patterned(300_000, 11);
  fs.writeFileSync(file, data);
  const out = spawnSync('b3sum', ['--no-names', file], { encoding: 'utf8' }).stdout.trim();
  t.equal(blake3(data).toString('hex'), out, 'blake3() equals b3sum');
});

interface DupesJson {
  groups: Array<{ contentId: string; size: number; copies: number; wastedBytes: number; paths: string[] }>;
  wastedBytes: number;
}

t.test('sd dupes lists content held by more than one file, biggest waste first, with wasted bytes', async (t) => {
  const big = patterned(200_000, 21);
  const root = writeTree(tempDir(t), {
    'photos/a.jpg': big,
    'backup/a.jpg': big,
    'backup/old/a copy.jpg': big,
    'notes/hello.txt': 'hello',
    'hello.txt': 'hello',
    'unique.txt': 'only one of me',
    'empty1': '',
    'empty2': '',
  });
  const library = tempLibrary(t, 'Dupe Box');
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'stuff' });
  indexLocation(library, location);
  const dupes = await sdJson<DupesJson>(t, ['dupes'], { library: library.dir });
  t.equal(dupes.groups.length, 2, 'two duplicated contents (empty files have no id, so are no duplicates)');
  const [first, second] = dupes.groups;
  t.match(first, { contentId: expectedContentId(big), size: 200_000, copies: 3, wastedBytes: 400_000 }, 'the three copies of the big file waste two of them');
  t.same([...first!.paths].sort(), ['sd://dupe-box/stuff/backup/a.jpg', 'sd://dupe-box/stuff/backup/old/a copy.jpg', 'sd://dupe-box/stuff/photos/a.jpg'], 'with the SdPath of every copy');
  t.match(second, { contentId: expectedContentId(Buffer.from('hello')), size: 5, copies: 2, wastedBytes: 5 }, 'the two hello files waste 5 bytes');
  t.same([...second!.paths].sort(), ['sd://dupe-box/stuff/hello.txt', 'sd://dupe-box/stuff/notes/hello.txt'], 'with both paths');
  t.equal(dupes.wastedBytes, 400_005, 'the total waste is the sum');

  const copies = await sdJson<Array<{ sdpath: string; contentId: string }>>(t, ['ls', `sd://content/${first!.contentId}`], { library: library.dir });
  t.same(copies.map((c) => c.sdpath).sort(), [...first!.paths].sort(), 'sd ls sd://content/<id> lists the same copies');
});
