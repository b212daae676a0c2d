// Each copy's own check: the full BLAKE3 of one file as it was at (size, mtime). A copy
// counts toward a policy only with a current check equal to its content's full hash: the
// content id samples a large file, so two files with one content id are not proven the
// same until each is read whole. This device's checks also go to its log (peers keep them
// for their mirror of this device); a check goes stale when the file's size or mtime change.
import type { Db } from '../db/database.js';

export interface CopyCheck {
  fullHash: string;
  size: number;
  mtime: number;
  /** A scrub found the bytes changed while size and mtime did not (bit rot). */
  corrupt: boolean;
}

/** Whether a check speaks for the file as its entry stands now (same size and mtime): else it is stale. */
export function isCurrent(check: CopyCheck | undefined, entry: { size: number; mtime: number }): check is CopyCheck {
  return check !== undefined && check.size === entry.size && check.mtime === entry.mtime;
}

export class CopyChecks {
  private readonly upsert;
  private readonly outbox;
  private readonly getOne;
  private readonly entryNow;
  private readonly verified;
  private readonly corrupt;

  constructor(db: Db) {
    this.corrupt = db
      .prepare(`SELECT e.id FROM copy_checks k JOIN entries e ON e.id = k.entry_id
                WHERE e.device_id = ? AND k.corrupt = 1 AND k.size = e.size AND k.mtime = e.mtime ORDER BY e.id LIMIT ?`)
      .pluck();
    this.verified = db
      .prepare(`SELECT e.id FROM copy_checks k JOIN entries e ON e.id = k.entry_id
                WHERE e.device_id = ? AND k.full_hash = ? AND k.corrupt = 0 AND k.size = e.size AND k.mtime = e.mtime ORDER BY e.id`)
      .pluck();
    this.entryNow = db.prepare("SELECT size, mtime FROM entries WHERE id = ? AND kind = 'file'");
    this.upsert = db.prepare('INSERT OR REPLACE INTO copy_checks (entry_id, full_hash, size, mtime, checked_at, corrupt) VALUES (?, ?, ?, ?, ?, ?)');
    this.outbox = db.prepare(`INSERT INTO index_outbox (op, id, extra) VALUES ('check', ?, ?)`);
    this.getOne = db.prepare('SELECT full_hash AS fullHash, size, mtime, corrupt FROM copy_checks WHERE entry_id = ?');
  }

  /**
   * Records that one of this device's files, as its entry stands now (size, mtime), has
   * this full BLAKE3 (it was just read whole); false when there is no such file entry.
   */
  recordCurrent(entryId: number, fullHash: string, corrupt = false): boolean {
    const row = this.entryNow.get(entryId) as { size: number; mtime: number } | undefined;
    if (!row) return false;
    this.record(entryId, { fullHash, size: row.size, mtime: row.mtime, corrupt });
    return true;
  }

  /** Records a check of one of this device's files (made by reading it whole) and queues it for the log. */
  record(entryId: number, check: CopyCheck, now = Date.now()): void {
    this.upsert.run(entryId, check.fullHash, check.size, check.mtime, now, check.corrupt ? 1 : 0);
    this.outbox.run(entryId, JSON.stringify(check));
  }

  /** Records a check a peer's log reported for its file (`entryId`: the mirrored entry here). */
  recordFromPeer(entryId: number, check: CopyCheck, now = Date.now()): void {
    this.upsert.run(entryId, check.fullHash, check.size, check.mtime, now, check.corrupt ? 1 : 0);
  }

  /**
   * This device's files whose check is current (the file unchanged since), not corrupt and
   * equal to `fullHash`: verified copies of those bytes, a repair's sources.
   */
  verifiedCopies(deviceId: string, fullHash: string): number[] {
    return this.verified.all(deviceId, fullHash) as number[];
  }

  /** This device's files whose current check says corrupt (not repaired, not edited since), at most `limit`. */
  corruptEntries(deviceId: string, limit = 1_000_000): number[] {
    return this.corrupt.all(deviceId, limit) as number[];
  }

  /** Whether the check of this file is current (size and mtime as checked) and says corrupt. */
  isCorrupt(entry: { id: number; size: number; mtime: number }): boolean {
    const check = this.get(entry.id);
    return isCurrent(check, entry) && check.corrupt;
  }

  get(entryId: number): CopyCheck | undefined {
    const row = this.getOne.get(entryId) as { fullHash: string; size: number; mtime: number; corrupt: number } | undefined;
    return row && { ...row, corrupt: row.corrupt === 1 };
  }
}
