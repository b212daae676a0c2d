// This device's index changes on their way to its log: index_outbox rows (written by
// EntryStore, ContentStore and locations.ts with each change) read back in order, and a
// snapshot of the whole local index for a log that starts after the library did.
import { perConnection, type Db } from './db/database.js';
import type { EntryKind } from './entries.js';
import { ExtractStore, queueExtractsOf, type ContentExtract } from './content/extracts.js';

/** A change of the index of one device, in the terms its peers apply it in (ids are the owner's). */
export type IndexChange =
  | { op: 'location'; id: number; name: string; rootPath: string; indexMode: string }
  | { op: 'unlocation'; id: number }
  /** An entry as it is now: added, changed, moved or renamed. parentId null: a location root. */
  | { op: 'entry'; id: number; locationId: number; parentId: number | null; name: string; kind: EntryKind; size: number; mtime: number; mode: number; contentId: string | null }
  /** An entry and everything below it is gone. */
  | { op: 'tombstone'; id: number }
  | { op: 'content'; contentId: string; size: number; sampledHash: string }
  | { op: 'fullHash'; contentId: string; fullHash: string }
  /** A tag set or removed on any device's entry, by this device (shared data, HLC last-writer-wins). */
  | { op: 'tag'; device: string; entry: number; tag: string; present: boolean; hlc: string }
  /** A metadata key set (value) or removed (null) on any device's entry, by this device (shared data, HLC last-writer-wins). */
  | { op: 'meta'; device: string; entry: number; key: string; value: string | null; hlc: string }
  /** A check of one of this device's files: its full BLAKE3 at (size, mtime), or corrupt (guardian/copy-checks). */
  | { op: 'check'; id: number; fullHash: string; size: number; mtime: number; corrupt: boolean }
  /** A guardian setting (policy, trust) made by this device (shared data, HLC last-writer-wins). */
  | { op: 'guardian'; kind: string; key: string; value: string | null; hlc: string }
  /** Free and total bytes of the file system one of this device's locations is on, measured at `at` (guardian/space). */
  | { op: 'space'; id: number; free: number; total: number; at: number }
  /** What a content's bytes say (content/extracts.ts), extracted by this device from its own copy. */
  | ({ op: 'extract' } & ContentExtract);

export interface QueuedChange {
  seq: number;
  change: IndexChange;
}

interface OutboxRow {
  seq: number;
  op: string;
  id: number | null;
  location_id: number | null;
  parent_id: number | null;
  name: string | null;
  kind: EntryKind | null;
  size: number | null;
  mtime: number | null;
  mode: number | null;
  content_id: string | null;
  extra: string | null;
}

function toChange(r: OutboxRow, extracts: () => ExtractStore): IndexChange {
  switch (r.op) {
    case 'entry':
      return { op: 'entry', id: r.id!, locationId: r.location_id!, parentId: r.parent_id, name: r.name!, kind: r.kind!, size: r.size!, mtime: r.mtime!, mode: r.mode!, contentId: r.content_id };
    case 'tombstone':
      return { op: 'tombstone', id: r.id! };
    case 'location': {
      const x = JSON.parse(r.extra!) as { name: string; rootPath: string; indexMode: string };
      return { op: 'location', id: r.id!, name: x.name, rootPath: x.rootPath, indexMode: x.indexMode };
    }
    case 'unlocation':
      return { op: 'unlocation', id: r.id! };
    case 'content': {
      const x = JSON.parse(r.extra!) as { size?: number; sampledHash?: string; fullHash?: string };
      if (x.fullHash !== undefined) return { op: 'fullHash', contentId: r.content_id!, fullHash: x.fullHash };
      return { op: 'content', contentId: r.content_id!, size: x.size!, sampledHash: x.sampledHash! };
    }
    case 'meta': {
      const x = JSON.parse(r.extra!) as { target: { device: string; entry: number }; key: string; value: string | null; hlc: string };
      return { op: 'meta', device: x.target.device, entry: x.target.entry, key: x.key, value: x.value, hlc: x.hlc };
    }
    case 'tag': {
      const x = JSON.parse(r.extra!) as { target: { device: string; entry: number }; tag: string; present: boolean; hlc: string };
      return { op: 'tag', device: x.target.device, entry: x.target.entry, tag: x.tag, present: x.present, hlc: x.hlc };
    }
    case 'check': {
      const x = JSON.parse(r.extra!) as { fullHash: string; size: number; mtime: number; corrupt: boolean };
      return { op: 'check', id: r.id!, fullHash: x.fullHash, size: x.size, mtime: x.mtime, corrupt: x.corrupt };
    }
    case 'guardian': {
      const x = JSON.parse(r.extra!) as { kind: string; key: string; value: string | null; hlc: string };
      return { op: 'guardian', kind: x.kind, key: x.key, value: x.value, hlc: x.hlc };
    }
    case 'space': {
      const x = JSON.parse(r.extra!) as { free: number; total: number; at: number };
      return { op: 'space', id: r.id!, free: x.free, total: x.total, at: x.at };
    }
    case 'extract': {
      // Read now (see ExtractStore.record). Extracts are never deleted; were one gone, a
      // version 0 failure goes in its place, which any real extract a peer has or gets beats.
      const x = extracts().get(r.content_id!) ?? { contentId: r.content_id!, version: 0, status: 'failed', mime: null, text: null, meta: { error: 'no longer known' } };
      return { op: 'extract', ...x };
    }
    default:
      throw new Error(`index_outbox row ${r.seq} has the unknown op '${r.op}'`);
  }
}

