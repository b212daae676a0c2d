// Copies one file's bytes into a part file in chunks, with async I/O (the event loop,
// which the mount shares, stays free) and a read of the next chunk overlapping the write
// of this one. It can start from the bytes a killed run left, and can hash what it copies.
import fsp, { type FileHandle } from 'node:fs/promises';
import { Blake3Hasher } from '@napi-rs/blake-hash';

export interface CopyFileInput {
  src: string;
  part: string;
  /** Bytes of an existing part file to keep (a resume); 0 starts fresh. */
  resumeAt: number;
  /** Compute the full BLAKE3 of the bytes (re-reading the kept part first). */
  fullHash: boolean;
  chunkBytes: number;
  /** fsync the part before returning (else the caller makes it durable later, with others). */
  fsync: boolean;
  /** Bytes per second at most; 0 for no limit. */
  bwlimit: number;
  /**
   * Called after every chunk with the bytes in the part so far. `sync` makes them
   * durable (fdatasync) before they are recorded. Throwing stops the copy; the part stays.
   */
  onChunk(bytes: number, sync: () => Promise<void>): Promise<void> | void;
}

export interface CopyFileResult {
  size: number;
  /** Bytes kept from an earlier run. */
  resumedAt: number;
  fullHash: string | null;
  mode: number;
  atimeMs: number;
  mtimeMs: number;
}

export async function copyFileChunked(input: CopyFileInput): Promise<CopyFileResult> {
  const src = await fsp.open(input.src, 'r');
  let dst: FileHandle | undefined;
  let pending: Promise<unknown> | undefined;
  let held: Buffer[] = [];
  try {
    const st = await src.stat();
    let pos = 0;
    if (input.resumeAt > 0) {
      try {
        dst = await fsp.open(input.part, 'r+');
        const partSize = (await dst.stat()).size;
        pos = partSize >= input.resumeAt && input.resumeAt <= st.size ? input.resumeAt : 0;
        await dst.truncate(pos);
      } catch {
        dst = undefined;
        pos = 0;
      }
    }
    dst ??= await fsp.open(input.part, 'w', 0o600);
    const resumedAt = pos;
    const hasher = input.fullHash ? new Blake3Hasher() : undefined;
    // Two buffers, reused from copy to copy: thousands of small files must not mean thousands of 8 MiB allocations.
    const chunkLen = Math.max(64 * 1024, Math.min(input.chunkBytes, st.size - pos + 1));
    held = [takeBuffer(input.chunkBytes), takeBuffer(input.chunkBytes)];
    const buffers = held.map((b) => b.subarray(0, chunkLen));
    if (hasher && pos > 0) await hashPrefix(dst, pos, buffers[0]!, hasher);
    const sync = () => dst!.datasync();
    const started = performance.now();
    let copied = 0;
    let which = 0;
    let read = src.read(buffers[which]!, 0, chunkLen, pos);
    pending = read;
    for (;;) {
      const { bytesRead } = await read;
      pending = undefined;
      if (bytesRead === 0) break;
      const chunk = buffers[which]!.subarray(0, bytesRead);
      which ^= 1;
      read = src.read(buffers[which]!, 0, chunkLen, pos + bytesRead);
      pending = read;
      hasher?.update(chunk);
      await writeAll(dst, chunk, pos);
      pos += bytesRead;
      copied += bytesRead;
      if (input.bwlimit > 0) await throttle(started, copied, input.bwlimit);
      await input.onChunk(pos, sync);
    }
    await dst.chmod(st.mode & 0o7777);
    // Seconds as numbers keep microseconds (a Date would keep only milliseconds).
    await dst.utimes(st.atimeMs / 1000, st.mtimeMs / 1000);
    if (input.fsync) await dst.sync();
    return { size: pos, resumedAt, fullHash: hasher ? hasher.digest('hex') : null, mode: st.mode, atimeMs: st.atimeMs, mtimeMs: st.mtimeMs };
  } finally {
    // A read still in flight must land before its descriptor closes.
    if (pending) await pending.catch(() => undefined);
    await dst?.close().catch(() => undefined);
    await src.close().catch(() => undefined);
    for (const b of held) giveBuffer(b);
  }
}

const freeBuffers: Buffer[] = [];
const MAX_FREE_BUFFERS = 4;

function takeBuffer(size: number): Buffer {
  const i = freeBuffers.findIndex((b) => b.length === size);
  return i >= 0 ? freeBuffers.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(size);
}

function giveBuffer(b: Buffer): void {
  if (freeBuffers.length < MAX_FREE_BUFFERS) freeBuffers.push(b);
}

async function writeAll(fh: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

async function hashPrefix(fh: FileHandle, length: number, buf: Buffer, hasher: Blake3Hasher): Promise<void> {
  let pos = 0;
  while (pos < length) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, length - pos), pos);
    if (bytesRead === 0) break;
    hasher.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}

async function throttle(startedMs: number, bytes: number, bytesPerSec: number): Promise<void> {
  const dueMs = (bytes / bytesPerSec) * 1000 - (performance.now() - startedMs);
  if (dueMs > 1) await new Promise((r) => setTimeout(r, dueMs));
}

/** Full BLAKE3 of a file, read asynchronously in chunks (hex; matches b3sum). */
export async function fullHashAsync(file: string, chunkBytes: number): Promise<string> {
  const fh = await fsp.open(file, 'r');
  try {
    const hasher = new Blake3Hasher();
    const size = (await fh.stat()).size;
    const buf = takeBuffer(chunkBytes);
    try {
      await hashPrefix(fh, size, buf, hasher);
    } finally {
      giveBuffer(buf);
    }
    return hasher.digest('hex');
  } finally {
    await fh.close();
  }
}

/**
 * A small file in one call (the kernel copies it: copy_file_range or a reflink) plus its
 * times; a few round trips instead of a dozen, which is what matters for thousands of them.
 */
export async function copySmall(src: string, part: string, srcSt: { size: number; mode: number; atimeMs: number; mtimeMs: number }): Promise<CopyFileResult> {
  await fsp.copyFile(src, part);
  await fsp.utimes(part, srcSt.atimeMs / 1000, srcSt.mtimeMs / 1000);
  return { size: srcSt.size, resumedAt: 0, fullHash: null, mode: srcSt.mode, atimeMs: srcSt.atimeMs, mtimeMs: srcSt.mtimeMs };
}
