// Content identity: a sampled BLAKE3 over a file's size and bytes, so equal content on
// any device gets the same 16-hex-char id without reading whole large files.
// Recipe (DESIGN.md): size as u64 little-endian, then the whole file when it is at most
// 100 KiB; else an 8 KiB header, 4 samples of 10 KiB spread evenly over the body between
// header and footer (the first at the body's start, the last ending at its end), and an
// 8 KiB footer. Empty files have no content id.
import fs from 'node:fs';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { config } from '../../config.js';

export const CONTENT_ID_HEX_CHARS = 16;

export interface ContentHash {
  /** First 16 hex chars of the sampled hash; the id shared by equal content. */
  contentId: string;
  /** The whole sampled BLAKE3, hex. */
  sampledHash: string;
}

/** Byte ranges [offset, length] read for a file of this size, in hashing order. */
export function sampleRanges(size: number): Array<[number, number]> {
  const { contentWholeFileMax, contentHeaderBytes, contentFooterBytes, contentSampleBytes, contentSampleCount } = config;
  if (size <= contentWholeFileMax) return [[0, size]];
  const bodyStart = contentHeaderBytes;
  const bodyEnd = size - contentFooterBytes;
  const span = bodyEnd - bodyStart - contentSampleBytes;
  const ranges: Array<[number, number]> = [[0, contentHeaderBytes]];
  for (let i = 0; i < contentSampleCount; i++) {
    ranges.push([bodyStart + Math.floor((span * i) / (contentSampleCount - 1)), contentSampleBytes]);
  }
  ranges.push([bodyEnd, contentFooterBytes]);
  return ranges;
}

function sizePrefix(size: number): Buffer {
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(size));
  return prefix;
}

const scratch = Buffer.allocUnsafe(config.contentWholeFileMax);

/** Sampled content hash of an open file of known size; undefined for an empty file. */
export function contentHashOfFd(fd: number, size: number): ContentHash | undefined {
  if (size === 0) return undefined;
  const hasher = new Blake3Hasher();
  hasher.update(sizePrefix(size));
  for (const [offset, length] of sampleRanges(size)) {
    const got = readFully(fd, scratch, length, offset);
    // A file that shrank while we read it hashes what is there; the next index run sees the new size.
    hasher.update(got === scratch.length ? scratch : scratch.subarray(0, got));
  }
  const sampledHash = hasher.digest('hex');
  return { contentId: sampledHash.slice(0, CONTENT_ID_HEX_CHARS), sampledHash };
}

export function contentHashOfFile(file: string): ContentHash | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    return contentHashOfFd(fd, fs.fstatSync(fd).size);
  } finally {
    fs.closeSync(fd);
  }
}

/** Sampled hash of bytes held in memory (the same recipe, for tests and remote data). */
export function contentHashOfBuffer(data: Buffer): ContentHash | undefined {
  if (data.length === 0) return undefined;
  const hasher = new Blake3Hasher();
  hasher.update(sizePrefix(data.length));
  for (const [offset, length] of sampleRanges(data.length)) hasher.update(data.subarray(offset, offset + length));
  const sampledHash = hasher.digest('hex');
  return { contentId: sampledHash.slice(0, CONTENT_ID_HEX_CHARS), sampledHash };
}

const FULL_HASH_CHUNK = 4 * 1024 * 1024;
let fullHashBuffer: Buffer | undefined;

/** Full BLAKE3 of a file, hex: the integrity hash (identical to b3sum's output). */
export function fullHashOfFile(file: string): string {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = (fullHashBuffer ??= Buffer.allocUnsafe(FULL_HASH_CHUNK));
    const hasher = new Blake3Hasher();
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hasher.update(n === buf.length ? buf : buf.subarray(0, n));
    }
    return hasher.digest('hex');
  } finally {
    fs.closeSync(fd);
  }
}

function readFully(fd: number, buf: Buffer, length: number, position: number): number {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}
