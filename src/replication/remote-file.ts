// One open remote file: serves reads of any size from its blocks, keeps the last few blocks
// in memory (FUSE asks 128 KiB at a time), reads ahead once access is sequential, and on
// random access fetches only the bytes asked for. A whole-file fetch checks the content id.
//
// Prefetch (with a disk cache): once a reader goes sequential, blocks are fetched in the
// background from where it reads, a few at a time, into the cache — to the end of the file
// ('seek'), then the blocks before that point too ('whole', when the file fits the cache
// well) — and a seek moves the fetch to the new point. Blocks already cached are checked
// instead of fetched. The mount reads what is in the cache without JS, so the reader runs
// at the cache's speed once the fetch is ahead of it.
import fs from 'node:fs';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { config } from '../config.js';
import { SdError } from '../errors.js';
import { log } from '../log.js';
import { contentHashOfFile } from '../vdfs/content/identity.js';
import type { BlockClient, RemoteFileRef } from './block-client.js';
import type { WatchedFile } from './block-cache.js';

/** How far behind the furthest read a read may land and still count as sequential (kernel reads run in parallel). */
const SEQUENTIAL_WINDOW_BLOCKS = 4;
/**
 * Reads at least this long, near the last, are a stream (the kernel reads ahead 128 KiB at a
 * time for a sequential reader; a random 4 KiB read comes as a few pages).
 */
const STREAM_READ_BYTES = 64 * 1024;

/** Told that a block is on its way into the cache (true), or not coming after all (false). */
type Expecter = (index: number, coming: boolean) => void;

/** How much of a file is fetched in the background once it is read sequentially. */
export type PrefetchMode = 'whole' | 'seek' | 'off';
export const PREFETCH_MODES: readonly PrefetchMode[] = ['whole', 'seek', 'off'];

export interface RemoteFileOptions {
  readAheadBlocks?: number;
  /** Default config.prefetch; 'off' (or no disk cache): only readAheadBlocks ahead of the reader. */
  prefetch?: PrefetchMode;
}

export interface WholeFileResult {
  /** BLAKE3 of all bytes, hex: the integrity hash the caller records. */
  fullHash: string;
  contentId: string | undefined;
  bytes: number;
}

export class RemoteFile {
  readonly readAheadBlocks: number;
  /** Blocks held in memory; a failed fetch is dropped after failedBlockHoldMs, so a later read refetches. */
  private readonly recent = new Map<number, Promise<Buffer>>();
  /** The block the reader is at: what is kept in memory is chosen around it. */
  private position = 0;
  /** The end of the furthest read of the current sequential run (-1: none yet). */
  private furthest = -1;
  private sequentialReads = 0;
  readonly prefetch: PrefetchMode;
  /** The background fetch: the next block it takes, the block it stops before, blocks in flight. */
  private pumpNext = 0;
  private pumpEnd = 0;
  private pumping = 0;
  /** Whole mode: the fetch went past the end and takes every block not had yet, from the start. */
  private wrapping = false;
  /** The background fetch's blocks in flight (into the cache only), for reads of them to wait on. */
  private readonly fetching = new Map<number, Promise<void>>();
  /** The mount's FUSE binding, told of the blocks the background fetch brings (see cachedBlocks). */
  private readonly expecters = new Set<Expecter>();
  /** Blocks this handle has had (fetched, or checked in the cache): the background fetch skips them. */
  private readonly had: Uint8Array;
  private closed = false;

  constructor(private readonly client: BlockClient, readonly ref: RemoteFileRef, options: RemoteFileOptions = {}) {
    this.readAheadBlocks = options.readAheadBlocks ?? config.readAheadBlocks;
    this.prefetch = client.cache ? (options.prefetch ?? config.prefetch) : 'off';
    this.had = new Uint8Array(this.prefetch === 'off' ? 0 : client.blockCount(ref));
  }

  /** The handle is closed: no more background fetches. */
  close(): void {
    this.closed = true;
  }

  get size(): number {
    return this.ref.size;
  }