/**
 * The pump's statements, prepared once per connection: it runs every 50 ms, and preparing
 * against this schema cost ~0.6 ms a statement each time (ten idle mounts: a tenth of a
 * core). Each is run to its end inside one call, so the callers can share them.
 */
const pumpStatements = perConnection((db) => ({
  after: db.prepare('SELECT * FROM index_outbox WHERE seq > ? ORDER BY seq LIMIT ?'),
  dropAll: db.prepare('DELETE FROM index_outbox WHERE seq <= ?'),
  // The oldest `limit` of them: a million rows at once held the library's write lock 0.5 s.
  dropOldest: db.prepare('DELETE FROM index_outbox WHERE seq IN (SELECT seq FROM index_outbox WHERE seq <= ? ORDER BY seq LIMIT ?)'),
}));

/** Queued changes read at once are cut at about this many bytes (extracts carry text). */
const QUEUED_READ_BYTES = 16 * 1024 * 1024;

/** Up to `limit` queued changes after `afterSeq`, oldest first (fewer when they are big). */
export function queuedChanges(db: Db, afterSeq: number, limit: number): QueuedChange[] {
  const changes: QueuedChange[] = [];
  let bytes = 0;
  // Made at the first extract: the log pumps every 50 ms, most often with none.
  let store: ExtractStore | undefined;
  const extracts = () => (store ??= new ExtractStore(db, ''));
  for (const r of pumpStatements(db).after.iterate(afterSeq, limit) as Iterable<OutboxRow>) {
    const change = toChange(r, extracts);
    changes.push({ seq: r.seq, change });
    bytes += change.op === 'extract' ? (change.text?.length ?? 0) : (r.extra?.length ?? 0);
    if (bytes >= QUEUED_READ_BYTES) break;
  }
  return changes;
}

/** Forgets the queued changes up to and including seq (they are in the log). */
export function dropQueuedThrough(db: Db, seq: number, limit?: number): number {
  const s = pumpStatements(db);
  return limit === undefined ? s.dropAll.run(seq).changes : s.dropOldest.run(seq, limit).changes;
}

export function queuedCount(db: Db): number {
  return db.prepare('SELECT count(*) FROM index_outbox').pluck().get() as number;
}

/** The newest queued change's seq (0: none ever queued, or all dropped and none since). */
export function outboxLastSeq(db: Db): number {
  return db.prepare('SELECT coalesce(max(seq), 0) FROM index_outbox').pluck().get() as number;
}

/**
 * The whole index of a device as changes that rebuild it from nothing: locations, then each
 * location's entries a level at a time (every parent before its children), then content
 * identities, registers, checks, settings and free space. One change at a time: at a
 * million entries the picture as an array took 300 MB and 2.6 s before the mount could
 * start. The caller holds one read transaction around the whole walk (and reads
 * outboxLastSeq in it), on a connection nothing else uses while the generator is open:
 * each step keeps a statement open on it.
 */
