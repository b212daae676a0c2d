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

export class CopyChecks {
  private readonly upsert;
  private readonly outbox;
  private readonly getOne;
  private readonly entryNow;

  constructor(db: Db) {
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

  get(entryId: number): CopyCheck | undefined {
    const row = this.getOne.get(entryId) as { fullHash: string; size: number; mtime: number; corrupt: number } | undefined;
    return row && { ...row, corrupt: row.corrupt === 1 };
  }
}
