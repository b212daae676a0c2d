// The Data Guardian's counts: a copy counts when its own full BLAKE3 check is current and
// equal to its content's, on a trusted device seen within the stale limit; policies (the
// library's, a location's or folder's, a tag's; the most specific wins) say how many
// copies a file wants; at-risk lists what falls short, with why. Two real libraries
// indexed from real folders; B mirrors A from A's log blocks (encoded and decoded as they
// travel), so checks and shared settings go the way they go between devices.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Guardian } from '../src/guardian/guardian.js';
import { CopyChecks } from '../src/vdfs/content/copy-checks.js';
import { EntryStore } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import type { Library } from '../src/vdfs/library.js';
import { getLocation } from '../src/vdfs/locations.js';
import { TagStore } from '../src/vdfs/tags.js';
import { sd } from './cli-process.js';
import { tempLibrary } from './helpers.js';
import { location, mirrorOf } from './guardian-helpers.js';

const shared = crypto.randomBytes(300_000);

function contentOf(library: Library, name: string): string {
  return library.db.prepare('SELECT content_id FROM entries WHERE name = ? AND content_id IS NOT NULL LIMIT 1').pluck().get(name) as string;
}

t.test('a copy counts when verified, on a trusted device seen lately; at-risk says why', async (t) => {
  const a = tempLibrary(t, 'alpha');
  const b = tempLibrary(t, 'beta');
  location(t, a, 'photos', 'deep', { 'shared.bin': shared, 'alone.txt': 'only alpha has this', 'twice.txt': 'both have me', 'album/p.txt': 'in an album' });
  location(t, b, 'backup', 'deep', { 'shared.bin': shared });
  location(t, b, 'docs', 'content', { 'twice.txt': 'both have me' });
  await mirrorOf(t, a, b);
  const g = new Guardian(b.db, b.device.id);

  t.match(g.count(contentOf(b, 'shared.bin')), { devices: 2, counting: 2 }, 'deep-indexed on both devices: two counting copies');
  t.match(g.count(contentOf(b, 'twice.txt')), { devices: 2, counting: 1 }, "beta's copy of twice.txt has no full-hash check: it does not count");
  t.match(g.count(contentOf(b, 'alone.txt')), { devices: 1, counting: 1 }, 'alone.txt: one device');

  const risky = () => Object.fromEntries(g.atRisk().items.map((i) => [path.posix.basename(i.paths[0]!), i.risk.code]));
  t.same(risky(), { 'alone.txt': 'one-copy', 'p.txt': 'one-copy', 'twice.txt': 'unverified' }, 'at risk with the default of 2 copies: one copy, or copies not verified');
  t.same(g.atRisk().items[0]?.paths.length, 1, 'each with the files that hold it');

  // A check goes stale when the file changes (size or mtime); a fresh one counts again.
  const docsFile = path.join(getLocation(b.db, b.device.id, 'docs')!.rootPath, 'twice.txt');
  const entryId = b.db.prepare("SELECT e.id FROM entries e JOIN locations l ON l.id = e.location_id WHERE l.name = 'docs' AND e.name = 'twice.txt'").pluck().get() as number;
  const fullHash = b.db.prepare('SELECT full_hash FROM content_identities WHERE id = ?').pluck().get(contentOf(b, 'twice.txt')) as string;
  new CopyChecks(b.db).recordCurrent(entryId, fullHash);
  t.equal(g.count(contentOf(b, 'twice.txt')).counting, 2, "with a check of beta's copy, both count");
  fs.utimesSync(docsFile, new Date('2020-01-01'), new Date('2020-01-01'));
  indexLocation(b, getLocation(b.db, b.device.id, 'docs')!);
  t.equal(g.count(contentOf(b, 'twice.txt')).counting, 1, 'touched since: its check is stale and it no longer counts');

  // Untrusted devices' copies do not count.
  g.settings.setTrust(a.device.id, false);
  t.match(g.count(contentOf(b, 'shared.bin')), { devices: 2, trusted: 1, counting: 1 }, "alpha untrusted: only beta's copy of shared.bin counts");
  t.equal(risky()['alone.txt'], 'untrusted-only', "alone.txt: copies only on an untrusted device");
  g.settings.setTrust(a.device.id, true);

  // A device not seen for longer than the stale limit.
  b.db.prepare('UPDATE devices SET last_seen = ?, created_at = ? WHERE id = ?').run(Date.now() - 40 * 86_400_000, Date.now() - 40 * 86_400_000, a.device.id);
  t.same(g.staleDevices(), [a.device.id], 'alpha, last seen 40 days ago, is stale at the default 30 days');
  t.equal(risky()['alone.txt'], 'stale-only', 'alone.txt: only on a device offline for more than 30 days');
  t.notOk(g.atRisk({ staleDays: 60 }).items.some((i) => i.risk.code === 'stale-only'), 'not with --stale 60');
  b.db.prepare('UPDATE devices SET last_seen = ? WHERE id = ?').run(Date.now(), a.device.id);

  // Policies: the library's, a location's or folder's of any device (the deepest wins), a tag's (wins over folders).
  g.settings.setPolicy({ kind: 'library' }, 1);
  t.same(risky(), {}, 'with a library policy of 1 copy nothing is at risk');
  g.settings.setPolicy({ kind: 'path', deviceId: a.device.id, location: 'photos', path: '' }, 3);
  g.settings.setPolicy({ kind: 'path', deviceId: a.device.id, location: 'photos', path: 'album' }, 1);
  t.same(risky(), { 'alone.txt': 'one-copy', 'shared.bin': 'too-few', 'twice.txt': 'too-few' }, "alpha's photos want 3 copies, its album folder 1 (the deeper policy wins)");
  const files = new EntryStore(b.db);
  const album = b.db.prepare("SELECT id FROM entries WHERE name = 'p.txt'").pluck().get() as number;
  t.equal(g.wanted(files.get(album)!), 1, 'a file in the album wants 1');
  const backupShared = b.db.prepare("SELECT e.id FROM entries e JOIN locations l ON l.id = e.location_id WHERE l.name = 'backup' AND e.name = 'shared.bin'").pluck().get() as number;
  new TagStore(b.db, b.device.id).add(files.get(backupShared)!, ['vault']);
  g.settings.setPolicy({ kind: 'tag', tag: 'vault' }, 5);
  t.equal(g.wanted(files.get(backupShared)!), 5, 'a tag policy wins over the folder');
  const ranked = g.atRisk().items;
  t.match(ranked.find((i) => i.contentId === contentOf(b, 'shared.bin')), { wanted: 5, counting: 2 }, 'shared.bin wants the most its files want (5)');
  t.same(ranked.map((i) => i.counting), [1, 1, 2], 'fewest counting copies first');

  const status = g.status();
  t.same(status.byCopies.map((x) => [x.copies, x.files]), [[1, 4], [2, 2]], 'status: files by counting copies (alone, p, both twice.txt at 1; both shared.bin at 2)');
  t.match(status.atRisk, { contents: 3, files: 5 }, 'and the totals at risk');
  t.same(status.locations.map((l) => `${l.device}/${l.location} ${l.files} ${l.verified}`).sort(), ['alpha/photos 4 4', 'beta/backup 1 1', 'beta/docs 1 0'], 'per device and location, with verified files');
});

