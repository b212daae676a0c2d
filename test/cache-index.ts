// The block cache's files as a test reads them from outside (the format of
// src/replication/block-cache.ts): per remote file, <name>.index beside <name>.data, the
// name a hash of the file's key; the index a header (magic "sdfsbc01", u32 LE span), then
// 40 bytes per block (BLAKE3, u32 LE length, reserved), all zeros where nothing is cached.
import { blake3 } from '@napi-rs/blake-hash';

export const INDEX_MAGIC = 'sdfsbc01';
export const INDEX_HEADER_BYTES = 16;
const INDEX_RECORD_BYTES = 40;

/** The name a file's blocks have in the cache, from its key (content/<id>/<size> for content with an id). */
export function cacheNameOf(key: string): string {
  return blake3(key).toString('hex').slice(0, 32);
}

/** The records of an index file that claim a block (a nonzero hash or length). */
export function indexRecords(raw: Buffer): Array<{ index: number; hash: Buffer; length: number }> {
  const records = [];
  for (let at = INDEX_HEADER_BYTES, index = 0; at + INDEX_RECORD_BYTES <= raw.length; at += INDEX_RECORD_BYTES, index++) {
    const hash = raw.subarray(at, at + 32);
    const length = raw.readUInt32LE(at + 32);
    if (length !== 0 || hash.some((b) => b !== 0)) records.push({ index, hash, length });
  }
  return records;
}
