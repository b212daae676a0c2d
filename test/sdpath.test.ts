// SdPath: sd://<device>/<location>/<path> and sd://content/<id> parse and format
// round-trip whatever the names hold; '.' and '..' are refused; plain local paths map
// to their location's entry, and nothing resolves outside a location.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { EntryStore } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import { addLocation } from '../src/vdfs/locations.js';
import { entrySdPath, formatSdPath, parseSdPath, resolvePath, type SdPath } from '../src/vdfs/sdpath.js';
import { sd, sdJson } from './cli-process.js';
import { tempDir, tempLibrary, writeTree } from './helpers.js';
import { throwsSdError } from './index-assertions.js';

const AWKWARD_NAMES = [
  'plain.txt',
  'with space.txt',
  '100% sure',
  '%41 is not A',
  '%',
  'line\nbreak',
  'tab\tand\rreturn',
  'bell\u0007 and del\u007f',
  'ünïcødé 日本語 🎉.jpg',
  '#hash?query=1&x',
  'a:b;c,d@e',
  '...',
  '.hidden',
  'trailing space ',
];

t.test('parse and format round-trip names with spaces, %, newlines, control characters and unicode', async (t) => {
  for (const name of AWKWARD_NAMES) {
    const p: SdPath = { kind: 'entry', device: 'my-laptop', location: 'photos', path: ['2024 trip', name] };
    const text = formatSdPath(p);
    t.same(parseSdPath(text), p, `${JSON.stringify(name)} survives format then parse (${JSON.stringify(text)})`);
    t.equal(formatSdPath(parseSdPath(text)), text, `${JSON.stringify(text)} survives parse then format`);
    t.notMatch(text, /[\u0000-\u001f\u007f]/, `${JSON.stringify(name)}: the SdPath holds no control character (one line)`);
  }
  t.equal(formatSdPath({ kind: 'entry', device: 'd', location: 'l', path: ['100%'] }), 'sd://d/l/100%25', "'%' is written %25");
  t.equal(formatSdPath({ kind: 'entry', device: 'd', location: 'l', path: ['a\nb'] }), 'sd://d/l/a%0Ab', 'a newline is written %0A');
  t.equal(formatSdPath({ kind: 'entry', device: 'd', location: 'l', path: ['é 日'] }), 'sd://d/l/é 日', 'unicode and spaces stay as they are');
  t.same(parseSdPath('sd://d/l/a%20b'), { kind: 'entry', device: 'd', location: 'l', path: ['a b'] }, 'a %-escaped space is read too');
  t.same(parseSdPath('sd://'), { kind: 'root' }, 'sd:// is the root of all devices');
  t.same(parseSdPath('sd://laptop'), { kind: 'entry', device: 'laptop', path: [] }, 'sd://laptop is a device');
  t.same(parseSdPath('sd://laptop/photos/'), { kind: 'entry', device: 'laptop', location: 'photos', path: [] }, 'a trailing slash names the same folder');
  t.equal(formatSdPath({ kind: 'root' }), 'sd://', 'the root formats as sd://');
});

t.test("'.' and '..' are refused, written plainly or %-escaped", async (t) => {
  for (const text of ['sd://d/l/../x', 'sd://d/l/a/../../etc/passwd', 'sd://d/../x', 'sd://d/l/./x', 'sd://d/l/a/.', 'sd://d/l/%2E%2E/x', 'sd://d/l/%2e', 'sd://../x']) {
    throwsSdError(t, () => parseSdPath(text), 'INVALID_PATH', /contains '\.\.?'/, text);
  }
  t.same(parseSdPath('sd://d/l/.../x').kind, 'entry', "'...' is an ordinary name");
  t.same(parseSdPath('sd://d/l/..x/.y').kind, 'entry', "names that start with dots are ordinary names");
});

t.test('sd://content/<16 hex> parses; other content ids are refused', async (t) => {
  t.same(parseSdPath('sd://content/0123456789abcdef'), { kind: 'content', contentId: '0123456789abcdef' }, 'a 16-hex-char content id');
  t.equal(formatSdPath({ kind: 'content', contentId: '0123456789abcdef' }), 'sd://content/0123456789abcdef', 'and it formats back');
  for (const text of ['sd://content', 'sd://content/', 'sd://content/0123456789abcde', 'sd://content/0123456789abcdef0', 'sd://content/0123456789ABCDEF', 'sd://content/0123456789abcdeg', 'sd://content/0123456789abcdef/x', 'sd://content/%30123456789abcde ']) {
    throwsSdError(t, () => parseSdPath(text), 'INVALID_PATH', /content path|contains/, JSON.stringify(text));
  }
  throwsSdError(t, () => parseSdPath('http://x/y'), 'INVALID_PATH', /not an SdPath/, 'another scheme');
  throwsSdError(t, () => parseSdPath('/home/x'), 'INVALID_PATH', /not an SdPath/, 'a plain path given to the SdPath parser');
  throwsSdError(t, () => parseSdPath('sd://d/l/100%'), 'INVALID_PATH', /%-escape/, 'a broken %-escape');
  throwsSdError(t, () => parseSdPath('sd://d/l/%zz'), 'INVALID_PATH', /%-escape/, 'a %-escape that is not hex');
});

