// The disk block cache of remote files, <library>/cache/files: one sparse data file per
// file key (its blocks written in place, at index × span) and beside it a small index file
// (per block: its BLAKE3 and length; zeros where nothing is cached). Blocks are verified on
// every hit; the least recently used are evicted past a byte limit by punching their hole.
// The index lives in memory and is rebuilt from the index files at start (recency: the
// data file's mtime, touched on use).
//
// A file being read through the mount is watched: its data file stays open and in place,
// and the watcher (the FUSE binding's open handle) is told each block verified in this
// process (written after its check, or read back and checked once) and, before its bytes
// are freed, each block evicted — so the FUSE threads read those blocks themselves,
// without JS. A block is thus checked once per process, not on every read: measured, a
// check per block and open held a cached re-read to 0.8–0.9 GB/s, against 2.8–3.0 GB/s.
// (The index holds the hashes beside the bytes: the checks catch a damaged disk or a torn
// write, not someone who can write to the library, who could rewrite both.)
//
// Two writes per block (data, then its index record) on a descriptor kept open while the
// file is in use, where the cache of one file per block made a folder, a file, a write, a
// close and a rename (20–30% of a remote read's time). A process killed between the two
// writes leaves a block without its record (not cached); a torn block fails its BLAKE3.
import fs from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { config } from '../config.js';
import { log } from '../log.js';
import { punchHoleSync } from '../syscalls.js';
import { BLAKE3_BYTES } from './block-messages.js';

export interface BlockCacheStats {
  hits: number;
  misses: number;
  /** Blocks whose bytes no longer matched their hash: dropped and fetched again. */
  corrupt: number;
  evictions: number;
  writes: number;
  bytes: number;
  blocks: number;
}

export interface BlockCacheOptions {
  maxBytes?: number;
  /** Bytes between block starts in a data file (config.blockSize); a block is at most this long. */
  span?: number;
}

/** Index file: a header (magic, span), then one record per block. */
const MAGIC = Buffer.from('sdfsbc01');
const HEADER_BYTES = 16;
const RECORD_BYTES = 40; // BLAKE3 (32), length (u32), reserved (u32)
/** Data files kept open at once (RLIMIT_NOFILE is shared with everything else). */
const OPEN_FILES_MAX = 16;

/** A cached file's open descriptors: its data file and its index file. */
interface Handles {
  data: fs.promises.FileHandle;
  index: fs.promises.FileHandle;
}

interface Cached {
  name: string;
  data: string;
  index: string;
  /** Cached blocks: index -> its hash and length. */
  blocks: Map<number, { hash: Buffer; length: number }>;
  handles?: Promise<Handles>;
  users: number;
  /** When its data file's mtime was last set (ms). */
  touchedAt: number;
  /** Blocks checked in this process (written after their check, or read back and checked). */
  verified: Set<number>;
  /** Where its last block written ends: the data file is never shorter (holes keep its size) unless cut outside. */
  extent: number;
  /** Watchers (see watch): told of verified and freed blocks; while any, the files stay open and in place. */
  watchers: Set<(index: number, ready: boolean) => void>;
  /** Watches not yet closed (one may not have started its marks yet). */
  pins: number;
}

/** A file's blocks in the cache as a watcher sees them (the mount's CachedBlocks). */
export interface WatchedFile {
  /** The data file's descriptor (block i at i × span): open until close(). */
  fd: number;
  span: number;
  /** mark(i, true) for each block verified in this process, now and later; mark(i, false) before a block's bytes are freed. */
  watch(mark: (index: number, ready: boolean) => void): void;
  close(): void;
}

export class BlockCache {
  readonly stats: BlockCacheStats = { hits: 0, misses: 0, corrupt: 0, evictions: 0, writes: 0, bytes: 0, blocks: 0 };
  readonly maxBytes: number;
  readonly span: number;
  private readonly files = new Map<string, Cached>();
  /** Blocks in recency order (first = least recently used): `${name}/${index}` -> bytes. */
  private readonly lru = new Map<string, number>();
  /** Files with open descriptors, most recently used last. */
  private readonly open = new Set<Cached>();
  private readonly writing = new Map<string, Promise<void>>();
  /** Blocks taken out so far: a read that saw this change while it ran may have read a punched hole. */
  private drops = 0;

