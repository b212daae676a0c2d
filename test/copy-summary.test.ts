// The guardian's copy summary (src/guardian/copy-summary.ts) kept up to date by triggers:
// after every round of random changes to files, checks, full hashes, tags, trust and
// staleness on three devices, status and at-risk read from the summary equal what a count
// from the files themselves gives, and the summary's tables equal the ones a rebuild from
// scratch makes.
import crypto from 'node:crypto';
import t, { type Test } from 'tap';
import { CopySummary, VERIFIED } from '../src/guardian/copy-summary.js';
import { Guardian, riskOf, type CopyCount } from '../src/guardian/guardian.js';
import { addPeerDevice, type Device } from '../src/vdfs/device.js';
import { EntryStore, type Entry } from '../src/vdfs/entries.js';
import type { Library } from '../src/vdfs/library.js';
import { addLocation, setLocationRoot, upsertMirroredLocation } from '../src/vdfs/locations.js';
import { TagStore } from '../src/vdfs/tags.js';
import { seededRandom } from '../scripts/bench/common.js';
import { tempDir, tempLibrary } from './helpers.js';

interface World {
  library: Library;
  devices: Device[];
  /** Per location: its id and the folders files go in (root, keep/). */
  locations: Array<{ id: number; deviceId: string; folders: number[] }>;
  contents: Array<{ id: string; size: number; fullHash: string }>;
  /** The next remote id (a peer's own entry id, unique per device; here unique overall). */
  remote: number;
}

function makeWorld(t: Test): World {
  const library = tempLibrary(t, 'alpha');
  const db = library.db;
  const store = new EntryStore(db);
  const devices: Device[] = [library.device];
  for (const name of ['beta', 'gamma']) devices.push(addPeerDevice(db, { id: crypto.randomUUID(), name, publicKey: crypto.randomBytes(32).toString('hex') }));
  const locations: World['locations'] = [];
  const now = Date.now();
  let remote = 1;
  devices.forEach((d, i) => {
    for (const name of i === 0 ? ['photos'] : ['backup', 'more']) {
      let id: number;
      let root: number;
      if (i === 0) {
        const l = addLocation(db, store, d.id, { path: tempDir(t, 'sd-summary-'), name, mode: 'deep' });
        id = l.id;
        root = l.rootEntryId!;
      } else {
        id = upsertMirroredLocation(db, d.id, locations.length + 1, { name, rootPath: `/home/${d.slug}/${name}`, indexMode: 'deep' }).id;
        root = store.insertMirrored(d.id, id, [], { name: '', kind: 'dir', size: 0, mtime: now, mode: 0o40755 }, null, remote++);
        setLocationRoot(db, id, root);
      }
      const keep = i === 0 ? store.insert(d.id, id, root, { name: 'keep', kind: 'dir', size: 0, mtime: now, inode: 0, mode: 0o40755 }) : store.insertMirrored(d.id, id, [root], { name: 'keep', kind: 'dir', size: 0, mtime: now, mode: 0o40755 }, null, remote++);
      locations.push({ id, deviceId: d.id, folders: [root, keep] });
    }
  });
  const contents = Array.from({ length: 24 }, (_, i) => ({ id: `c${String(i).padStart(3, '0')}`, size: 1000 + (i % 6) * 10, fullHash: crypto.randomBytes(32).toString('hex') }));
  const insert = db.prepare('INSERT INTO content_identities (id, size, sampled_hash, full_hash, first_seen) VALUES (?, ?, ?, ?, ?)');
  contents.forEach((c, i) => insert.run(c.id, c.size, 'x', i % 4 === 0 ? null : c.fullHash, now));
  return { library, devices, locations, contents, remote };
}

