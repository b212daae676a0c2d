// The guardian's copy summary: per content, the devices holding it and those holding a
// verified copy, as bit sets (a bit per device), with totals per such pair, overall and per
// location. Triggers mark a content dirty when its files, their checks or its full hash
// change (migration 14); `flush` brings the dirty contents' rows up to date in one set of
// statements. What status and at-risk read is then a few hundred rows, not every file:
// trust and staleness are applied to the bit sets at query time, so they stay per query.
import { SdError } from '../errors.js';
import type { Db } from '../vdfs/db/database.js';

/** The highest device bit: a set is a SQLite integer, and sums of distinct bits must not overflow. */
const MAX_BIT = 62;

/**
 * A file's copy is verified: a current check equal to the content's full hash (looked up
 * only for a current check). SQL over `entries e LEFT JOIN copy_checks k ON k.entry_id = e.id`.
 */
export const VERIFIED = `k.entry_id IS NOT NULL AND k.corrupt = 0 AND k.size = e.size AND k.mtime = e.mtime
  AND k.full_hash = (SELECT full_hash FROM content_identities WHERE id = e.content_id)`;

/** Adds (sign 1) or takes away (sign -1) the batch's contents' rows from the signature totals. */
function signatureTotalsSql(sign: 1 | -1): string {
  const s = sign === 1 ? '' : '-';
  return `INSERT INTO guardian_signatures (holders, verified, contents, files, bytes, size)
            SELECT c.holders, c.verified, ${s}count(*), ${s}sum(c.files), ${s}sum(c.bytes), ${s}sum(c.size)
            FROM temp.guardian_batch b CROSS JOIN guardian_contents c ON c.content_id = b.content_id WHERE true GROUP BY c.holders, c.verified
          ON CONFLICT DO UPDATE SET contents = contents + excluded.contents, files = files + excluded.files, bytes = bytes + excluded.bytes, size = size + excluded.size;
          INSERT INTO guardian_location_signatures (location_id, holders, verified, files, bytes, verified_files)
            SELECT l.location_id, c.holders, c.verified, ${s}sum(l.files), ${s}sum(l.bytes), ${s}sum(l.verified)
            FROM temp.guardian_batch b CROSS JOIN guardian_contents c ON c.content_id = b.content_id
            JOIN guardian_location_copies l ON l.content_id = b.content_id WHERE true GROUP BY l.location_id, c.holders, c.verified
          ON CONFLICT DO UPDATE SET files = files + excluded.files, bytes = bytes + excluded.bytes, verified_files = verified_files + excluded.verified_files;`;
}

const REBUILD_BATCH = `
  ${signatureTotalsSql(-1)}
  DELETE FROM guardian_location_copies WHERE content_id IN (SELECT content_id FROM temp.guardian_batch);
  DELETE FROM guardian_contents WHERE content_id IN (SELECT content_id FROM temp.guardian_batch);
  INSERT INTO guardian_location_copies (content_id, location_id, bit, files, bytes, verified, size)
    SELECT e.content_id, e.location_id, d.bit, count(*), sum(e.size), sum(CASE WHEN ${VERIFIED} THEN 1 ELSE 0 END), max(e.size)
    FROM temp.guardian_batch b CROSS JOIN entries e ON e.content_id = b.content_id AND e.kind = 'file'
    JOIN guardian_device_bits d ON d.device_id = e.device_id
    LEFT JOIN copy_checks k ON k.entry_id = e.id
    GROUP BY e.content_id, e.location_id;
  INSERT INTO guardian_contents (content_id, holders, verified, files, bytes, size)
    SELECT l.content_id, sum(DISTINCT 1 << l.bit), sum(DISTINCT CASE WHEN l.verified > 0 THEN 1 << l.bit ELSE 0 END), sum(l.files), sum(l.bytes), max(l.size)
    FROM temp.guardian_batch b CROSS JOIN guardian_location_copies l ON l.content_id = b.content_id
    GROUP BY l.content_id;
  ${signatureTotalsSql(1)}
  DELETE FROM guardian_signatures WHERE contents = 0;
  DELETE FROM guardian_location_signatures WHERE files = 0;
  DELETE FROM guardian_dirty WHERE content_id IN (SELECT content_id FROM temp.guardian_batch);
  DELETE FROM temp.guardian_batch;`;

export interface SignatureTotals {
  holders: bigint;
  verified: bigint;
  contents: number;
  files: number;
  bytes: number;
  size: number;
}

export interface LocationSignatureTotals {
  locationId: number;
  holders: bigint;
  verified: bigint;
  files: number;
  bytes: number;
  verifiedFiles: number;
}

export class CopySummary {
  private readonly s;