  private constructor(readonly dir: string, options: BlockCacheOptions) {
    this.maxBytes = options.maxBytes ?? config.cacheMaxBytes;
    this.span = options.span ?? config.blockSize;
  }

  /** Opens (creating if needed) the cache in dir and rebuilds its index from the files there. */
  static async open(dir: string, options: BlockCacheOptions = {}): Promise<BlockCache> {
    const cache = new BlockCache(dir, options);
    await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
    await cache.rebuild();
    return cache;
  }

  /** The cache folder of a library. */
  static dirOf(libraryDir: string): string {
    return path.join(libraryDir, 'cache', 'files');
  }

  /** Opens a library's cache; the former one (a file per block, <library>/cache/blocks) is removed. */
  static async openOf(libraryDir: string, options: BlockCacheOptions = {}): Promise<BlockCache> {
    await fs.promises.rm(path.join(libraryDir, 'cache', 'blocks'), { recursive: true, force: true }).catch(() => undefined);
    return BlockCache.open(BlockCache.dirOf(libraryDir), options);
  }

  /** The verified bytes of a block, or undefined (not cached, or corrupt and now dropped). */
  async get(fileKey: string, index: number): Promise<Buffer | undefined> {
    const name = nameOf(fileKey);
    // Being written (fetched a moment ago): read once it is there rather than fetch it again.
    await this.writing.get(`${name}/${index}`);
    const file = this.files.get(name);
    const block = file?.blocks.get(index);
    if (!file || !block) {
      this.stats.misses++;
      return undefined;
    }
    let data: Buffer;
    try {
      data = await this.use(file, async (h) => {
        const buf = Buffer.allocUnsafe(block.length);
        const { bytesRead } = await h.data.read(buf, 0, block.length, index * this.span);
        return buf.subarray(0, bytesRead);
      });
    } catch {
      await this.drop(file, index);
      this.stats.misses++;
      return undefined;
    }
    if (data.length !== block.length) {
      // Cut short outside (a cleaner, a truncate): gone, as if evicted.
      log.debug({ op: 'cache-short', file: file.data, block: index, bytes: data.length });
      await this.drop(file, index);
      this.stats.misses++;
      return undefined;
    }
    if (!blake3(data).equals(block.hash)) {
      this.stats.corrupt++;
      this.stats.misses++;
      log.warn({ op: 'cache-corrupt', file: file.data, block: index, corrupt: this.stats.corrupt }, 'a cached block no longer matches its BLAKE3: dropped, fetched again');
      await this.drop(file, index);
      return undefined;
    }
    this.stats.hits++;
    this.tell(file, index, true);
    this.used(file, index, block.length);
    return data;
  }

  /** A hit: the block is the most recently used, and so is its data file across restarts (its mtime, touched at most once a second). */
  private used(file: Cached, index: number, length: number): void {
    const key = `${file.name}/${index}`;
    this.lru.delete(key);
    this.lru.set(key, length);
    const now = Date.now();
    if (now - file.touchedAt >= 1000) {
      file.touchedAt = now;
      void fs.promises.utimes(file.data, now / 1000, now / 1000).catch(() => undefined);
    }
  }

  has(fileKey: string, index: number): boolean {
    return this.files.get(nameOf(fileKey))?.blocks.has(index) ?? false;
  }

  /** Whether a block is cached and was checked in this process (written after its check, or read back and checked). */
  isVerified(fileKey: string, index: number): boolean {
    return this.files.get(nameOf(fileKey))?.verified.has(index) ?? false;
  }

