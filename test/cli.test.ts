// The `sd` command as scripts see it: with --json every command prints exactly one JSON
// document with the fields it promises; exit codes are 0 ok, 1 error (one line on
// stderr), 2 usage; every command answers --help.
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { EntryStore } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import { initLibrary } from '../src/vdfs/library.js';
import { addLocation } from '../src/vdfs/locations.js';
import { sd, sdRaw, type SdOptions } from './cli-process.js';
import { tempDir, writeTree } from './helpers.js';

/** Runs `sd --json ARGS`, checks exit 0, an empty stderr and one JSON document on stdout. */
async function json<T>(t: Test, args: string[], options: SdOptions): Promise<T> {
  const r = await sd(['--json', ...args], options);
  t.equal(r.code, 0, `sd --json ${args.join(' ')} exits 0${r.code ? `: ${r.stderr.trim()}` : ''}`);
  t.equal(r.stderr, '', `sd --json ${args[0]}: nothing on stderr`);
  let doc: T | undefined;
  t.doesNotThrow(() => (doc = JSON.parse(r.stdout) as T), `sd --json ${args.join(' ')}: stdout is one JSON document`);
  return doc as T;
}

/** Asserts an error exit with exactly one line on stderr (and nothing on stdout). */
function oneLineError(t: Test, r: { code: number; stdout: string; stderr: string }, code: number, message: RegExp, what: string): void {
  t.equal(r.code, code, `${what}: exit ${code}`);
  t.match(r.stderr, /^sd: [^\n]+\n$/, `${what}: one line on stderr (${JSON.stringify(r.stderr.trim())})`);
  t.match(r.stderr, message, `${what}: the message says why`);
  t.equal(r.stdout, '', `${what}: nothing on stdout`);
}

const ENTRY_VIEW = { sdpath: String, path: String, name: String, kind: String, size: Number, aggregateSize: Number, mtime: String, inode: Number, mode: String };

