// Full BLAKE3 hashes of files written through the mount in deep locations, computed
// after the FUSE call that wrote them: read a chunk at a time off the thread (libuv),
// one file at a time, and recorded only when the file is still the one identified.
import fsp from 'node:fs/promises';
import type fs from 'node:fs';
import { log } from '../../log.js';
import type { ContentStore } from '../content/store.js';
import { fullHashAsync } from '../jobs/copy-file.js';

/** 1 MiB per read: each hasher update holds the thread ~1 ms, never a whole file's worth. */
const CHUNK_BYTES = 1 << 20;

interface Wanted {
  contentId: string;
  size: number;
  mtimeMs: number;
}

export class DeferredFullHash {
  private readonly queue = new Map<string, Wanted>();
  private running: Promise<void> | undefined;

  constructor(private readonly contents: ContentStore) {}

  /** Hashes `file` later, if it still has the size and time it had when `contentId` was computed. */
  add(file: string, contentId: string, st: fs.Stats): void {
    // A newer write of the same file replaces the older wish.
    this.queue.delete(file);
    this.queue.set(file, { contentId, size: st.size, mtimeMs: st.mtimeMs });
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  /** Resolves when every queued file is hashed or skipped. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    for (;;) {
      const next = this.queue.entries().next();
      if (next.done) return;
      const [file, wanted] = next.value;
      this.queue.delete(file);
      if (this.contents.get(wanted.contentId)?.fullHash) continue;
      try {
        if (!(await unchanged(file, wanted))) continue;
        const hash = await fullHashAsync(file, CHUNK_BYTES);
        // Written again while it was read: that write queues it anew.
        if (!(await unchanged(file, wanted))) continue;
        this.contents.recordFullHash(wanted.contentId, hash);
      } catch (err) {
        log.debug({ op: 'full-hash', file, err: String(err) }, 'full hash skipped');
      }
    }
  }
}

async function unchanged(file: string, wanted: Wanted): Promise<boolean> {
  const st = await fsp.stat(file);
  return st.size === wanted.size && st.mtimeMs === wanted.mtimeMs;
}
