// The last copy is guarded: whether removing some of this device's files would leave a
// content with no copy at all, or take its counting copies below what its files want;
// and the mount's guarded trash, kept until the content is back up to policy (the sweep).
import fs from 'node:fs';
import type { Statement } from 'better-sqlite3';
import { log } from '../log.js';
import { AuditLog } from '../vdfs/audit.js';
import { pruneTrashFolders } from '../vdfs/actions/trash.js';
import type { Db } from '../vdfs/db/database.js';
import type { Device } from '../vdfs/device.js';
import { EntryStore, type Entry } from '../vdfs/entries.js';
import { listLocations } from '../vdfs/locations.js';
import { Guardian, VERIFIED } from './guardian.js';

/** A file whose removal the guardian stands against. */
export interface GuardedFile {
  entryId: number;
  contentId: string;
  size: number;
  /** No device would hold the content any more. */
  lastCopy: boolean;
  /** Counting copies before and after the removal, and what the file's policy wants. */
  copies: { before: number; after: number; wanted: number };
  /** "the last copy" or "2 → 1 of 2 copies". */
  why: string;
}

/** One file (any device's) holding a content, and whether its own full-hash check makes it a verified copy. */
interface Holder {
  id: number;
  deviceId: string;
  verified: number;
}

/** Devices holding the content, and those whose copy counts (a verified copy on a device that is trusted and seen lately). */
function tally(holders: readonly Holder[], gone: ReadonlySet<number>, notCounting: ReadonlySet<string>): { devices: number; counting: number } {
  const devices = new Set<string>();
  const counting = new Set<string>();
  for (const h of holders) {
    if (gone.has(h.id)) continue;
    devices.add(h.deviceId);
    if (h.verified && !notCounting.has(h.deviceId)) counting.add(h.deviceId);
  }
  return { devices: devices.size, counting: counting.size };
}

export class LastCopyGuard {
  private readonly guardian: Guardian;
  private readonly store: EntryStore;
  private readonly holders: Statement;
  private readonly filesBelow: Statement;

  constructor(db: Db, device: Device) {
    this.guardian = new Guardian(db, device.id);
    this.store = new EntryStore(db);
    // One indexed lookup (entries_by_content) per content: no scan, fit for a FUSE unlink.
    // Verified as the guardian counts it (VERIFIED): a current, sound check equal to the content's full hash.
    this.holders = db.prepare(`SELECT e.id, e.device_id AS deviceId, coalesce(${VERIFIED}, 0) AS verified
                               FROM entries e LEFT JOIN copy_checks k ON k.entry_id = e.id
                               WHERE e.content_id = ? AND e.kind = 'file'`);
    this.filesBelow = db.prepare(`SELECT e.id FROM entry_closure c JOIN entries e ON e.id = c.descendant
                                  WHERE c.ancestor = ? AND e.kind = 'file' AND e.content_id IS NOT NULL AND e.size > 0`).pluck();
  }

  /**
   * The files among these entries (a folder: every file below it) whose removal, all of
   * them together, is guarded: it leaves no copy of their content on any device, or it
   * lowers the content's counting copies to below what the file wants.
   */
  check(entryIds: readonly number[]): GuardedFile[] {
    const byContent = new Map<string, Entry[]>();
    for (const file of this.filesOf(entryIds)) {
      const list = byContent.get(file.contentId!) ?? [];
      list.push(file);
      byContent.set(file.contentId!, list);
    }
    const guarded: GuardedFile[] = [];
    let notCounting: Set<string> | undefined;
    for (const [contentId, files] of byContent) {
      const holders = this.holdersOf(contentId);
      const gone = new Set(files.map((f) => f.id));
      // Trust and staleness matter only to verified copies (unverified ones never count).
      if (holders.some((h) => h.verified)) notCounting ??= this.notCounting();
      const before = tally(holders, new Set(), notCounting ?? new Set());
      const after = tally(holders, gone, notCounting ?? new Set());
      const lastCopy = after.devices === 0;
      // The policy is asked only when counting copies drop: most removals never need it.
      const wanted = lastCopy || after.counting < before.counting ? Math.max(...files.map((f) => this.guardian.wanted(f))) : 0;
      if (!lastCopy && !(after.counting < before.counting && after.counting < wanted)) continue;
      const copies = { before: before.counting, after: after.counting, wanted };
      const why = lastCopy ? 'the last copy' : `${before.counting} → ${after.counting} of ${wanted} copies`;
      for (const f of files) guarded.push({ entryId: f.id, contentId, size: f.size, lastCopy, copies, why });
    }
    return guarded;
  }