t.test('--json output of every command is one JSON document with the promised fields', async (t) => {
  const base = fs.realpathSync(tempDir(t, 'sd-cli-'));
  const lib = path.join(base, 'library');
  const root = writeTree(path.join(base, 'Pictures'), {
    'beach.jpg': Buffer.alloc(3000, 1),
    'copies/beach.jpg': Buffer.alloc(3000, 1),
    'notes/todo.txt': 'buy milk\n',
    'bytes.bin': Buffer.from([0, 1, 2, 255, 10, 13, 0]),
  });
  const o = { library: lib };

  const init = await json<{ library: string; created: boolean; device: { id: string; name: string; slug: string } }>(t, ['init', '--name', 'CLI Laptop'], o);
  t.match(init, { library: lib, created: true, device: { id: /^[0-9a-f-]{36}$/, name: 'CLI Laptop', slug: 'cli-laptop' } }, 'init: library, created, device id/name/slug');
  const again = await json<{ created: boolean; device: { id: string } }>(t, ['init'], o);
  t.match(again, { created: false, device: { id: init.device.id } }, 'init again: nothing created, the same device');

  const added = await json<{ location: Record<string, unknown>; index: Record<string, unknown> }>(t, ['location', 'add', root, '--name', 'pics'], o);
  t.match(added.location, { id: Number, name: 'pics', path: root, mode: 'content', includeHidden: true, ignore: [], entries: 6, bytes: 6016 }, 'location add: the location');
  t.match(added.index, { location: 'pics', mode: 'content', seconds: Number, counts: { scanned: 6, new: 6, identified: 4, extracted: 2, extractFailed: 1 }, warnings: 1, errors: 0 }, 'location add: the index summary');
  t.match(added.index.warningSamples, [{ path: /beach\.jpg$/, reason: /not a valid JPG image.*name only/ }], 'location add: a .jpg that is not a JPEG is the one warning (its two copies are one content)');
  t.type(added.location.lastIndexed, 'string', 'location add: lastIndexed is set by the index it ran');

  const [index, locations, devices, device, folder, file, stat, search, dupes] = await Promise.all([
    json<Array<Record<string, unknown>>>(t, ['index'], o),
    json<Array<Record<string, unknown>>>(t, ['location', 'ls'], o),
    json<Array<Record<string, unknown>>>(t, ['ls'], o),
    json<Array<Record<string, unknown>>>(t, ['ls', 'sd://cli-laptop'], o),
    json<Array<Record<string, unknown>>>(t, ['ls', 'sd://cli-laptop/pics'], o),
    json<Array<Record<string, unknown>>>(t, ['ls', path.join(root, 'notes/todo.txt')], o),
    json<Record<string, unknown>>(t, ['stat', 'sd://cli-laptop/pics/beach.jpg'], o),
    json<{ query: Record<string, unknown>; results: Array<Record<string, unknown>> }>(t, ['search', 'beach'], o),
    json<{ groups: Array<Record<string, unknown>>; wastedBytes: number }>(t, ['dupes'], o),
  ]);
  t.equal(index.length, 1, 'index: one summary per location');
  t.match(index[0], { location: 'pics', mode: 'content', seconds: Number, counts: { scanned: 6, new: 0, modified: 0, moved: 0, deleted: 0, unchanged: 6, identified: 0, fullHashed: 0, ignored: 0 }, warnings: 0, warningSamples: [], errors: 0 }, 'index: counts, seconds, warnings, errors');
  t.match(locations, [{ name: 'pics', path: root, mode: 'content', entries: 6, bytes: 6016, lastIndexed: String }], 'location ls: every location with its counts');
  t.match(devices, [{ sdpath: 'sd://cli-laptop/', name: 'CLI Laptop', kind: 'device', local: true, locations: 1 }], 'ls: the devices');
  t.match(device, [{ ...ENTRY_VIEW, sdpath: 'sd://cli-laptop/pics', name: 'pics', kind: 'dir', size: 6016 }], 'ls sd://device: its locations');
  t.same(folder.map((e) => e.name), ['beach.jpg', 'bytes.bin', 'copies', 'notes'], 'ls folder: its children by name');
  t.match(folder[0], { ...ENTRY_VIEW, sdpath: 'sd://cli-laptop/pics/beach.jpg', path: path.join(root, 'beach.jpg'), kind: 'file', size: 3000, contentId: /^[0-9a-f]{16}$/ }, 'ls folder: each entry with sdpath, path, kind, size, mtime, mode, content id');
  t.match(file, [{ ...ENTRY_VIEW, name: 'todo.txt', size: 9 }], 'ls of a file (by local path): that one entry');
  t.match(stat, { ...ENTRY_VIEW, kind: 'file', size: 3000, contentId: /^[0-9a-f]{16}$/, fullHash: null, copies: 2 }, 'stat: the entry, its full hash and copies');
  t.match(search, { query: { words: ['beach'] }, notes: Array, results: [{ ...ENTRY_VIEW, name: 'beach.jpg', alsoAt: [/beach\.jpg$/] }] }, 'search: the query read, and the matches (two copies of one content: one result, also at the other)');
  t.match(dupes, { groups: [{ contentId: stat.contentId, size: 3000, copies: 2, wastedBytes: 3000, paths: ['sd://cli-laptop/pics/beach.jpg', 'sd://cli-laptop/pics/copies/beach.jpg'] }], wastedBytes: 3000 }, 'dupes: groups and the total');

  const statDir = await json<Record<string, unknown>>(t, ['stat', 'sd://cli-laptop/pics/notes'], o);
  t.match(statDir, { kind: 'dir', size: 9, children: 1, contentId: null }, 'stat of a folder: its size and children');

  // cat writes the file's bytes as they are, --json or not: the bytes are the output.
  const [plain, withJson, viaContent] = await Promise.all([
    sdRaw(['cat', 'sd://cli-laptop/pics/bytes.bin'], o),
    sdRaw(['--json', 'cat', path.join(root, 'bytes.bin')], o),
    sdRaw(['cat', `sd://content/${stat.contentId as string}`], o),
  ]);
  t.same([plain.code, withJson.code, viaContent.code], [0, 0, 0], 'cat exits 0');
  t.same(plain.stdout, fs.readFileSync(path.join(root, 'bytes.bin')), 'cat prints the exact bytes');
  t.same(withJson.stdout, plain.stdout, 'cat with --json prints the same bytes');
  t.same(viaContent.stdout, Buffer.alloc(3000, 1), 'cat sd://content/<id> prints a copy of that content');

  const removed = await json<{ removed: string; entries: number }>(t, ['location', 'rm', 'pics'], o);
  t.same(removed, { removed: 'pics', entries: 7 }, 'location rm: the name and the index entries removed (root included)');
  t.same(await json(t, ['location', 'ls'], o), [], 'location ls after rm: none');
  t.ok(fs.existsSync(path.join(root, 'beach.jpg')), 'location rm leaves the files alone');
  t.same((await json<{ results: unknown[] }>(t, ['search', 'beach'], o)).results, [], 'search after rm: nothing');
});