t.test('SdPaths and plain local paths resolve to entries, never outside a location', async (t) => {
  const base = fs.realpathSync(tempDir(t, 'sd-paths-'));
  const root = path.join(base, 'home');
  const outside = path.join(base, 'elsewhere');
  const names = AWKWARD_NAMES;
  writeTree(root, Object.fromEntries([['dir/file.txt', 'f'], ...names.map((n) => [`awkward/${n}`, n])]));
  writeTree(outside, { 'secret.txt': 'not indexed' });
  fs.symlinkSync(outside, path.join(root, 'link-out'));
  fs.symlinkSync(root, path.join(base, 'alias'));
  const library = tempLibrary(t, 'Path Tester');
  const store = new EntryStore(library.db);
  const location = addLocation(library.db, store, library.device.id, { path: root, name: 'home' });
  indexLocation(library, location);
  const file = store.resolve(location.rootEntryId!, ['dir', 'file.txt'])!;

  const local = resolvePath(library.db, path.join(root, 'dir/file.txt'));
  t.ok(local.kind === 'entry' && local.entry.id === file.id, 'a plain local path inside the location resolves to its entry');
  t.same(local.kind === 'entry' && local.relPath, ['dir', 'file.txt'], 'with its path inside the location');
  const viaSd = resolvePath(library.db, 'sd://path-tester/home/dir/file.txt');
  t.ok(viaSd.kind === 'entry' && viaSd.entry.id === file.id, 'the SdPath resolves to the same entry');
  const rootLocal = resolvePath(library.db, root);
  t.ok(rootLocal.kind === 'entry' && rootLocal.entry.id === location.rootEntryId, 'the location folder itself resolves to the root entry');
  const aliased = resolvePath(library.db, path.join(base, 'alias', 'dir', 'file.txt'));
  t.ok(aliased.kind === 'entry' && aliased.entry.id === file.id, 'a path through a symlink to the location resolves to the real entry');
  const link = resolvePath(library.db, path.join(root, 'link-out'));
  t.ok(link.kind === 'entry' && link.entry.kind === 'symlink', 'a symlink inside the location is named, not followed');

  throwsSdError(t, () => resolvePath(library.db, path.join(outside, 'secret.txt')), 'NOT_FOUND', /not inside any location/, 'a path outside every location');
  throwsSdError(t, () => resolvePath(library.db, path.join(root, 'dir', '..', '..', 'elsewhere', 'secret.txt')), 'NOT_FOUND', /not inside any location/, "a path escaping the location with '..'");
  throwsSdError(t, () => resolvePath(library.db, path.join(root, 'link-out', 'secret.txt')), 'NOT_FOUND', /not inside any location/, 'a path through a symlink that points outside');
  throwsSdError(t, () => resolvePath(library.db, path.join(root, 'no-such-file')), 'NOT_FOUND', /not in the index/, 'a path inside the location that is not indexed');
  throwsSdError(t, () => resolvePath(library.db, path.join(base, 'nowhere', 'x')), 'NOT_FOUND', /does not exist/, 'a path whose folder does not exist');
  throwsSdError(t, () => resolvePath(library.db, 'sd://path-tester/home/dir/nope'), 'NOT_FOUND', /not in the index/, 'an SdPath to nothing');
  throwsSdError(t, () => resolvePath(library.db, 'sd://nobody-here/home'), 'NOT_FOUND', /no device/, 'an unknown device');
  throwsSdError(t, () => resolvePath(library.db, 'sd://path-tester/away'), 'NOT_FOUND', /no location/, 'an unknown location');

  for (const name of names) {
    const entry = store.resolve(location.rootEntryId!, ['awkward', name])!;
    const text = entrySdPath(library.device, location, ['awkward', name]);
    const back = resolvePath(library.db, text);
    t.ok(back.kind === 'entry' && back.entry.id === entry.id, `${JSON.stringify(name)}: its SdPath ${JSON.stringify(text)} resolves back to it`);
  }
});

t.test('sd stat takes SdPaths and local paths and refuses the rest with one line', async (t) => {
  const root = fs.realpathSync(writeTree(tempDir(t), { 'docs/read me.txt': 'hello', 'line\nbreak.txt': 'x' }));
  const library = tempLibrary(t, 'Stat Box');
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'docs' });
  indexLocation(library, location);
  const opts = { library: library.dir };
  const [byLocal, bySd, newline, escape, outside] = await Promise.all([
    sdJson<{ sdpath: string; name: string }>(t, ['stat', path.join(root, 'docs/read me.txt')], opts),
    sdJson<{ sdpath: string; size: number }>(t, ['stat', 'sd://stat-box/docs/docs/read me.txt'], opts),
    sdJson<{ sdpath: string; name: string }>(t, ['stat', 'sd://stat-box/docs/line%0Abreak.txt'], opts),
    sd(['stat', 'sd://stat-box/docs/../../etc/passwd'], opts),
    sd(['stat', '/etc/passwd'], opts),
  ]);
  t.equal(byLocal.sdpath, 'sd://stat-box/docs/docs/read me.txt', 'a local path is shown with its SdPath');
  t.equal(bySd.size, 5, 'the SdPath names the same file');
  t.equal(newline.name, 'line\nbreak.txt', 'a name with a newline is reached through %0A');
  t.equal(escape.code, 1, "an SdPath with '..' exits 1");
  t.match(escape.stderr, /^sd: .*contains '\.\.'.*\n$/, 'with one line on stderr');
  t.equal(outside.code, 1, 'a path outside every location exits 1');
  t.match(outside.stderr, /^sd: \/etc\/passwd is not inside any location[^\n]*\n$/, 'with one line on stderr');
});
