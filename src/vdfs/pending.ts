// Changes made in another device's tree (through the mount) that the device has not
// applied yet: the rows the mount overlays on that device's mirrored index until the
// change comes back in its log. The newest row for a path wins; a 'gone' or 'moved'
// row of a folder covers everything below it.
import path from 'node:path';
import type { Db } from './db/database.js';

export type PendingKind = 'file' | 'dir' | 'gone' | 'moved';

export interface PendingChange {
  id: number;
  deviceId: string;
  /** The location's name on that device. */
  location: string;
  /** Relative to the location, '/'-joined ('' is the location root). */
  path: string;
  kind: PendingKind;
  /** For 'moved': the path the entry had before (its attributes and bytes are read there). */
  source: string | null;
  mode: number;
  /** The job that applies it on the device; null while a new file is still being written. */
  jobId: number | null;
  /** Set when a new file's bytes are offered to the device (it fetches them by this id). */
  contentId: string | null;
  /** A new file: its copy replaces what the device has at its name (the name showed a file of the device), else keeps both. */
  overwrite: boolean;
  /** A new file whose staged bytes are still being fetched from the device (to change in place): incomplete, not to send. */
  fetching: boolean;
  createdAt: number;
}

interface Row {
  id: number;
  device_id: string;
  location: string;
  path: string;
  parent: string;
  kind: PendingKind;
  source: string | null;
  mode: number;
  job_id: number | null;
  content_id: string | null;
  overwrite: number;
  fetching: number;
  created_at: number;
}

function toChange(r: Row): PendingChange {
  return { id: r.id, deviceId: r.device_id, location: r.location, path: r.path, kind: r.kind, source: r.source, mode: r.mode, jobId: r.job_id, contentId: r.content_id, overwrite: r.overwrite === 1, fetching: r.fetching === 1, createdAt: r.created_at };
}

/** The folder a relative path is in ('' for the location root). */
export function parentOf(rel: string): string {
  const dir = path.posix.dirname(rel);
  return dir === '.' ? '' : dir;
}

/** What a path of a peer's tree looks like with the pending changes over it. */
export type Overlaid =
  /** No pending change touches it: the mirrored index answers, at `path` (a move may have renamed an ancestor). */
  | { kind: 'mirror'; path: string }
  | { kind: 'gone' }
  | { kind: 'file'; change: PendingChange }
  | { kind: 'dir'; change: PendingChange; path: string | null };

export class PendingStore {
  private readonly s;

