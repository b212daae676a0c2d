// Lets many small index changes share one SQLite commit: each runs in a savepoint of a
// transaction that commits a few ms later, or at once when another writer of the same
// connection begins a transaction, the connection closes, or enough changes gathered.
import { log } from '../../log.js';
import type { Db } from './database.js';

const groups = new WeakMap<Db, GroupCommit>();

export class GroupCommit {
  private open = false;
  private timer: NodeJS.Timeout | undefined;
  private changes = 0;
  private readonly savepoint: { (fn: () => void): void; immediate(fn: () => void): void };

  /**
   * delayMs: the longest a change waits for its commit (what a crash can lose of the
   * index; the watcher's start-up diff repairs it). 0 commits every change on its own.
   */
  constructor(
    private readonly db: Db,
    private readonly delayMs: number,
    private readonly maxChanges = 1000,
  ) {
    this.savepoint = db.transaction((fn: () => void) => fn());
    if (delayMs > 0) groups.set(db, this);
  }

  /** Runs fn in a savepoint of the group's transaction: a failure undoes fn alone and is thrown. */
  run(fn: () => void): void {
    if (this.delayMs <= 0) return this.savepoint.immediate(fn);
    // Committed or rolled back under us (a failed statement can end a transaction).
    if (this.open && !this.db.inTransaction) this.ended();
    if (!this.open) {
      // Inside someone else's transaction (not ours): nest in it.
      if (this.db.inTransaction) return this.savepoint(fn);
      this.db.exec('BEGIN IMMEDIATE');
      this.open = true;
      this.timer = setTimeout(() => this.commit(), this.delayMs);
      this.timer.unref();
    }
    try {
      this.savepoint(fn);
    } finally {
      if (++this.changes >= this.maxChanges) this.commit();
    }
  }

  /** Commits what the group holds now. */
  commit(): void {
    if (!this.open) return;
    this.ended();
    if (!this.db.open || !this.db.inTransaction) return;
    try {
      this.db.exec('COMMIT');
    } catch (err) {
      log.warn({ op: 'index', err: err instanceof Error ? err.message : String(err) }, 'grouped index changes could not be committed; the watcher repairs the index');
      try {
        this.db.exec('ROLLBACK');
      } catch {
        // SQLite rolled back already.
      }
    }
  }

  private ended(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.open = false;
    this.changes = 0;
  }
}

/** Commits the grouped changes of a connection now (before a transaction of another writer, or closing). */
export function commitGrouped(db: Db): void {
  groups.get(db)?.commit();
}
