// What the devices a content was fetched from signed for its blocks (content_vouches): kept
// with the copy made here (a repair, a copy job), and passed along when this device serves
// that content, so a reader can check bytes against their owner's word while the owner is
// away. A vouch is only ever taken as its signature verifies with the owner's key: a kept
// row that is wrong costs nothing but its bytes.
import type { Database } from 'better-sqlite3';
import type { Vouch } from './block-messages.js';

/** One block's vouch: the range, its BLAKE3, and who signed it (with its file's mtime then). */
export interface RangeVouch extends Vouch {
  offset: number;
  length: number;
  hash: Buffer;
}

interface Row {
  hash: Buffer;
  file_mtime: number;
  signer: Buffer;
  signature: Buffer;
}

export class VouchStore {
  constructor(private readonly db: Database) {}

  /** Keeps the vouches of a content's blocks (a newer one from the same signer replaces the old). */
  record(contentId: string, size: number, vouches: readonly RangeVouch[]): void {
    const insert = this.db.prepare(
      `INSERT OR REPLACE INTO content_vouches (content_id, size, offset, length, hash, file_mtime, signer, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db.transaction(() => {
      for (const v of vouches) insert.run(contentId, size, v.offset, v.length, v.hash, v.fileMtime, v.signer, v.signature);
    })();
  }

  /** What `signer` signed for exactly this range of the content, when its hash is `hash` (a stale one is never passed along). */
  find(contentId: string, size: number, offset: number, length: number, signer: Buffer, hash: Buffer): Vouch | undefined {
    const row = this.db
      .prepare(`SELECT hash, file_mtime, signer, signature FROM content_vouches WHERE content_id = ? AND size = ? AND offset = ? AND length = ? AND signer = ?`)
      .get(contentId, size, offset, length, signer) as Row | undefined;
    if (!row || !hash.equals(row.hash)) return undefined;
    return { signer: row.signer, signature: row.signature, fileMtime: row.file_mtime };
  }
}