t.test('exit codes: 0 ok, 1 error with one line on stderr, 2 usage', async (t) => {
  const base = tempDir(t, 'sd-cli-');
  const lib = path.join(base, 'library');
  const missing = path.join(base, 'no-library-here');
  const o = { library: lib };
  const { library } = initLibrary(lib, 'exit-codes');
  const tree = writeTree(path.join(base, 'tree'), { 'a.txt': 'a' });
  indexLocation(library, addLocation(library.db, new EntryStore(library.db), library.device.id, { path: tree, name: 'tree' }));
  library.close();

  const [
    unknown, badOption, badOptionSub, noCommand, version, noLibrary, noLibraryJson,
    missingArg, badMode, unknownSub, noLocation, statNothing, catFolder, searchEmpty, badLimit, libraryFlagNoValue, renamedDevice,
  ] = await Promise.all([
    sd(['frobnicate'], o),
    sd(['index', '--bogus'], o),
    sd(['location', 'add', '--colour', 'x'], o),
    sd([], o),
    sd(['--version'], o),
    sd(['location', 'ls'], { library: missing }),
    sd(['--json', 'ls'], { library: missing }),
    sd(['location', 'add'], o),
    sd(['location', 'add', base, '--mode', 'fast'], o),
    sd(['location', 'frob'], o),
    sd(['location', 'rm', 'nope'], o),
    sd(['stat', 'sd://exit-codes/tree/nothing-here'], o),
    sd(['cat', 'sd://exit-codes/tree'], o),
    sd(['search'], o),
    sd(['dupes', '--limit', '0'], o),
    sd(['--library'], o),
    sd(['init', '--name', 'another-name'], o),
  ]);
  oneLineError(t, unknown, 2, /unknown command 'frobnicate'/, 'an unknown command');
  oneLineError(t, badOption, 2, /--bogus/, 'an unknown option');
  oneLineError(t, badOptionSub, 2, /--colour/, 'an unknown option of a subcommand');
  t.equal(noCommand.code, 2, 'no command at all: exit 2');
  t.match(noCommand.stdout, /Usage: sd/, 'with the usage');
  t.same([version.code, version.stdout], [0, 'sd 0.1.0\n'], '--version: exit 0 and the version');
  oneLineError(t, noLibrary, 1, /no library at .*sd init/, 'a missing library');
  oneLineError(t, noLibraryJson, 1, /no library/, 'a missing library with --json');
  t.notOk(fs.existsSync(missing), 'a command on a missing library does not create it');
  oneLineError(t, missingArg, 2, /takes one PATH/, 'a missing argument');
  oneLineError(t, badMode, 2, /--mode must be one of shallow, content, deep/, 'a bad --mode value');
  oneLineError(t, unknownSub, 2, /unknown subcommand 'frob'/, 'an unknown subcommand');
  oneLineError(t, noLocation, 1, /no location named 'nope'/, 'removing a location that does not exist');
  oneLineError(t, statNothing, 1, /not in the index/, 'stat of a path that is not indexed');
  oneLineError(t, catFolder, 1, /is a folder/, 'cat of a folder');
  oneLineError(t, searchEmpty, 2, /needs a QUERY/, 'search without a query');
  oneLineError(t, badLimit, 2, /--limit/, 'a --limit that is not a positive number');
  oneLineError(t, libraryFlagNoValue, 2, /--library needs a directory/, '--library without a value');
  oneLineError(t, renamedDevice, 1, /already belongs to device 'exit-codes'/, 'init with another device name on an existing library');
});

t.test('--help works for every command of the library and index, with exit 0', async (t) => {
  const top = await sd(['--help']);
  t.equal(top.code, 0, 'sd --help exits 0');
  const listed = [...top.stdout.matchAll(/^ {2}([a-z]+) {2,}\S/gm)].map((m) => m[1]!);
  const commands = [['init'], ['location'], ['location', 'add'], ['location', 'ls'], ['location', 'rm'], ['index'], ['watch'], ['ls'], ['stat'], ['cat'], ['search'], ['dupes']];
  for (const [name] of commands) t.ok(listed.includes(name!), `sd --help lists ${name}`);
  const lib = { library: path.join(tempDir(t), 'never-created') };
  const results = await Promise.all(commands.map((c) => sd([...c, '--help'], lib)));
  commands.forEach((c, i) => {
    const r = results[i]!;
    const name = c.join(' ');
    t.equal(r.code, 0, `sd ${name} --help exits 0`);
    t.match(r.stdout, new RegExp(`^sd ${name} — \\S`), `sd ${name} --help starts with its name and summary`);
    t.match(r.stdout, /Usage: sd /, `sd ${name} --help shows its usage`);
  });
  const viaHelp = await sd(['help', 'index'], lib);
  t.same([viaHelp.code, viaHelp.stdout], [0, results[5]!.stdout], 'sd help index is sd index --help');
  t.notOk(fs.existsSync(lib.library), '--help never creates a library');
});