  constructor(private readonly db: Db) {
    db.exec('CREATE TEMP TABLE IF NOT EXISTS guardian_batch (content_id TEXT PRIMARY KEY) WITHOUT ROWID');
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      pending: p('SELECT count(*) FROM guardian_dirty').pluck(),
      anyPending: p('SELECT EXISTS (SELECT 1 FROM guardian_dirty)').pluck(),
      takeBatch: p('INSERT INTO temp.guardian_batch SELECT content_id FROM guardian_dirty LIMIT ?'),
      // Devices with locations (their own or mirrored) that have no bit yet.
      unnumbered: p(`SELECT d.id FROM devices d WHERE NOT EXISTS (SELECT 1 FROM guardian_device_bits b WHERE b.device_id = d.id)
                       AND EXISTS (SELECT 1 FROM locations l WHERE l.device_id = d.id) ORDER BY d.created_at, d.id`).pluck(),
      usedBits: p('SELECT bit FROM guardian_device_bits').pluck(),
      // A device whose files are all gone gives its bit back (only when a bit is needed).
      idleBits: p(`SELECT device_id FROM guardian_device_bits b WHERE NOT EXISTS (SELECT 1 FROM locations l WHERE l.device_id = b.device_id)
                     AND NOT EXISTS (SELECT 1 FROM guardian_location_copies c WHERE c.bit = b.bit)`).pluck(),
      dropBit: p('DELETE FROM guardian_device_bits WHERE device_id = ?'),
      setBit: p('INSERT INTO guardian_device_bits (device_id, bit) VALUES (?, ?)'),
      bits: p('SELECT device_id AS deviceId, bit FROM guardian_device_bits'),
      // Bit sets reach bit 62: read as BigInt (then only the sets stay BigInt).
      signatures: p('SELECT holders, verified, contents, files, bytes, size FROM guardian_signatures').safeIntegers(true),
      locationSignatures: p('SELECT location_id AS locationId, holders, verified, files, bytes, verified_files AS verifiedFiles FROM guardian_location_signatures').safeIntegers(true),
    };
  }

  /** Contents whose rows are not up to date. */
  pending(): number {
    return this.s.pending.get() as number;
  }

  /**
   * Brings up to `limit` dirty contents' rows up to date (all of them by default), in one
   * transaction; returns how many stay dirty.
   */
  flush(limit = Number.MAX_SAFE_INTEGER): number {
    // Nothing dirty (the common case for the mount's timer): no write lock taken at all.
    if (!this.s.anyPending.get()) return 0;
    // Immediate: a write lock from the start, so a writer elsewhere cannot make it fail half way.
    return this.db
      .transaction(() => {
        this.numberDevices();
        this.s.takeBatch.run(limit);
        this.db.exec(REBUILD_BATCH);
        return limit === Number.MAX_SAFE_INTEGER ? 0 : this.pending();
      })
      .immediate();
  }

  /** Brings every dirty content up to date in transactions of `chunk` contents (others' writes go between them). */
  flushInChunks(chunk: number): void {
    while (this.flush(chunk) > 0);
  }

  /** Each device's bit (devices that hold no file may have none). */
  deviceBits(): Map<string, number> {
    return new Map((this.s.bits.all() as Array<{ deviceId: string; bit: number }>).map((r) => [r.deviceId, r.bit]));
  }

  signatures(): SignatureTotals[] {
    return (this.s.signatures.all() as Array<Record<keyof SignatureTotals, bigint>>).map((r) => ({
      holders: r.holders, verified: r.verified, contents: Number(r.contents), files: Number(r.files), bytes: Number(r.bytes), size: Number(r.size),
    }));
  }

  locationSignatures(): LocationSignatureTotals[] {
    return (this.s.locationSignatures.all() as Array<Record<keyof LocationSignatureTotals, bigint>>).map((r) => ({
      locationId: Number(r.locationId), holders: r.holders, verified: r.verified, files: Number(r.files), bytes: Number(r.bytes), verifiedFiles: Number(r.verifiedFiles),
    }));
  }

  /** Gives every known device a bit, reusing the bits of devices whose files are all gone. */
  private numberDevices(): void {
    const missing = this.s.unnumbered.all() as string[];
    if (missing.length === 0) return;
    let used = new Set(this.s.usedBits.all() as number[]);
    if (used.size + missing.length > MAX_BIT + 1) {
      for (const id of this.s.idleBits.all() as string[]) this.s.dropBit.run(id);
      used = new Set(this.s.usedBits.all() as number[]);
    }
    let bit = 0;
    for (const id of missing) {
      while (used.has(bit)) bit++;
      if (bit > MAX_BIT) {
        throw new SdError('NOT_SUPPORTED', `the guardian counts copies on at most ${MAX_BIT + 1} devices with locations, and this library has more; its copy counts leave out device ${id}`);
      }
      this.s.setBit.run(id, bit);
      used.add(bit);
    }
  }
}

/** Devices in a bit set. */
export function bitCount(set: bigint): number {
  let n = BigInt.asUintN(64, set);
  let count = 0;
  while (n) {
    n &= n - 1n;
    count++;
  }
  return count;
}
