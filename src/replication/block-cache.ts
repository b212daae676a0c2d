// The disk block cache of remote files, <library>/cache/blocks: one file per block (its
// BLAKE3, then its bytes), verified on every hit, least recently used evicted past a byte
// limit. The index lives in memory and is rebuilt from the directory at start (mtime = last use).
import fs from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { config } from '../config.js';
import { log } from '../log.js';
import { BLAKE3_BYTES } from './block-messages.js';

export interface BlockCacheStats {
  hits: number;
  misses: number;
  /** Blocks whose bytes no longer matched their hash: deleted and fetched again. */
  corrupt: number;
  evictions: number;
  writes: number;
  bytes: number;
  blocks: number;
}

interface Slot {
  file: string;
  bytes: number;
}

export interface BlockCacheOptions {
  maxBytes?: number;
}

export class BlockCache {
  readonly stats: BlockCacheStats = { hits: 0, misses: 0, corrupt: 0, evictions: 0, writes: 0, bytes: 0, blocks: 0 };
  readonly maxBytes: number;
  /** Map order is recency order: first = least recently used. */
  private readonly slots = new Map<string, Slot>();
  private readonly writing = new Map<string, Promise<void>>();

  private constructor(readonly dir: string, options: BlockCacheOptions) {
    this.maxBytes = options.maxBytes ?? config.cacheMaxBytes;
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
    return path.join(libraryDir, 'cache', 'blocks');
  }

  /** The verified bytes of a block, or undefined (not cached, or corrupt and now removed). */
  async get(fileKey: string, index: number): Promise<Buffer | undefined> {
    const name = blockName(fileKey, index);
    const slot = this.slots.get(name);
    if (!slot) {
      this.stats.misses++;
      return undefined;
    }
    let raw: Buffer;
    try {
      raw = await fs.promises.readFile(slot.file);
    } catch {
      this.forget(name);
      this.stats.misses++;
      return undefined;
    }
    const data = raw.subarray(BLAKE3_BYTES);
    if (raw.length < BLAKE3_BYTES || !blake3(data).equals(raw.subarray(0, BLAKE3_BYTES))) {
      this.stats.corrupt++;
      this.stats.misses++;
      log.warn({ op: 'cache-corrupt', file: slot.file, corrupt: this.stats.corrupt }, 'a cached block no longer matches its BLAKE3: removed, fetched again');
      this.forget(name);
      await fs.promises.unlink(slot.file).catch(() => undefined);
      return undefined;
    }
    this.stats.hits++;
    this.slots.delete(name);
    this.slots.set(name, slot);
    const now = new Date();
    void fs.promises.utimes(slot.file, now, now).catch(() => undefined);
    return data;
  }

  has(fileKey: string, index: number): boolean {
    return this.slots.has(blockName(fileKey, index));
  }

  /** Stores a block whose hash the caller verified; resolves when it is on disk. */
  put(fileKey: string, index: number, data: Buffer, hash: Buffer): Promise<void> {
    const name = blockName(fileKey, index);
    if (data.length + BLAKE3_BYTES > this.maxBytes) return Promise.resolve();
    const inflight = this.writing.get(name);
    if (inflight) return inflight;
    const write = this.write(name, data, hash).finally(() => this.writing.delete(name));
    this.writing.set(name, write);
    return write;
  }

  /** Waits for every write in flight (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.writing.values()]);
  }

  /** The on-disk path of a cached block (tests corrupt it on purpose). */
  pathOf(fileKey: string, index: number): string | undefined {
    return this.slots.get(blockName(fileKey, index))?.file;
  }

  private async write(name: string, data: Buffer, hash: Buffer): Promise<void> {
    const file = path.join(this.dir, name.slice(0, 2), name);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      await fs.promises.mkdir(path.dirname(file), { recursive: true });
      const handle = await fs.promises.open(tmp, 'w', 0o600);
      try {
        await handle.writev([hash, data]);
      } finally {
        await handle.close();
      }
      await fs.promises.rename(tmp, file);
    } catch (err) {
      // A full or broken cache disk costs speed, never a read.
      log.warn({ op: 'cache-write', file, err: String(err) });
      await fs.promises.unlink(tmp).catch(() => undefined);
      return;
    }
    this.forget(name);
    this.slots.set(name, { file, bytes: data.length + BLAKE3_BYTES });
    this.stats.bytes += data.length + BLAKE3_BYTES;
    this.stats.blocks++;
    this.stats.writes++;
    await this.evict();
  }

  private forget(name: string): void {
    const slot = this.slots.get(name);
    if (!slot) return;
    this.slots.delete(name);
    this.stats.bytes -= slot.bytes;
    this.stats.blocks--;
  }

  private async evict(): Promise<void> {
    const removals: Array<Promise<void>> = [];
    for (const [name, slot] of this.slots) {
      if (this.stats.bytes <= this.maxBytes) break;
      this.forget(name);
      this.stats.evictions++;
      removals.push(fs.promises.unlink(slot.file).catch(() => undefined));
    }
    await Promise.all(removals);
  }

  private async rebuild(): Promise<void> {
    const found: Array<{ name: string; slot: Slot; used: number }> = [];
    for (const sub of await fs.promises.readdir(this.dir)) {
      const subdir = path.join(this.dir, sub);
      let names: string[];
      try {
        names = await fs.promises.readdir(subdir);
      } catch {
        continue;
      }
      await Promise.all(names.map(async (name) => {
        const file = path.join(subdir, name);
        if (name.endsWith('.tmp')) return void (await fs.promises.unlink(file).catch(() => undefined));
        const st = await fs.promises.stat(file).catch(() => undefined);
        if (st?.isFile()) found.push({ name, slot: { file, bytes: st.size }, used: st.mtimeMs });
      }));
    }
    found.sort((a, b) => a.used - b.used);
    for (const f of found) {
      this.slots.set(f.name, f.slot);
      this.stats.bytes += f.slot.bytes;
      this.stats.blocks++;
    }
    await this.evict();
  }
}

/** A block's file name: a hash of the file key (any string naming the exact bytes) and the index. */
function blockName(fileKey: string, index: number): string {
  return `${blake3(fileKey).toString('hex').slice(0, 32)}-${index}`;
}
