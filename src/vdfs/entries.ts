// The entries of a library and their closure table. Every change here keeps
// entry_closure exact: insert adds a node's ancestor rows, move re-links a whole
// subtree, delete removes a subtree with its rows. Callers group calls in transactions.
// entry_closure is keyed by ancestor only (subtrees); the way up from a node follows
// parent_id, which saves an index as big as the table itself. insert also adds the name
// to the search index (see migrations.ts for why that is not a trigger).
// Every change to an entry of this device also goes into index_outbox, in the caller's
// transaction, for the device's log (replication/device-log.ts): whatever process makes a
// change, it reaches peers. Rows of peers' devices (the mirror) are not captured.
import type { Statement } from 'better-sqlite3';
import { perConnection, type Db } from './db/database.js';

export type EntryKind = 'file' | 'dir' | 'symlink';

export interface Entry {
  id: number;
  deviceId: string;
  locationId: number;
  parentId: number | null;
  name: string;
  kind: EntryKind;
  size: number;
  mtime: number;
  inode: number;
  mode: number;
  contentId: string | null;
  aggregateSize: number;
}

export interface EntryFields {
  name: string;
  kind: EntryKind;
  size: number;
  mtime: number;
  inode: number;
  mode: number;
}

interface EntryRow {
  id: number;
  device_id: string;
  location_id: number;
  parent_id: number | null;
  name: string;
  kind: EntryKind;
  size: number;
  mtime: number;
  inode: number;
  mode: number;
  content_id: string | null;
  aggregate_size: number;
}

export function toEntry(row: EntryRow): Entry {
  return {
    id: row.id,
    deviceId: row.device_id,
    locationId: row.location_id,
    parentId: row.parent_id,
    name: row.name,
    kind: row.kind,
    size: row.size,
    mtime: row.mtime,
    inode: row.inode,
    mode: row.mode,
    contentId: row.content_id,
    aggregateSize: row.aggregate_size,
  };
}

/** Deeper than any real path (PATH_MAX is 4096): a bound that keeps a corrupt parent loop finite. */
const MAX_DEPTH = 4096;

/** CTE `up(id, depth)`: the entry `start` (at depth `base`) and every ancestor above it, via parent_id. */
const UP_FROM = (start: string, base: number) => `up(id, depth) AS (
    SELECT id, ${base} FROM entries WHERE id = ${start}
    UNION ALL
    SELECT e.parent_id, up.depth + 1 FROM up JOIN entries e ON e.id = up.id
    WHERE e.parent_id IS NOT NULL AND up.depth < ${MAX_DEPTH})`;

/** CTE `up(id, depth)`: the strict ancestors of `start` (its parent at depth 1 and up). */
const UP_FROM_PARENT_OF = (start: string) => `up(id, depth) AS (
    SELECT parent_id, 1 FROM entries WHERE id = ${start} AND parent_id IS NOT NULL
    UNION ALL
    SELECT e.parent_id, up.depth + 1 FROM up JOIN entries e ON e.id = up.id
    WHERE e.parent_id IS NOT NULL AND up.depth < ${MAX_DEPTH})`;

/** Deeper chains than this go through the recursive insert (statements are made per depth). */
const CLOSURE_VALUES_MAX = 64;

/** Columns of an 'entry' row of index_outbox, in this order (see migrations.ts, version 5). */
const OUTBOX_ENTRY_COLUMNS = 'op, id, location_id, parent_id, name, kind, size, mtime, mode, content_id';