export function* snapshotChanges(db: Db, deviceId: string): Generator<IndexChange> {
  const locations = db.prepare('SELECT id, name, root_path, index_mode, root_entry_id FROM locations WHERE device_id = ? ORDER BY id')
    .all(deviceId) as Array<{ id: number; name: string; root_path: string; index_mode: string; root_entry_id: number | null }>;
  // A level per pass over the location's closure rows, in their key order (no sort: sorting
  // a million rows by depth held them all in SQLite's memory).
  const level = db.prepare(`SELECT e.id, e.location_id, e.parent_id, e.name, e.kind, e.size, e.mtime, e.mode, e.content_id
                            FROM entry_closure c JOIN entries e ON e.id = c.descendant
                            WHERE c.ancestor = ? AND c.depth = ?`).raw(true);
  for (const l of locations) {
    yield { op: 'location', id: l.id, name: l.name, rootPath: l.root_path, indexMode: l.index_mode };
    if (l.root_entry_id === null) continue;
    for (let depth = 0, found = true; found; depth++) {
      found = false;
      for (const r of level.iterate(l.root_entry_id, depth) as Iterable<[number, number, number | null, string, EntryKind, number, number, number, string | null]>) {
        found = true;
        const [id, locationId, parentId, name, kind, size, mtime, mode, contentId] = r;
        yield { op: 'entry', id, locationId, parentId, name, kind, size, mtime, mode, contentId };
      }
    }
  }
  // Each identity looked up by the entries index, rather than an IN list of every id.
  const contents = db.prepare(`SELECT id, size, sampled_hash, full_hash FROM content_identities ci
                               WHERE EXISTS (SELECT 1 FROM entries e WHERE e.content_id = ci.id AND e.device_id = ?)`);
  for (const x of contents.iterate(deviceId) as Iterable<{ id: string; size: number; sampled_hash: string; full_hash: string | null }>) {
    yield { op: 'content', contentId: x.id, size: x.size, sampledHash: x.sampled_hash };
    if (x.full_hash) yield { op: 'fullHash', contentId: x.id, fullHash: x.full_hash };
  }
  // Tag registers whose newest operation this device made (an HLC stamp ends with its device).
  const tags = db.prepare(`SELECT device_id, entry_ref, tag, present, hlc FROM tag_ops WHERE hlc LIKE '%.' || ?`);
  for (const x of tags.iterate(deviceId) as Iterable<{ device_id: string; entry_ref: number; tag: string; present: number; hlc: string }>) {
    yield { op: 'tag', device: x.device_id, entry: x.entry_ref, tag: x.tag, present: x.present === 1, hlc: x.hlc };
  }
  const metas = db.prepare(`SELECT device_id, entry_ref, key, value, hlc FROM meta_ops WHERE hlc LIKE '%.' || ?`);
  for (const x of metas.iterate(deviceId) as Iterable<{ device_id: string; entry_ref: number; key: string; value: string | null; hlc: string }>) {
    yield { op: 'meta', device: x.device_id, entry: x.entry_ref, key: x.key, value: x.value, hlc: x.hlc };
  }
  const checks = db.prepare(`SELECT k.entry_id, k.full_hash, k.size, k.mtime, k.corrupt FROM copy_checks k JOIN entries e ON e.id = k.entry_id WHERE e.device_id = ?`);
  for (const x of checks.iterate(deviceId) as Iterable<{ entry_id: number; full_hash: string; size: number; mtime: number; corrupt: number }>) {
    yield { op: 'check', id: x.entry_id, fullHash: x.full_hash, size: x.size, mtime: x.mtime, corrupt: x.corrupt === 1 };
  }
  const settings = db.prepare(`SELECT kind, key, value, hlc FROM guardian_ops WHERE hlc LIKE '%.' || ?`);
  for (const x of settings.iterate(deviceId) as Iterable<{ kind: string; key: string; value: string | null; hlc: string }>) yield { op: 'guardian', ...x };
  const spaces = db.prepare(`SELECT s.location_id AS id, s.free_bytes AS free, s.total_bytes AS total, s.measured_at AS at FROM location_space s JOIN locations l ON l.id = s.location_id WHERE l.device_id = ?`);
  for (const x of spaces.iterate(deviceId) as Iterable<{ id: number; free: number; total: number; at: number }>) yield { op: 'space', ...x };
}

/**
 * The whole snapshot at once, with the outbox seq it covers (every queued change up to it
 * is in the picture), and the extracts queued after it (their text could be GBs: they go
 * to the log a block at a time). For small libraries and tests; a device log streams it.
 */
export function indexSnapshot(db: Db, deviceId: string): { lastSeq: number; changes: IndexChange[] } {
  return db.transaction(() => {
    const lastSeq = outboxLastSeq(db);
    const changes = [...snapshotChanges(db, deviceId)];
    queueExtractsOf(db, deviceId);
    return { lastSeq, changes };
  }).immediate();
}
