// The content_identities table: one row per content id with its size, sampled hash and,
// once a file has been read whole, its full BLAKE3 integrity hash. A full hash this device
// records also goes to index_outbox for its log; what a peer's log brings does not.
import type { Db } from '../db/database.js';

export interface ContentIdentity {
  id: string;
  size: number;
  sampledHash: string;
  fullHash: string | null;
  firstSeen: number;
}

export class ContentStore {
  private readonly insert;
  private readonly setFull;
  private readonly getOne;
  private readonly outbox;

  constructor(db: Db) {
    this.outbox = db.prepare(`INSERT INTO index_outbox (op, content_id, extra) VALUES ('content', ?, ?)`);
    this.insert = db.prepare('INSERT OR IGNORE INTO content_identities (id, size, sampled_hash, first_seen) VALUES (?, ?, ?, ?)');
    this.setFull = db.prepare('UPDATE content_identities SET full_hash = ? WHERE id = ? AND full_hash IS NULL');
    this.getOne = db.prepare('SELECT id, size, sampled_hash AS sampledHash, full_hash AS fullHash, first_seen AS firstSeen FROM content_identities WHERE id = ?');
  }

  /**
   * Records a content id this device found. Not queued for the device's log by itself:
   * the log sends the identity along with the first entry holding it (device-log.ts).
   */
  record(id: string, size: number, sampledHash: string): void {
    this.insert.run(id, size, sampledHash, Date.now());
  }

  /** Content identities as the log sends them (null for an id this library does not know). */
  identity(id: string): { size: number; sampledHash: string } | undefined {
    return this.getOne.get(id) as ContentIdentity | undefined;
  }

  recordFullHash(id: string, fullHash: string): void {
    if (this.setFull.run(fullHash, id).changes > 0) this.outbox.run(id, JSON.stringify({ fullHash }));
  }

  /** Records a content identity a peer's log reported (not queued again). */
  recordFromPeer(id: string, size: number, sampledHash: string): void {
    this.insert.run(id, size, sampledHash, Date.now());
  }

  recordFullHashFromPeer(id: string, fullHash: string): void {
    this.setFull.run(fullHash, id);
  }

  get(id: string): ContentIdentity | undefined {
    return this.getOne.get(id) as ContentIdentity | undefined;
  }
}