t.test('policies and trust travel in the log, newest wins; a peer op that fails validation is ignored and counted', async (t) => {
  const a = tempLibrary(t, 'alpha');
  const b = tempLibrary(t, 'beta');
  location(t, a, 'photos', 'deep', { 'x.txt': 'x' });
  const ga = new Guardian(a.db, a.device.id);
  ga.settings.setPolicy({ kind: 'library' }, 3);
  ga.settings.setPolicy({ kind: 'tag', tag: 'tax' }, 4);
  const log = await mirrorOf(t, a, b);
  const gb = new Guardian(b.db, b.device.id);
  t.same(gb.settings.policies().map((p) => [p.key, p.copies]), [['', 3], ['tag:tax', 4]], "beta has alpha's policies from its log's snapshot");

  ga.settings.setTrust(b.device.id, false);
  ga.settings.removePolicy({ kind: 'tag', tag: 'tax' });
  log.sync();
  t.same(gb.settings.untrusted(), [b.device.id], 'an untrust travels');
  t.same(gb.settings.policies().map((p) => p.key), [''], 'and a removal');

  gb.settings.setPolicy({ kind: 'library' }, 2); // newer than alpha's
  const older = { op: 'guardian' as const, kind: 'policy', key: '', value: '{"copies":7}', hlc: '000000000000001.000000.' + a.device.id };
  log.send([older]);
  t.equal(gb.settings.policies()[0]?.copies, 2, 'an older setting does not replace a newer one');

  const stamp = `${String(Date.now()).padStart(15, '0')}.000000.${a.device.id}`;
  log.send([
    { op: 'guardian', kind: 'policy', key: '', value: '{"copies":99}', hlc: stamp },
    { op: 'guardian', kind: 'policy', key: 'path:../etc', value: '{"copies":2}', hlc: stamp },
    { op: 'guardian', kind: 'trust', key: b.device.id, value: 'maybe', hlc: stamp },
    { op: 'guardian', kind: 'owner', key: 'x', value: null, hlc: stamp },
  ]);
  t.equal(gb.settings.policies()[0]?.copies, 2, 'a policy of 99 copies is not applied');
  t.same(gb.settings.policies().map((p) => p.key), [''], 'nor one with a bad target');
  t.match(gb.settings.refused(), [{ deviceId: a.device.id, count: 4, lastError: /not a guardian setting/ }], 'the four are counted against alpha');
});