  /** Whether a content's counting copies reach what its files want (false when no file holds it). */
  atPolicy(contentId: string, filesAsked = 50): boolean {
    const holders = this.holdersOf(contentId);
    if (holders.length === 0) return false;
    const { counting } = tally(holders, new Set(), this.notCounting());
    let wanted = 0;
    for (const h of holders.slice(0, filesAsked)) {
      const entry = this.store.get(h.id);
      if (entry) wanted = Math.max(wanted, this.guardian.wanted(entry));
    }
    return counting >= wanted;
  }

  /** The SdPath of one of this device's entries (for a preview's samples). */
  sdPathOf(entryId: number): string {
    return this.guardian.sdPathOf(entryId) ?? `entry ${entryId}`;
  }

  /** The files with a content id among these entries and below the folders, each once (a folder and a file in it may both be named). */
  private filesOf(entryIds: readonly number[]): Entry[] {
    const files = new Map<number, Entry>();
    for (const id of entryIds) {
      const entry = this.store.get(id);
      if (!entry) continue;
      if (entry.kind === 'file' && entry.contentId && entry.size > 0) files.set(id, entry);
      else if (entry.kind === 'dir') for (const below of this.filesBelow.all(id) as number[]) files.set(below, this.store.get(below)!);
    }
    return [...files.values()];
  }

  private holdersOf(contentId: string): Holder[] {
    return this.holders.all(contentId) as Holder[];
  }

  /** Devices whose copies do not count: untrusted, or not seen within the stale limit. */
  private notCounting(): Set<string> {
    return new Set([...this.guardian.settings.untrusted(), ...this.guardian.staleDevices()]);
  }
}

/** A file the mount kept in its location's trash instead of deleting it: the last copy, or one its policy counts on. */
export interface GuardedTrashItem {
  id: number;
  locationId: number;
  trashPath: string;
  contentId: string;
  size: number;
  trashedAt: number;
}

export type GuardedTrashInput = Omit<GuardedTrashItem, 'id'>;

export class GuardedTrash {
  private readonly s;

  constructor(db: Db) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      add: p('INSERT INTO guarded_trash (location_id, trash_path, content_id, size, trashed_at) VALUES (?, ?, ?, ?, ?)'),
      all: p('SELECT id, location_id AS locationId, trash_path AS trashPath, content_id AS contentId, size, trashed_at AS trashedAt FROM guarded_trash ORDER BY id'),
      drop: p('DELETE FROM guarded_trash WHERE id = ?'),
    };
  }

  add(item: GuardedTrashInput): void {
    this.s.add.run(item.locationId, item.trashPath, item.contentId, item.size, item.trashedAt);
  }

  list(): GuardedTrashItem[] {
    return this.s.all.all() as GuardedTrashItem[];
  }

  forget(id: number): void {
    this.s.drop.run(id);
  }
}

/**
 * The sweep of the running mount: deletes each guarded trash file whose content is back up
 * to policy (the trash copy is not indexed, so it never counts), and forgets the ones the
 * user removed or replaced (the trash emptied). Nothing else in .sd-trash is touched.
 */
export function sweepGuardedTrash(db: Db, device: Device): { removed: number; forgotten: number } {
  const trash = new GuardedTrash(db);
  const guard = new LastCopyGuard(db, device);
  const audit = new AuditLog(db);
  const roots = new Map(listLocations(db, device.id).map((l) => [l.id, l.rootPath]));
  let removed = 0;
  let forgotten = 0;
  for (const item of trash.list()) {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(item.trashPath);
    } catch {
      st = undefined;
    }
    if (!st?.isFile() || st.size !== item.size) {
      trash.forget(item.id);
      forgotten++;
      continue;
    }
    if (!guard.atPolicy(item.contentId)) continue;
    try {
      fs.unlinkSync(item.trashPath);
    } catch (err) {
      log.warn({ op: 'guarded-trash', path: item.trashPath, err: String(err) }, 'a guarded trash file back up to policy was not deleted');
      continue;
    }
    const root = roots.get(item.locationId);
    if (root) pruneTrashFolders(item.trashPath, root);
    db.transaction(() => {
      trash.forget(item.id);
      audit.append({ actor: 'guardian', action: 'trash-sweep', status: 'Completed', target: item.trashPath, details: { contentId: item.contentId, size: item.size } });
    })();
    removed++;
  }
  return { removed, forgotten };
}