/** What EntryStore runs, by name. */
const STATEMENTS = {
  get: 'SELECT * FROM entries WHERE id = ?',
  child: 'SELECT * FROM entries WHERE parent_id = ? AND name = ?',
  children: 'SELECT * FROM entries WHERE parent_id = ? ORDER BY name',
  childrenBelow: `SELECT id, name, kind, size, mtime, inode, mode, content_id, aggregate_size
                  FROM entries WHERE parent_id = ?`,
  insert: `INSERT INTO entries (device_id, location_id, parent_id, name, kind, size, mtime, inode, mode, aggregate_size)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  searchInsert: 'INSERT INTO search (rowid, name) VALUES (?, ?)',
  // OR FAIL (a new id has no rows to conflict with) spares the statement savepoint
  // that would make FTS5 flush its pending terms on every insert.
  closureOfNew: `WITH RECURSIVE ${UP_FROM('@id', 0)}
                 INSERT OR FAIL INTO entry_closure (ancestor, descendant, depth) SELECT id, @id, depth FROM up`,
  update: 'UPDATE entries SET kind = ?, size = ?, mtime = ?, inode = ?, mode = ?, content_id = ? WHERE id = ?',
  rename: 'UPDATE entries SET parent_id = ?, name = ? WHERE id = ?',
  // Rows linking a subtree to the ancestors above its top (those outside the subtree).
  unlinkOuter: `WITH RECURSIVE ${UP_FROM_PARENT_OF('@id')}
                DELETE FROM entry_closure
                WHERE ancestor IN (SELECT id FROM up)
                  AND descendant IN (SELECT descendant FROM entry_closure WHERE ancestor = @id)`,
  linkUnder: `WITH RECURSIVE ${UP_FROM('@parent', 0)}
              INSERT INTO entry_closure (ancestor, descendant, depth)
              SELECT up.id, d.descendant, up.depth + d.depth + 1
              FROM up, entry_closure d
              WHERE d.ancestor = @id`,
  deleteEntries: 'DELETE FROM entries WHERE id IN (SELECT descendant FROM entry_closure WHERE ancestor = ?)',
  // After unlinkOuter: what is left of the subtree's rows is keyed by its own nodes.
  deleteInnerClosure: `DELETE FROM entry_closure WHERE ancestor IN (SELECT descendant FROM entry_closure WHERE ancestor = ?)`,
  deleteTags: 'DELETE FROM entry_tags WHERE entry_id IN (SELECT descendant FROM entry_closure WHERE ancestor = ?)',
  countSubtree: 'SELECT count(*) FROM entry_closure WHERE ancestor = ?',
  ancestors: `WITH RECURSIVE ${UP_FROM('?', 0)}
              SELECT e.* FROM up JOIN entries e ON e.id = up.id ORDER BY up.depth DESC`,
  ancestorIds: `WITH RECURSIVE ${UP_FROM('?', 0)} SELECT id FROM up ORDER BY depth DESC`,
  ancestorNames: `WITH RECURSIVE ${UP_FROM('?', 0)}
                  SELECT e.name FROM up JOIN entries e ON e.id = up.id ORDER BY up.depth DESC`,
  addAggregate: `WITH RECURSIVE ${UP_FROM_PARENT_OF('@id')}
                 UPDATE entries SET aggregate_size = aggregate_size + @delta WHERE id IN (SELECT id FROM up)`,
  setAggregate: 'UPDATE entries SET aggregate_size = ? WHERE id = ? AND aggregate_size != ?',
  childrenAggregate: `SELECT coalesce(sum(CASE kind WHEN 'dir' THEN aggregate_size WHEN 'file' THEN size ELSE 0 END), 0)
                       FROM entries WHERE parent_id = ?`,
  setContent: 'UPDATE entries SET content_id = ? WHERE id = ?',
  withContent: 'SELECT * FROM entries WHERE content_id = ? ORDER BY id',
  byInode: 'SELECT * FROM entries WHERE location_id = ? AND inode = ?',
  byRemoteId: 'SELECT * FROM entries WHERE device_id = ? AND remote_id = ?',
  // byte_kind: the kind its content's bytes say, when this library knows (migration 17).
  insertMirrored: `INSERT INTO entries (device_id, location_id, parent_id, name, kind, size, mtime, inode, mode, content_id, aggregate_size, remote_id, byte_kind)
                   VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 0, ?, (SELECT kind_class FROM content_extracts WHERE content_id = ?))`,
  markCopyChanged: 'INSERT OR IGNORE INTO guardian_dirty (content_id) VALUES (?)',
  // OR FAIL for the reason given at closureOfNew: no statement savepoint.
  outboxNew: `INSERT INTO index_outbox (${OUTBOX_ENTRY_COLUMNS}) VALUES ('entry', ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
  outboxRow: `INSERT OR FAIL INTO index_outbox (${OUTBOX_ENTRY_COLUMNS})
              SELECT 'entry', id, location_id, parent_id, name, kind, size, mtime, mode, content_id
              FROM entries WHERE id = ? AND device_id = ?`,
  outboxTombstone: `INSERT OR FAIL INTO index_outbox (op, id) SELECT 'tombstone', id FROM entries WHERE id = ? AND device_id = ?`,
} satisfies Record<string, string>;

type StatementName = keyof typeof STATEMENTS;

interface PreparedStatements {
  byName: Map<StatementName, Statement>;
  /** Multi-row closure inserts, by row count. */
  closureInserts: Statement[];
  localDevice: Statement;
}

/**
 * EntryStore's statements, per connection, each prepared on first use: the watcher, the
 * extraction and the indexer make a store per change, and preparing its 30 statements
 * against this schema took 10-20 ms of the main thread each time, while a command uses few
 * of them (preparing all took 2 ms of `sd ls`). None is iterated, so the stores of one
 * connection can share them.
 */
