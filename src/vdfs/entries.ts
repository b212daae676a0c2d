// The entries of a library and their closure table. Every change here keeps
// entry_closure exact: insert adds a node's ancestor rows, move re-links a whole
// subtree, delete removes a subtree with its rows. Callers group calls in transactions.
import type { Statement } from 'better-sqlite3';
import type { Db } from './db/database.js';

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

export class EntryStore {
  private readonly s: Record<string, Statement>;

  constructor(readonly db: Db) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      get: p('SELECT * FROM entries WHERE id = ?'),
      child: p('SELECT * FROM entries WHERE parent_id = ? AND name = ?'),
      children: p('SELECT * FROM entries WHERE parent_id = ? ORDER BY name'),
      insert: p(`INSERT INTO entries (device_id, location_id, parent_id, name, kind, size, mtime, inode, mode, aggregate_size)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      closureSelf: p('INSERT INTO entry_closure (ancestor, descendant, depth) VALUES (?, ?, 0)'),
      closureFromParent: p(`INSERT INTO entry_closure (ancestor, descendant, depth)
                            SELECT ancestor, ?, depth + 1 FROM entry_closure WHERE descendant = ?`),
      update: p('UPDATE entries SET kind = ?, size = ?, mtime = ?, inode = ?, mode = ?, content_id = ? WHERE id = ?'),
      rename: p('UPDATE entries SET parent_id = ?, name = ? WHERE id = ?'),
      unlinkOuter: p(`DELETE FROM entry_closure
                      WHERE descendant IN (SELECT descendant FROM entry_closure WHERE ancestor = @id)
                        AND ancestor NOT IN (SELECT descendant FROM entry_closure WHERE ancestor = @id)`),
      linkUnder: p(`INSERT INTO entry_closure (ancestor, descendant, depth)
                    SELECT a.ancestor, d.descendant, a.depth + d.depth + 1
                    FROM entry_closure a, entry_closure d
                    WHERE a.descendant = ? AND d.ancestor = ?`),
      deleteEntries: p('DELETE FROM entries WHERE id IN (SELECT descendant FROM entry_closure WHERE ancestor = ?)'),
      deleteClosure: p(`DELETE FROM entry_closure WHERE descendant IN (SELECT descendant FROM entry_closure WHERE ancestor = ?)`),
      deleteTags: p('DELETE FROM entry_tags WHERE entry_id IN (SELECT descendant FROM entry_closure WHERE ancestor = ?)'),
      countSubtree: p('SELECT count(*) FROM entry_closure WHERE ancestor = ?'),
      ancestors: p(`SELECT e.* FROM entry_closure c JOIN entries e ON e.id = c.ancestor
                    WHERE c.descendant = ? ORDER BY c.depth DESC`),
      addAggregate: p(`UPDATE entries SET aggregate_size = aggregate_size + ?
                       WHERE id IN (SELECT ancestor FROM entry_closure WHERE descendant = ? AND depth > 0)`),
      setAggregate: p('UPDATE entries SET aggregate_size = ? WHERE id = ? AND aggregate_size != ?'),
      childrenAggregate: p(`SELECT coalesce(sum(CASE kind WHEN 'dir' THEN aggregate_size WHEN 'file' THEN size ELSE 0 END), 0)
                             FROM entries WHERE parent_id = ?`),
      setContent: p('UPDATE entries SET content_id = ? WHERE id = ?'),
      withContent: p('SELECT * FROM entries WHERE content_id = ? ORDER BY id'),
      byInode: p('SELECT * FROM entries WHERE location_id = ? AND inode = ?'),
    };
  }

  get(id: number): Entry | undefined {
    const row = this.s.get!.get(id) as EntryRow | undefined;
    return row && toEntry(row);
  }

  child(parentId: number, name: string): Entry | undefined {
    const row = this.s.child!.get(parentId, name) as EntryRow | undefined;
    return row && toEntry(row);
  }

  children(parentId: number): Entry[] {
    return (this.s.children!.all(parentId) as EntryRow[]).map(toEntry);
  }

  withContent(contentId: string): Entry[] {
    return (this.s.withContent!.all(contentId) as EntryRow[]).map(toEntry);
  }

  byInode(locationId: number, inode: number): Entry[] {
    return (this.s.byInode!.all(locationId, inode) as EntryRow[]).map(toEntry);
  }

  /** Inserts an entry under parentId (null for a location root) with its closure rows. */
  insert(deviceId: string, locationId: number, parentId: number | null, f: EntryFields, aggregateSize = 0): number {
    const id = Number(this.s.insert!.run(deviceId, locationId, parentId, f.name, f.kind, f.size, f.mtime, f.inode, f.mode, aggregateSize).lastInsertRowid);
    this.s.closureSelf!.run(id, id);
    if (parentId !== null) this.s.closureFromParent!.run(id, parentId);
    return id;
  }

  /** Rewrites an entry's metadata; contentId null clears a stale content id. */
  update(id: number, f: Omit<EntryFields, 'name'>, contentId: string | null): void {
    this.s.update!.run(f.kind, f.size, f.mtime, f.inode, f.mode, contentId, id);
  }

  setContentId(id: number, contentId: string | null): void {
    this.s.setContent!.run(contentId, id);
  }

  /** Moves (and renames) an entry with its whole subtree under newParentId. */
  move(id: number, newParentId: number, newName: string): void {
    this.s.unlinkOuter!.run({ id });
    this.s.linkUnder!.run(newParentId, id);
    this.s.rename!.run(newParentId, newName, id);
  }

  /** Deletes an entry and everything below it; returns how many entries went. */
  deleteSubtree(id: number): number {
    const count = this.s.countSubtree!.pluck().get(id) as number;
    this.s.deleteTags!.run(id);
    this.s.deleteEntries!.run(id);
    this.s.deleteClosure!.run(id);
    return count;
  }

  /** The chain from the location root down to the entry itself. */
  ancestors(id: number): Entry[] {
    return (this.s.ancestors!.all(id) as EntryRow[]).map(toEntry);
  }

  /** Path of an entry relative to its location root ('' for the root). */
  relativePath(id: number): string {
    return this.ancestors(id).slice(1).map((e) => e.name).join('/');
  }

  /** Adds delta to the aggregate size of every ancestor of id (not id itself). */
  addToAncestors(id: number, delta: number): void {
    if (delta !== 0) this.s.addAggregate!.run(delta, id);
  }

  /** Sets a directory's aggregate size; returns whether it changed. */
  setAggregate(id: number, size: number): boolean {
    return this.s.setAggregate!.run(size, id, size).changes > 0;
  }

  /** Sum of the sizes below a folder, from its children's sizes and aggregates. */
  childrenAggregate(id: number): number {
    return this.s.childrenAggregate!.pluck().get(id) as number;
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