  /**
   * Copies bytes [start, start + length) of a block verified in this process into buf at
   * bufOffset, as the mount's FUSE threads read such blocks (no second check: see the
   * header); false, with nothing promised about buf, when it is not verified or its bytes
   * may have gone while they were read (a block dropped meanwhile: its hole reads as zeros).
   */
  async readVerified(fileKey: string, index: number, start: number, length: number, buf: Buffer, bufOffset: number): Promise<boolean> {
    const file = this.files.get(nameOf(fileKey));
    const block = file?.blocks.get(index);
    if (!file || !block || !file.verified.has(index) || start + length > block.length) return false;
    const drops = this.drops;
    let bytesRead: number;
    try {
      ({ bytesRead } = await this.use(file, (h) => h.data.read(buf, bufOffset, length, index * this.span + start)));
    } catch {
      return false;
    }
    if (bytesRead !== length || this.drops !== drops || !file.verified.has(index)) return false;
    this.stats.hits++;
    this.used(file, index, block.length);
    return true;
  }

  /** Stores a block whose hash the caller verified; resolves when it is written. */
  put(fileKey: string, index: number, data: Buffer, hash: Buffer): Promise<void> {
    const name = nameOf(fileKey);
    if (data.length > this.span || data.length > this.maxBytes) return Promise.resolve();
    const key = `${name}/${index}`;
    const inflight = this.writing.get(key);
    if (inflight) return inflight;
    const write = this.write(name, index, data, hash).finally(() => this.writing.delete(key));
    this.writing.set(key, write);
    return write;
  }

  /** Waits for every write in flight (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.writing.values()]);
  }

  /** Closes the open descriptors (shutdown); the cache stays usable. */
  async close(): Promise<void> {
    await this.flush();
    for (const file of [...this.open]) await this.release(file);
  }

  /** Where a cached block's bytes are on disk (tests corrupt them on purpose). */
  locate(fileKey: string, index: number): { file: string; offset: number } | undefined {
    const file = this.files.get(nameOf(fileKey));
    return file?.blocks.has(index) ? { file: file.data, offset: index * this.span } : undefined;
  }

  /**
   * Watches a file's blocks (see the header): its data file is made if needed and kept
   * open until close(); undefined when it cannot be opened (the reads then go through JS).
   */
  async watch(fileKey: string): Promise<WatchedFile | undefined> {
    const file = this.fileOf(nameOf(fileKey));
    file.pins++;
    let handles;
    try {
      handles = await this.handlesOf(file);
    } catch (err) {
      log.debug({ op: 'cache-watch', file: file.data, err: String(err) });
      this.unpin(file);
      return undefined;
    }
    let mark: ((index: number, ready: boolean) => void) | undefined;
    let closed = false;
    return {
      fd: handles.data.fd,
      span: this.span,
      watch: (fn) => {
        if (closed || mark) return;
        mark = fn;
        file.watchers.add(fn);
        for (const index of file.verified) fn(index, true);
      },
      close: () => {
        if (closed) return;
        closed = true;
        if (mark) file.watchers.delete(mark);
        this.unpin(file);
      },
    };
  }

  /** A watch ended: a file left with no block and no watch goes (as when its last block is evicted). */
  private unpin(file: Cached): void {
    file.pins--;
    if (file.pins === 0 && file.blocks.size === 0 && this.files.get(file.name) === file) void this.remove(file);
  }

  /** The file entry of a name, made (with no block yet) when there is none. */
  private fileOf(name: string): Cached {
    let file = this.files.get(name);
    if (!file) {
      file = this.entryOf(name);
      this.files.set(name, file);
    }
    return file;
  }

  /** A new entry for the files of a name, holding no block. */
  private entryOf(name: string): Cached {
    return { name, data: path.join(this.dir, `${name}.data`), index: path.join(this.dir, `${name}.index`), blocks: new Map(), users: 0, touchedAt: 0, verified: new Set(), extent: 0, watchers: new Set(), pins: 0 };
  }

  /** Notes a block verified (true) or about to be freed (false), and tells the file's watchers. */
  private tell(file: Cached, index: number, ready: boolean): void {
    if (ready === file.verified.has(index)) return;
    if (ready) file.verified.add(index);
    else file.verified.delete(index);
    for (const mark of file.watchers) mark(index, ready);
  }