t.test('sd guardian: bad input is one clear line and exit 1 or 2', async (t) => {
  const library = tempLibrary(t, 'box');
  location(t, library, 'docs', 'deep', { 'a.txt': 'a', 'sub/b.txt': 'b' });
  const o = { library: library.dir };
  const line = async (args: string[], code: number, message: RegExp) => {
    const r = await sd(['guardian', ...args], o);
    t.equal(r.code, code, `sd guardian ${args.join(' ')}: exit ${code}`);
    t.match(r.stderr, /^sd: [^\n]+\n$/, 'one line on stderr');
    t.match(r.stderr, message, 'saying why');
  };
  await line(['policy', 'set', '--copies', '0'], 2, /from 1 to 16 \(got 0\)/);
  await line(['policy', 'set', '--copies', '17', 'sd://box/docs'], 2, /from 1 to 16/);
  await line(['policy', 'set', '--copies', 'two'], 2, /from 1 to 16/);
  await line(['policy', 'set', 'sd://box/docs'], 2, /needs --copies/);
  await line(['policy', 'set', '--copies', '2', 'sd://box/nowhere'], 1, /no location 'nowhere'/);
  await line(['policy', 'set', '--copies', '2', 'sd://box/docs/a.txt'], 2, /is a file/);
  await line(['policy', 'set', '--copies', '2', 'tag:a,b'], 2, /may not contain ','/);
  await line(['policy', 'rm', 'sd://box/docs'], 1, /no policy for sd:\/\/box\/docs/);
  await line(['untrust', 'phone'], 1, /no device named 'phone'/);
  await line(['at-risk', '--stale', 'soon'], 2, /--stale takes a number of days/);

  const set = await sd(['--json', 'guardian', 'policy', 'set', '--copies', '1', 'sd://box/docs/sub'], o);
  t.same(JSON.parse(set.stdout), { target: 'sd://box/docs/sub', copies: 1 }, 'a folder policy is set');
  const risk = JSON.parse((await sd(['--json', 'guardian', 'at-risk'], o)).stdout) as { total: number; items: Array<{ paths: string[]; risk: { code: string } }> };
  t.same(risk.items.map((i) => [i.paths, i.risk.code]), [[['sd://box/docs/a.txt'], 'one-copy']], 'at-risk --json: a.txt has one copy of 2; sub/b.txt wants 1');
  const status = JSON.parse((await sd(['--json', 'guardian', 'status'], o)).stdout) as { byCopies: unknown; atRisk: { files: number } };
  t.same(status.byCopies, [{ copies: 1, files: 2, bytes: 2 }], 'status --json: two files with one counting copy');
  t.equal(status.atRisk.files, 1, 'one at risk');
});
