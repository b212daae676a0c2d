// Groups index writes into transactions of a bounded size. A transaction opens only
// when the first write comes, so a pass that changes nothing writes nothing; a killed
// process loses at most the open batch and leaves every committed one consistent.
import type { Db } from '../db/database.js';
import { commitGrouped } from '../db/group-commit.js';

export class WriteBatch {
  private open = false;
  private pending = 0;
  writes = 0;

  constructor(
    private readonly db: Db,
    private readonly size: number,
  ) {}

  write<T>(fn: () => T): T {
    if (!this.open) {
      // The mount's grouped changes go first: SQLite has one transaction per connection.
      commitGrouped(this.db);
      this.db.exec('BEGIN IMMEDIATE');
      this.open = true;
    }
    const result = fn();
    this.writes++;
    if (++this.pending >= this.size) this.commit();
    return result;
  }

  commit(): void {
    if (!this.open) return;
    this.db.exec('COMMIT');
    this.open = false;
    this.pending = 0;
  }

  rollback(): void {
    if (!this.open) return;
    this.open = false;
    this.pending = 0;
    try {
      this.db.exec('ROLLBACK');
    } catch {
      // SQLite may already have rolled back (a full disk does); nothing is left to undo.
    }
  }
}