  private async write(name: string, index: number, data: Buffer, hash: Buffer): Promise<void> {
    const file = this.fileOf(name);
    const record = Buffer.alloc(RECORD_BYTES);
    hash.copy(record, 0, 0, BLAKE3_BYTES);
    record.writeUInt32LE(data.length, BLAKE3_BYTES);
    try {
      await this.use(file, async (h) => {
        // Cut short outside since (a truncate): the blocks it had are gone, and the holes
        // this write would leave before it must not pass for them.
        if (fs.fstatSync(h.data.fd).size < file.extent) {
          this.forgetAll(file);
          await h.index.truncate(HEADER_BYTES);
        }
        await h.data.write(data, 0, data.length, index * this.span);
        await h.index.write(record, 0, RECORD_BYTES, HEADER_BYTES + index * RECORD_BYTES);
      });
    } catch (err) {
      // A full or broken cache disk costs speed, never a read.
      log.warn({ op: 'cache-write', file: file.data, err: String(err) });
      return;
    }
    // Its last block was dropped (and its files removed) while this one was being written.
    if (this.files.get(name) !== file) return;
    const key = `${name}/${index}`;
    const before = this.lru.get(key);
    if (before !== undefined) this.stats.bytes -= before;
    else this.stats.blocks++;
    file.blocks.set(index, { hash: Buffer.from(hash), length: data.length });
    file.extent = Math.max(file.extent, index * this.span + data.length);
    this.tell(file, index, true);
    this.lru.delete(key);
    this.lru.set(key, data.length);
    this.stats.bytes += data.length;
    this.stats.writes++;
    await this.evict();
  }

  /** Runs fn with the file's descriptors open (opened or reused; the least used closed past OPEN_FILES_MAX). */
  private async use<T>(file: Cached, fn: (h: Handles) => Promise<T>): Promise<T> {
    file.users++;
    try {
      return await fn(await this.handlesOf(file));
    } finally {
      file.users--;
      if (this.open.size > OPEN_FILES_MAX) {
        for (const other of this.open) {
          if (this.open.size <= OPEN_FILES_MAX) break;
          if (other.users === 0 && other.pins === 0) await this.release(other);
        }
      }
    }
  }

  /** The file's descriptors, opened (or reused), and it the most recently used open file. */
  private async handlesOf(file: Cached): Promise<Handles> {
    this.open.delete(file);
    this.open.add(file);
    file.handles ??= openHandles(file, this.span);
    return file.handles.catch((err: unknown) => {
      file.handles = undefined;
      throw err;
    });
  }

  private async release(file: Cached): Promise<void> {
    this.open.delete(file);
    const handles = file.handles;
    file.handles = undefined;
    if (!handles) return;
    try {
      const h = await handles;
      await Promise.all([h.data.close(), h.index.close()]);
    } catch {
      // never opened, or closed already
    }
  }

  /** Forgets a block and frees its bytes on disk: its record zeroed, its hole punched. */
  private async drop(file: Cached, index: number): Promise<void> {
    const block = file.blocks.get(index);
    if (!block) return;
    this.forget(file, index, block.length);
    try {
      await this.use(file, async (h) => {
        await h.index.write(Buffer.alloc(RECORD_BYTES), 0, RECORD_BYTES, HEADER_BYTES + index * RECORD_BYTES);
        punchHoleSync(h.data.fd, index * this.span, block.length, file.data);
      });
    } catch (err) {
      log.debug({ op: 'cache-drop', file: file.data, block: index, err: String(err) });
    }
    if (file.blocks.size === 0 && file.pins === 0) await this.remove(file);
  }

  /** Forgets every block of a file whose data file was cut short outside (their bytes are gone already). */
  private forgetAll(file: Cached): void {
    log.warn({ op: 'cache-cut', file: file.data, blocks: file.blocks.size }, 'a cache file was cut short by another program: its blocks are fetched again');
    for (const [index, block] of file.blocks) this.forget(file, index, block.length);
    file.extent = 0;
  }