/** One random change of the kinds the indexer, the mirror, a scrub and the user make. */
function change(w: World, random: () => number, step: number): void {
  const db = w.library.db;
  const store = new EntryStore(db);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const files = db.prepare("SELECT id FROM entries WHERE kind = 'file'").pluck().all() as number[];
  const file = () => store.get(pick(files))!;
  const r = random();
  if (r < 0.3 || files.length < 5) {
    const l = pick(w.locations);
    const c = pick(w.contents);
    const parent = pick(l.folders);
    const chain = store.ancestorIds(parent);
    const id = store.insertMirrored(l.deviceId, l.id, chain, { name: `f${step}`, kind: 'file', size: c.size, mtime: 1000 + step, mode: 0o100644 }, c.id, w.remote++);
    if (random() < 0.6) db.prepare('INSERT INTO copy_checks (entry_id, full_hash, size, mtime, checked_at, corrupt) VALUES (?, ?, ?, ?, ?, 0)').run(id, c.fullHash, c.size, 1000 + step, Date.now());
  } else if (r < 0.4) {
    store.deleteSubtree(file().id);
  } else if (r < 0.5) {
    db.prepare('UPDATE entries SET mtime = mtime + 1 WHERE id = ?').run(file().id);
  } else if (r < 0.6) {
    const f = file();
    const c = w.contents.find((x) => x.id === f.contentId);
    const corrupt = random() < 0.2 ? 1 : 0;
    const hash = random() < 0.1 || !c ? 'ff'.repeat(32) : c.fullHash;
    db.prepare('INSERT OR REPLACE INTO copy_checks (entry_id, full_hash, size, mtime, checked_at, corrupt) VALUES (?, ?, ?, ?, ?, ?)').run(f.id, hash, f.size, f.mtime, Date.now(), corrupt);
  } else if (r < 0.65) {
    db.prepare('DELETE FROM copy_checks WHERE entry_id = ?').run(file().id);
  } else if (r < 0.7) {
    const c = pick(w.contents);
    db.prepare('UPDATE content_identities SET full_hash = ? WHERE id = ?').run(random() < 0.5 ? null : c.fullHash, c.id);
  } else if (r < 0.8) {
    const c = pick(w.contents);
    db.prepare('UPDATE entries SET content_id = ?, size = ? WHERE id = ?').run(c.id, c.size, file().id);
  } else if (r < 0.87) {
    new TagStore(db, w.library.device.id).add(file(), ['vault']);
  } else if (r < 0.92) {
    const f = file();
    const l = w.locations.find((x) => x.id === f.locationId)!;
    store.move(f.id, pick(l.folders), `${f.name}m`);
  } else {
    db.prepare('UPDATE entries SET content_id = NULL WHERE id = ?').run(file().id);
  }
}

/** What status and at-risk must say, counted from the files themselves. */
function expected(g: Guardian, w: World, untrusted: Set<string>, stale: Set<string>) {
  const db = w.library.db;
  const store = new EntryStore(db);
  const rows = db
    .prepare(`SELECT e.id, e.content_id AS contentId, e.device_id AS deviceId, e.location_id AS locationId, e.size, CASE WHEN ${VERIFIED} THEN 1 ELSE 0 END AS verified
              FROM entries e LEFT JOIN copy_checks k ON k.entry_id = e.id WHERE e.kind = 'file' AND e.content_id IS NOT NULL ORDER BY e.id`)
    .all() as Array<{ id: number; contentId: string; deviceId: string; locationId: number; size: number; verified: number }>;
  const byContent = new Map<string, typeof rows>();
  for (const r of rows) byContent.set(r.contentId, [...(byContent.get(r.contentId) ?? []), r]);
  const contents = [...byContent].map(([contentId, files]) => {
    const holders = new Set(files.map((f) => f.deviceId));
    const count: CopyCount = { devices: holders.size, trusted: 0, fresh: 0, counting: 0 };
    for (const d of holders) {
      if (untrusted.has(d)) continue;
      count.trusted++;
      if (stale.has(d)) continue;
      count.fresh++;
      if (files.some((f) => f.deviceId === d && f.verified)) count.counting++;
    }
    const wanted = Math.max(...files.map((f) => g.wanted(store.get(f.id) as Entry)));
    return { contentId, files, count, wanted, size: Math.max(...files.map((f) => f.size)), risk: riskOf(count, wanted, 30) };
  });
  const atRisk = contents.filter((c) => c.risk).sort((x, y) => x.count.counting - y.count.counting || y.wanted - y.count.counting - (x.wanted - x.count.counting) || y.size - x.size || (x.contentId < y.contentId ? 1 : -1));
  const byReason: Record<string, number> = {};
  for (const c of atRisk) byReason[c.risk!.code] = (byReason[c.risk!.code] ?? 0) + 1;
  const atRiskFilesByLocation = new Map<number, number>();
  for (const c of atRisk) for (const f of c.files) atRiskFilesByLocation.set(f.locationId, (atRiskFilesByLocation.get(f.locationId) ?? 0) + 1);
  const byCopies = new Map<number, number>();
  for (const c of contents) byCopies.set(Math.min(c.count.counting, 3), (byCopies.get(Math.min(c.count.counting, 3)) ?? 0) + c.files.length);
  return {
    order: atRisk.map((c) => c.contentId),
    totals: { contents: atRisk.length, files: atRisk.reduce((n, c) => n + c.files.length, 0), bytes: atRisk.reduce((n, c) => n + c.size, 0), byReason },
    byCopies: [...byCopies].sort((a, b) => a[0] - b[0]).map(([copies, files]) => ({ copies, files })),
    atRiskFilesByLocation,
  };
}