const statementsOf = perConnection((db): PreparedStatements => ({ byName: new Map(), closureInserts: [], localDevice: db.prepare('SELECT id FROM devices WHERE is_local = 1').pluck() }));

export class EntryStore {
  private readonly prepared: Map<StatementName, Statement>;
  private readonly closureInserts: Statement[];
  /** The device whose changes go to the outbox (this library's own). */
  private readonly localDeviceId: string | undefined;

  constructor(readonly db: Db) {
    const made = statementsOf(db);
    this.prepared = made.byName;
    this.closureInserts = made.closureInserts;
    this.localDeviceId = made.localDevice.get() as string | undefined;
  }

  /** A statement of STATEMENTS, prepared on first use (a command uses few of them; preparing all took 2 ms). */
  private s(name: StatementName): Statement {
    let statement = this.prepared.get(name);
    if (!statement) this.prepared.set(name, (statement = this.db.prepare(STATEMENTS[name])));
    return statement;
  }

  get(id: number): Entry | undefined {
    const row = this.s('get').get(id) as EntryRow | undefined;
    return row && toEntry(row);
  }

  child(parentId: number, name: string): Entry | undefined {
    const row = this.s('child').get(parentId, name) as EntryRow | undefined;
    return row && toEntry(row);
  }

  children(parentId: number): Entry[] {
    return (this.s('children').all(parentId) as EntryRow[]).map(toEntry);
  }

  /**
   * The children of a folder (in no particular order), for a caller that walks many
   * folders: device and location come from the parent, which they always share.
   */
  childrenOf(parent: Entry): Entry[] {
    const rows = this.s('childrenBelow').raw(true).all(parent.id) as Array<[number, string, EntryKind, number, number, number, number, string | null, number]>;
    const { deviceId, locationId, id: parentId } = parent;
    return rows.map(([id, name, kind, size, mtime, inode, mode, contentId, aggregateSize]) => (
      { id, deviceId, locationId, parentId, name, kind, size, mtime, inode, mode, contentId, aggregateSize }
    ));
  }

  withContent(contentId: string): Entry[] {
    return (this.s('withContent').all(contentId) as EntryRow[]).map(toEntry);
  }

  byInode(locationId: number, inode: number): Entry[] {
    return (this.s('byInode').all(locationId, inode) as EntryRow[]).map(toEntry);
  }

  /** Inserts an entry under parentId (null for a location root) with its closure rows. */
  insert(deviceId: string, locationId: number, parentId: number | null, f: EntryFields, aggregateSize = 0): number {
    const id = this.insertRow(deviceId, locationId, parentId, f, aggregateSize);
    this.s('closureOfNew').run({ id });
    return id;
  }

  /**
   * insert for a caller that walks down from the root and so knows the way: `chain` holds
   * the ids from the location root down to the new entry's parent. Saves looking them up.
   */
  insertBelow(chain: readonly number[], deviceId: string, locationId: number, f: EntryFields): number {
    const parentId = chain[chain.length - 1];
    if (parentId === undefined || chain.length >= CLOSURE_VALUES_MAX) return this.insert(deviceId, locationId, parentId ?? null, f);
    const id = this.insertRow(deviceId, locationId, parentId, f, 0);
    const rows: number[] = [id, id, 0];
    for (let i = 0; i < chain.length; i++) rows.push(chain[i]!, id, chain.length - i);
    this.closureValues(chain.length + 1).run(rows);
    return id;
  }

  private insertRow(deviceId: string, locationId: number, parentId: number | null, f: EntryFields, aggregateSize: number): number {
    const id = Number(this.s('insert').run(deviceId, locationId, parentId, f.name, f.kind, f.size, f.mtime, f.inode, f.mode, aggregateSize).lastInsertRowid);
    this.s('searchInsert').run(id, f.name);
    if (deviceId === this.localDeviceId) this.s('outboxNew').run(id, locationId, parentId, f.name, f.kind, f.size, f.mtime, f.mode);
    return id;
  }

  /** `INSERT OR FAIL ... VALUES` of n closure rows (one statement per depth, made once). */
  private closureValues(n: number): Statement {
    let stmt = this.closureInserts[n];
    if (!stmt) {
      const values = Array.from({ length: n }, () => '(?, ?, ?)').join(', ');
      stmt = this.closureInserts[n] = this.db.prepare(`INSERT OR FAIL INTO entry_closure (ancestor, descendant, depth) VALUES ${values}`);
    }
    return stmt;
  }