  /** Bytes [offset, offset+length), fewer at the end of the file, none past it. */
  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(Math.max(0, Math.min(length, this.ref.size - offset)));
    return buf.subarray(0, await this.readInto(buf, offset, length));
  }

  /** Copies bytes [offset, offset+length) into buf (a FUSE read buffer); resolves to the number copied (fewer at the end of the file, none past it). */
  async readInto(buf: Buffer, offset: number, length: number): Promise<number> {
    const end = Math.min(this.ref.size, offset + Math.min(length, buf.length));
    if (offset >= end) return 0;
    const bs = this.client.blockSize;
    const first = Math.floor(offset / bs);
    const last = Math.floor((end - 1) / bs);
    // Read-ahead starts with the second read near the furthest point read so far: the first
    // read of a file gets the connection to itself (time to first byte), and a lone seek
    // reads none. "Near" is a window around that point, not the very next offset: the
    // kernel's parallel reads arrive out of order (measured through the mount: 2,194 of
    // 8,192 reads came behind the one before, and each such reset let read-ahead lapse, so
    // 133 reads then waited 20 ms or more on their block). A read just past a block already
    // cached continues a run too: the mount reads cached blocks without JS, so the reads in
    // between never came here. Only reads of stream size count: random readers land near
    // each other often enough. The read that ends the file counts whatever its length (a
    // stream's last read is short: taken alone, a file's last block was never cached).
    const near = (this.furthest >= 0 && offset >= this.furthest - SEQUENTIAL_WINDOW_BLOCKS * bs && offset <= this.furthest + bs) || (first > 0 && this.client.isCached(this.ref, first - 1));
    const streamSized = length >= STREAM_READ_BYTES || end === this.ref.size;
    this.sequentialReads = near && streamSized ? this.sequentialReads + 1 : 0;
    this.furthest = near ? Math.max(this.furthest, end) : end;
    this.position = first;
    if (this.sequentialReads === 0 && first === last && end - offset < bs && !this.recent.has(first) && !this.client.isCached(this.ref, first)) {
      const data = await this.readCold(first, offset, end);
      return data.copy(buf, 0);
    }
    const copies: Array<Promise<void>> = [];
    for (let i = first; i <= last; i++) {
      const from = Math.max(offset, i * bs);
      const to = Math.min(end, (i + 1) * bs);
      copies.push(this.copyBlock(i, from - i * bs, to - from, buf, from - offset));
    }
    if (this.sequentialReads >= 1) {
      if (this.prefetch === 'off') this.readAhead(last + 1);
      else this.steer(last + 1);
    }
    await Promise.all(copies);
    return end - offset;
  }

  /**
   * Copies bytes [start, start+length) of a block into buf at bufOffset: from the disk cache
   * when the block is checked there or the background fetch is bringing it (that fetch keeps
   * no bytes in memory), else from the block in memory, fetched if need be.
   */
  private async copyBlock(index: number, start: number, length: number, buf: Buffer, bufOffset: number): Promise<void> {
    const cache = this.client.cache;
    const prefetched = this.fetching.get(index);
    if (cache && !this.recent.has(index) && (prefetched || this.client.isVerified(this.ref, index))) {
      if (prefetched) {
        try {
          await prefetched;
        } catch (err) {
          // Held as failed, as a read of the block itself would be (see keep).
          void this.keep(index, Promise.reject(err));
          throw err;
        }
      }
      if (await cache.readVerified(this.ref.cacheKey, index, start, length, buf, bufOffset)) return;
    }
    const data = await this.block(index);
    data.copy(buf, bufOffset, start, start + length);
  }

  /**
   * A short read of a block nobody has, not part of a stream: its bytes are asked for alone
   * (time to first byte, seeks, random readers), and nothing more. Whole blocks come once
   * reads go sequential: fetched for a random reader, each 1 MiB held up its next misses
   * on the connection and on both devices' CPUs (bench/remote-mount, 4 KiB random reads:
   * p95 11–27 ms with the block fetched after each first or second miss, 2–4.4 ms
   * without). If the short read fails fast (a bad copy), the block's own fetch, with its
   * failover, answers; if it ran out of time, the read fails now, and the block is held
   * as failed (see keep), rather than wait a second deadline.
   */
  private async readCold(index: number, offset: number, end: number): Promise<Buffer> {
    const started = Date.now();
    try {
      return await this.client.readRange(this.ref, offset, end - offset);
    } catch (err) {
      if (Date.now() - started >= this.client.timeoutMs) {
        this.keep(index, Promise.reject(err));
        throw err;
      }
      log.debug({ op: 'range-read-failed', offset, err: String(err) });
      const start = offset - index * this.client.blockSize;
      return (await this.block(index)).subarray(start, start + (end - offset));
    }
  }

  /**
   * Its blocks in the disk cache, for the mount's FUSE threads to read verified ones
   * themselves, and to wait for those the background fetch is bringing (see expect).
   */
  async cachedBlocks(): Promise<(WatchedFile & { size: number; expect(coming: Expecter): void }) | undefined> {
    const watched = await this.client.cache?.watch(this.ref.cacheKey);
    if (!watched) return undefined;
    let expecter: Expecter | undefined;
    return {
      ...watched,
      size: this.ref.size,
      expect: (coming) => {
        if (expecter) return;
        expecter = coming;
        this.expecters.add(coming);
        for (const index of this.fetching.keys()) if (!this.client.isVerified(this.ref, index)) coming(index, true);
      },
      close: () => {
        if (expecter) this.expecters.delete(expecter);
        watched.close();
      },
    };
  }

  /**
   * Fetches the whole file into dest, checking the content id (when known) and returning the
   * full BLAKE3. A mismatch removes dest and fails: the bytes are not the content asked for.
   */
  async fetchWhole(dest: string): Promise<WholeFileResult> {
    const hasher = new Blake3Hasher();
    const handle = await fs.promises.open(dest, 'w', 0o644);
    const count = this.client.blockCount(this.ref);
    let bytes = 0;
    try {
      for (let i = 0; i < count; i++) {
        this.position = i;
        this.readAhead(i + 1);
        const data = await this.block(i);
        hasher.update(data);
        await handle.write(data, 0, data.length, bytes);
        bytes += data.length;
        this.recent.delete(i);
      }
    } catch (err) {
      await handle.close();
      await fs.promises.unlink(dest).catch(() => undefined);
      throw err;
    }
    await handle.close();
    const identity = contentHashOfFile(dest);
    if (this.ref.contentId !== undefined && identity?.contentId !== this.ref.contentId) {
      await fs.promises.unlink(dest).catch(() => undefined);
      throw new SdError('IO', `the fetched bytes have content id ${identity?.contentId ?? '(none)'}, not ${this.ref.contentId}; discarded`);
    }
    return { fullHash: hasher.digest('hex'), contentId: identity?.contentId, bytes };
  }

  private block(index: number): Promise<Buffer> {
    const known = this.recent.get(index);
    if (known) return known;
    const fetched = this.client.readBlock(this.ref, index);
    if (this.had.length > 0) fetched.then(() => void (this.had[index] = 1), () => undefined);
    return this.keep(index, fetched);
  }

  /**
   * Holds a block's fetch in memory. A failed one is held only for failedBlockHoldMs: the
   * kernel retries a failed read at once, page by page, and those retries get the same error
   * rather than wait out a second deadline on a peer that just did not answer.
   */
  private keep(index: number, pending: Promise<Buffer>): Promise<Buffer> {
    this.recent.set(index, pending);
    pending.catch(() => {
      const forget = () => {
        if (this.recent.get(index) === pending) this.recent.delete(index);
      };
      setTimeout(forget, config.failedBlockHoldMs).unref();
    });
    this.trim();
    return pending;
  }

  /**
   * Points the background fetch at a sequential reader about to read block `from`: it
   * carries on where it is when that is ahead of the reader and near, else starts again at
   * `from` (a seek). It runs to the end of the file, never further ahead of the reader than
   * a quarter of the cache (what it fetched must still be there when read).
   */
  private steer(from: number): void {
    if (this.wrapping && !this.had[from]) this.wrapping = false; // a seek to what is not here yet comes first
    if (this.wrapping) return this.pump();
    const aheadMax = Math.max(this.readAheadBlocks, Math.floor(this.client.cache!.maxBytes / 4 / this.client.blockSize));
    const end = Math.min(this.client.blockCount(this.ref), from + aheadMax);
    if (this.pumpNext < from || this.pumpNext > end) this.pumpNext = from;
    this.pumpEnd = end;
    this.pump();
  }

  /** Keeps readAheadBlocks background fetches going until pumpEnd; their blocks go to the cache, not memory. */
  private pump(): void {
    const count = this.client.blockCount(this.ref);
    for (;;) {
      while (!this.closed && this.pumping < this.readAheadBlocks && this.pumpNext < this.pumpEnd) {
        const index = this.pumpNext++;
        if (this.had[index] || this.recent.has(index) || this.fetching.has(index)) continue;
        this.pumping++;
        // Told only of a block not checked here yet: one that is stays ready, never coming.
        const coming = !this.client.isVerified(this.ref, index);
        if (coming) for (const expecter of this.expecters) expecter(index, true);
        const fetched = this.client.fetchToCache(this.ref, index);
        this.fetching.set(index, fetched);
        fetched.then(
          () => void (this.had[index] = 1),
          (err: unknown) => log.debug({ op: 'prefetch-failed', index, err: String(err) }),
        ).finally(() => {
          this.fetching.delete(index);
          // Cached, it was marked ready; else (failed, or the cache took no copy) it is not coming after all.
          if (coming && !this.client.isVerified(this.ref, index)) for (const expecter of this.expecters) expecter(index, false);
          this.pumping--;
          this.pump();
        });
      }
      // At the end of the file: the blocks before where the reading began, when the whole file fits the cache well.
      const fits = this.ref.size <= this.client.cache!.maxBytes / 2;
      if (this.closed || this.wrapping || this.prefetch !== 'whole' || this.pumpEnd < count || this.pumpNext < count || !fits) return;
      this.wrapping = true;
      this.pumpNext = 0;
    }
  }

  private readAhead(from: number): void {
    const count = this.client.blockCount(this.ref);
    for (let i = from; i < Math.min(count, from + this.readAheadBlocks); i++) {
      if (this.recent.has(i)) continue;
      // Read-ahead is a hint: its failure surfaces only if the block is really read.
      this.block(i).catch((err: unknown) => log.debug({ op: 'read-ahead-failed', index: i, err: String(err) }));
    }
  }

  /**
   * Drops the blocks farthest from the reader, those behind it first: plain LRU would drop
   * read-ahead blocks (fetched early, used late) before the blocks already read.
   */
  private trim(): void {
    const keep = this.readAheadBlocks + 4;
    while (this.recent.size > keep) {
      let worst = -1;
      let worstDistance = -1;
      for (const index of this.recent.keys()) {
        const distance = index < this.position ? (this.position - index) * 2 : index - this.position;
        if (distance > worstDistance) {
          worst = index;
          worstDistance = distance;
        }
      }
      this.recent.delete(worst);
    }
  }
}