const SUMMARY_TABLES = ['guardian_location_copies', 'guardian_contents', 'guardian_signatures', 'guardian_location_signatures'];

function dumpSummary(library: Library): Record<string, unknown[]> {
  return Object.fromEntries(SUMMARY_TABLES.map((name) => [name, library.db.prepare(`SELECT * FROM ${name} ORDER BY 1, 2, 3`).safeIntegers(true).raw().all()]));
}

t.test('status and at-risk from the summary equal a count from the files, through 400 random changes', async (t) => {
  const w = makeWorld(t);
  const db = w.library.db;
  const g = new Guardian(db, w.library.device.id);
  g.settings.setPolicy({ kind: 'library' }, 2);
  g.settings.setPolicy({ kind: 'tag', tag: 'vault' }, 3);
  g.settings.setPolicy({ kind: 'path', deviceId: w.devices[1]!.id, location: 'backup', path: 'keep' }, 1);
  g.settings.setPolicy({ kind: 'path', deviceId: w.devices[0]!.id, location: 'photos', path: 'keep' }, 3);
  const random = seededRandom(5);
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 10; i++) change(w, random, round * 10 + i);
    const untrusted = new Set(random() < 0.3 ? [w.devices[2]!.id] : []);
    g.settings.setTrust(w.devices[2]!.id, untrusted.size === 0);
    const staleAt = random() < 0.3 ? Date.now() - 40 * 86_400_000 : Date.now();
    db.prepare('UPDATE devices SET last_seen = ?, created_at = ?, paired_at = ? WHERE id = ?').run(staleAt, staleAt, staleAt, w.devices[1]!.id);
    const stale = new Set(staleAt < Date.now() - 86_400_000 ? [w.devices[1]!.id] : []);

    const want = expected(g, w, untrusted, stale);
    const status = g.status();
    const { items, total } = g.atRisk();
    const got = {
      order: items.map((i) => i.contentId),
      totals: { contents: status.atRisk.contents, files: status.atRisk.files, bytes: status.atRisk.bytes, byReason: status.atRisk.byReason },
      byCopies: status.byCopies.map((b) => ({ copies: b.copies, files: b.files })),
      atRiskFilesByLocation: new Map(status.locations.filter((l) => l.atRiskFiles > 0).map((l) => [db.prepare('SELECT l.id FROM locations l JOIN devices d ON d.id = l.device_id WHERE d.slug = ? AND l.name = ?').pluck().get(l.device, l.location) as number, l.atRiskFiles])),
    };
    t.same({ ...got, total, atRiskFilesByLocation: [...got.atRiskFilesByLocation].sort() }, { ...want, total: want.order.length, atRiskFilesByLocation: [...want.atRiskFilesByLocation].sort() }, `round ${round}: status and at-risk from the summary equal the count from the files`);
    const files = g.atRiskFiles(1000);
    const wantFiles = want.order.flatMap((c) => db.prepare("SELECT id FROM entries WHERE content_id = ? AND kind = 'file' ORDER BY device_id, id").pluck().all(c) as number[]);
    t.same(files, wantFiles, `round ${round}: atRiskFiles lists the files of the contents at risk, in that order`);
  }
  t.ok(g.atRisk().total > 0 && g.status().byCopies.length > 1, 'the rounds ended with content at risk and content safe (the test saw both)');

  // The kept tables equal a rebuild from nothing.
  const kept = dumpSummary(w.library);
  db.exec(`${SUMMARY_TABLES.map((n) => `DELETE FROM ${n};`).join(' ')} INSERT OR IGNORE INTO guardian_dirty SELECT content_id FROM entries WHERE content_id IS NOT NULL`);
  new CopySummary(db).flush();
  t.same(dumpSummary(w.library), kept, 'the summary kept change by change equals one built from scratch');
});

t.test('a flush in chunks, and nothing left dirty after a query', async (t) => {
  const w = makeWorld(t);
  const db = w.library.db;
  const random = seededRandom(9);
  for (let i = 0; i < 200; i++) change(w, random, i);
  const summary = new CopySummary(db);
  t.ok(summary.pending() > 10, `${summary.pending()} contents dirty after 200 changes`);
  const left = summary.flush(5);
  t.equal(left, summary.pending(), 'flush(n) says how many stay dirty');
  t.ok(left > 0, 'a chunk of 5 leaves the rest');
  summary.flushInChunks(3);
  t.equal(summary.pending(), 0, 'flushInChunks brings every content up to date');
  change(w, random, 1000);
  new Guardian(db, w.library.device.id).status();
  t.equal(summary.pending(), 0, 'status brings the summary up to date before it counts');
  t.same([...summary.deviceBits().values()].sort(), [0, 1, 2], 'the three devices with locations have bits 0, 1, 2');
});
