// The content_identities table: one row per content id with its size, sampled hash and,
// once a file has been read whole, its full BLAKE3 integrity hash.
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

  constructor(db: Db) {
    this.insert = db.prepare('INSERT OR IGNORE INTO content_identities (id, size, sampled_hash, first_seen) VALUES (?, ?, ?, ?)');
    this.setFull = db.prepare('UPDATE content_identities SET full_hash = ? WHERE id = ? AND full_hash IS NULL');
    this.getOne = db.prepare('SELECT id, size, sampled_hash AS sampledHash, full_hash AS fullHash, first_seen AS firstSeen FROM content_identities WHERE id = ?');
  }

  record(id: string, size: number, sampledHash: string): void {
    this.insert.run(id, size, sampledHash, Date.now());
  }

  recordFullHash(id: string, fullHash: string): void {
    this.setFull.run(fullHash, id);
  }

  get(id: string): ContentIdentity | undefined {
    return this.getOne.get(id) as ContentIdentity | undefined;
  }
}