  /** Takes a block out of the cache's books (its bytes are freed by the caller, or gone). */
  private forget(file: Cached, index: number, length: number): void {
    this.drops++;
    // Watchers first: once told, no read of the block is left outside JS.
    this.tell(file, index, false);
    file.blocks.delete(index);
    this.lru.delete(`${file.name}/${index}`);
    this.stats.bytes -= length;
    this.stats.blocks--;
  }

  /** Forgets a file with no block left and removes its files. */
  private async remove(file: Cached): Promise<void> {
    this.files.delete(file.name);
    await this.release(file);
    await Promise.all([fs.promises.unlink(file.data), fs.promises.unlink(file.index)].map((p) => p.catch(() => undefined)));
  }

  private async evict(): Promise<void> {
    while (this.stats.bytes > this.maxBytes) {
      const oldest = this.lru.keys().next().value;
      if (oldest === undefined) break;
      const slash = oldest.lastIndexOf('/');
      const file = this.files.get(oldest.slice(0, slash));
      const index = Number(oldest.slice(slash + 1));
      this.stats.evictions++;
      if (!file?.blocks.has(index)) {
        // Not held any more (cannot happen; never loop on it).
        this.stats.bytes -= this.lru.get(oldest) ?? 0;
        this.stats.blocks--;
        this.lru.delete(oldest);
        continue;
      }
      await this.drop(file, index);
    }
  }

  private async rebuild(): Promise<void> {
    const found: Array<{ file: Cached; used: number }> = [];
    for (const entry of await fs.promises.readdir(this.dir)) {
      if (!entry.endsWith('.index')) continue;
      const file = this.entryOf(entry.slice(0, -'.index'.length));
      const [raw, st] = await Promise.all([fs.promises.readFile(file.index).catch(() => undefined), fs.promises.stat(file.data).catch(() => undefined)]);
      // Being made right now (another process reading the cache, as tests do): left alone.
      if (!raw || !st || raw.length < HEADER_BYTES) continue;
      if (!raw.subarray(0, MAGIC.length).equals(MAGIC) || raw.readUInt32LE(MAGIC.length) !== this.span) {
        // Written with another block span or format: its blocks are not where this cache looks.
        await Promise.all([fs.promises.unlink(file.index), fs.promises.unlink(file.data)].map((p) => p.catch(() => undefined)));
        continue;
      }
      for (let at = HEADER_BYTES, index = 0; at + RECORD_BYTES <= raw.length; at += RECORD_BYTES, index++) {
        const length = raw.readUInt32LE(at + BLAKE3_BYTES);
        if (length === 0 || length > this.span) continue;
        file.blocks.set(index, { hash: Buffer.from(raw.subarray(at, at + BLAKE3_BYTES)), length });
        file.extent = Math.max(file.extent, index * this.span + length);
      }
      if (file.blocks.size > 0) found.push({ file, used: st.mtimeMs });
    }
    found.sort((a, b) => a.used - b.used);
    for (const { file } of found) {
      this.files.set(file.name, file);
      for (const [index, block] of file.blocks) {
        this.lru.set(`${file.name}/${index}`, block.length);
        this.stats.bytes += block.length;
        this.stats.blocks++;
      }
    }
    await this.evict();
  }
}

/** Opens (creating) a file's data and index files; a new index gets its header (magic, span). */
async function openHandles(file: Cached, span: number): Promise<Handles> {
  const data = await fs.promises.open(file.data, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    const index = await fs.promises.open(file.index, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    if ((await index.stat()).size < HEADER_BYTES) {
      const header = Buffer.alloc(HEADER_BYTES);
      MAGIC.copy(header);
      header.writeUInt32LE(span, MAGIC.length);
      await index.write(header, 0, HEADER_BYTES, 0);
    }
    return { data, index };
  } catch (err) {
    await data.close();
    throw err;
  }
}

/** A file key's name on disk: a hash of the key (any string naming the exact bytes). */
function nameOf(fileKey: string): string {
  return blake3(fileKey).toString('hex').slice(0, 32);
}