  constructor(private readonly db: Db) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      insert: p(`INSERT INTO pending_changes (device_id, location, path, parent, kind, source, mode, job_id, overwrite, fetching, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      at: p('SELECT * FROM pending_changes WHERE device_id = ? AND location = ? AND path = ? AND id < ? AND coalesce(job_id, -1) != ? ORDER BY id DESC LIMIT 1'),
      children: p('SELECT * FROM pending_changes WHERE device_id = ? AND location = ? AND parent = ? ORDER BY id'),
      any: p('SELECT 1 FROM pending_changes WHERE device_id = ? AND location = ? LIMIT 1'),
      get: p('SELECT * FROM pending_changes WHERE id = ?'),
      byJob: p('SELECT * FROM pending_changes WHERE job_id = ? ORDER BY id'),
      byContent: p('SELECT * FROM pending_changes WHERE content_id = ? ORDER BY id DESC LIMIT 1'),
      setJob: p('UPDATE pending_changes SET job_id = ? WHERE id = ?'),
      setContent: p('UPDATE pending_changes SET content_id = ? WHERE id = ?'),
      setPath: p('UPDATE pending_changes SET path = ?, parent = ? WHERE id = ?'),
      setMode: p('UPDATE pending_changes SET mode = ? WHERE id = ?'),
      fetched: p('UPDATE pending_changes SET fetching = 0 WHERE id = ?'),
      files: p(`SELECT * FROM pending_changes WHERE kind = 'file' ORDER BY id`),
      remove: p('DELETE FROM pending_changes WHERE id = ?'),
      removeJob: p('DELETE FROM pending_changes WHERE job_id = ?'),
      all: p('SELECT * FROM pending_changes ORDER BY id'),
    };
  }

  add(change: { deviceId: string; location: string; path: string; kind: PendingKind; source?: string | null; mode?: number; jobId?: number | null; overwrite?: boolean; fetching?: boolean }): PendingChange {
    const now = Date.now();
    const id = Number(this.s.insert.run(change.deviceId, change.location, change.path, parentOf(change.path), change.kind, change.source ?? null, change.mode ?? 0, change.jobId ?? null, change.overwrite ? 1 : 0, change.fetching ? 1 : 0, now).lastInsertRowid);
    return this.get(id)!;
  }

  get(id: number): PendingChange | undefined {
    const row = this.s.get.get(id) as Row | undefined;
    return row && toChange(row);
  }

  /**
   * The newest change recorded at exactly this path (made before change `before`, when
   * given, and not by job `exceptJob`).
   */
  at(deviceId: string, location: string, rel: string, before = Number.MAX_SAFE_INTEGER, exceptJob = -2): PendingChange | undefined {
    const row = this.s.at.get(deviceId, location, rel, before, exceptJob) as Row | undefined;
    return row && toChange(row);
  }

  ofJob(jobId: number): PendingChange[] {
    return (this.s.byJob.all(jobId) as Row[]).map(toChange);
  }

  /** A staged file offered to a device under this content id. */
  byContent(contentId: string): PendingChange | undefined {
    const row = this.s.byContent.get(contentId) as Row | undefined;
    return row && toChange(row);
  }

  list(): PendingChange[] {
    return (this.s.all.all() as Row[]).map(toChange);
  }

  /** The new files pending, oldest first. */
  files(): PendingChange[] {
    return (this.s.files.all() as Row[]).map(toChange);
  }

  setJob(id: number, jobId: number | null): void {
    this.s.setJob.run(jobId, id);
  }

  setContentId(id: number, contentId: string): void {
    this.s.setContent.run(contentId, id);
  }

  setMode(id: number, mode: number): void {
    this.s.setMode.run(mode, id);
  }

  /** A new file's staged bytes are all fetched: from now on they are the user's to send. */
  fetched(id: number): void {
    this.s.fetched.run(id);
  }

  rename(id: number, rel: string): void {
    this.s.setPath.run(rel, parentOf(rel), id);
  }

  remove(id: number): void {
    this.s.remove.run(id);
  }

  removeJob(jobId: number): void {
    this.s.removeJob.run(jobId);
  }

  /**
   * Resolves a path of a peer's location through the pending changes, from the location
   * root down: a 'gone' folder hides what is below it, a 'moved' one sends the rest of the
   * path to where it came from, a new folder holds only what was made in it since.
   */
  resolve(deviceId: string, location: string, rel: readonly string[], before = Number.MAX_SAFE_INTEGER, exceptJob = -2): Overlaid {
    if (this.s.any.get(deviceId, location) === undefined) return { kind: 'mirror', path: rel.join('/') };
    // `mirrorPath` is where the path so far sits in the mirrored index (null: nowhere, a new folder).
    let mirrorPath: string | null = '';
    let last: Overlaid = { kind: 'mirror', path: '' };
    for (let i = 0; i < rel.length; i++) {
      const here = rel.slice(0, i + 1).join('/');
      const change = this.at(deviceId, location, here, before, exceptJob);
      const below: string | null = mirrorPath === null ? null : mirrorPath === '' ? rel[i]! : `${mirrorPath}/${rel[i]}`;
      if (!change) {
        if (below === null) return { kind: 'gone' };
        mirrorPath = below;
        last = { kind: 'mirror', path: below };
        continue;
      }
      if (change.kind === 'gone') return { kind: 'gone' };
      if (change.kind === 'file') {
        if (i !== rel.length - 1) return { kind: 'gone' };
        return { kind: 'file', change };
      }
      if (change.kind === 'dir') {
        mirrorPath = null;
        last = { kind: 'dir', change, path: null };
        continue;
      }
      // moved: the rest resolves below the source, as the tree was before the move (so
      // without the move's own 'gone' row at the source).
      const source = this.resolve(deviceId, location, change.source!.split('/'), change.id, change.jobId ?? -2);
      if (source.kind === 'gone') return source;
      if (source.kind === 'file') {
        if (i !== rel.length - 1) return { kind: 'gone' };
        return source;
      }
      mirrorPath = source.path;
      last = source;
    }
    return last;
  }

  /**
   * Names added (file, dir, moved here: with that kind) and names taken away (gone, moved
   * away) in one folder of a peer's tree, newest change per name.
   */
  childChanges(deviceId: string, location: string, folder: string): { added: Map<string, Exclude<PendingKind, 'gone'>>; removed: Set<string> } {
    const latest = new Map<string, PendingChange>();
    for (const row of this.s.children.all(deviceId, location, folder) as Row[]) latest.set(row.path, toChange(row));
    const added = new Map<string, Exclude<PendingKind, 'gone'>>();
    const removed = new Set<string>();
    for (const [p, change] of latest) {
      const name = path.posix.basename(p);
      if (change.kind === 'gone') removed.add(name);
      else added.set(name, change.kind);
    }
    return { added, removed };
  }
}