  /** Rewrites an entry's metadata; contentId null clears a stale content id. */
  update(id: number, f: Omit<EntryFields, 'name'>, contentId: string | null): void {
    this.s('update').run(f.kind, f.size, f.mtime, f.inode, f.mode, contentId, id);
    this.capture(id);
  }

  setContentId(id: number, contentId: string | null): void {
    this.s('setContent').run(contentId, id);
    this.capture(id);
  }

  /** Queues the entry as it is now for this device's log, if it is this device's. */
  private capture(id: number): void {
    if (this.localDeviceId !== undefined) this.s('outboxRow').run(id, this.localDeviceId);
  }

  /** The mirrored entry holding a peer's entry id (see replication/mirror.ts). */
  byRemoteId(deviceId: string, remoteId: number): Entry | undefined {
    const row = this.s('byRemoteId').get(deviceId, remoteId) as EntryRow | undefined;
    return row && toEntry(row);
  }

  /**
   * Inserts a peer's entry into this library's mirror of that device: `remoteId` is the
   * peer's own id of it, `chain` the ids from the location root down to its parent (empty
   * for a root). Closure and search rows are made here, as for any insert.
   */
  insertMirrored(deviceId: string, locationId: number, chain: readonly number[], f: Omit<EntryFields, 'inode'>, contentId: string | null, remoteId: number): number {
    const parentId = chain[chain.length - 1] ?? null;
    const id = Number(this.s('insertMirrored').run(deviceId, locationId, parentId, f.name, f.kind, f.size, f.mtime, f.mode, contentId, remoteId, contentId).lastInsertRowid);
    this.s('searchInsert').run(id, f.name);
    // The guardian's copy summary counts this copy at its next update (see migration 14: no insert trigger).
    if (contentId !== null && f.kind === 'file') this.s('markCopyChanged').run(contentId);
    if (chain.length === 0 || chain.length >= CLOSURE_VALUES_MAX) {
      this.s('closureOfNew').run({ id });
    } else {
      const rows: number[] = [id, id, 0];
      for (let i = 0; i < chain.length; i++) rows.push(chain[i]!, id, chain.length - i);
      this.closureValues(chain.length + 1).run(rows);
    }
    return id;
  }

  /** Moves (and renames) an entry with its whole subtree under newParentId. */
  move(id: number, newParentId: number, newName: string): void {
    this.s('unlinkOuter').run({ id });
    this.s('linkUnder').run({ parent: newParentId, id });
    this.s('rename').run(newParentId, newName, id);
    this.capture(id);
  }

  /** Deletes an entry and everything below it; returns how many entries went. */
  deleteSubtree(id: number): number {
    const count = this.s('countSubtree').pluck().get(id) as number;
    // One tombstone for the subtree's root: a peer deletes the rest below it.
    if (this.localDeviceId !== undefined) this.s('outboxTombstone').run(id, this.localDeviceId);
    this.s('deleteTags').run(id);
    // The outer rows go first: finding the subtree's ancestors needs its top entry.
    this.s('unlinkOuter').run({ id });
    this.s('deleteEntries').run(id);
    this.s('deleteInnerClosure').run(id);
    return count;
  }

  /** The chain from the location root down to the entry itself. */
  ancestors(id: number): Entry[] {
    return (this.s('ancestors').all(id) as EntryRow[]).map(toEntry);
  }

  /** Ids from the location root down to the entry itself. */
  ancestorIds(id: number): number[] {
    return this.s('ancestorIds').pluck().all(id) as number[];
  }

  /** Path of an entry relative to its location root ('' for the root). */
  relativePath(id: number): string {
    return (this.s('ancestorNames').pluck().all(id) as string[]).slice(1).join('/');
  }

  /** Adds delta to the aggregate size of every ancestor of id (not id itself). */
  addToAncestors(id: number, delta: number): void {
    if (delta !== 0) this.s('addAggregate').run({ delta, id });
  }

  /** Sets a directory's aggregate size; returns whether it changed. */
  setAggregate(id: number, size: number): boolean {
    return this.s('setAggregate').run(size, id, size).changes > 0;
  }

  /** Sum of the sizes below a folder, from its children's sizes and aggregates. */
  childrenAggregate(id: number): number {
    return this.s('childrenAggregate').pluck().get(id) as number;
  }

  /** Resolves a path of names below a root entry, or undefined. */
  resolve(rootId: number, names: readonly string[]): Entry | undefined {
    let current = this.get(rootId);
    for (const name of names) {
      if (!current) return undefined;
      current = this.child(current.id, name);
    }
    return current;
  }
}
