// Telling the kernel to forget what it cached of the tree, so names and attributes can be
// cached long and still show changes made outside the mount at once.
//
// libfuse2's high-level API has no call for this (fuse_invalidate is an obsolete no-op)
// and fuse-native exposes none, but the kernel takes FUSE_NOTIFY_INVAL_ENTRY messages on
// the connection's /dev/fuse descriptor from anyone holding it: that is all
// fuse_lowlevel_notify_inval_entry does. The only node id we know is the root's (1), so
// we invalidate a child of the root (a device folder, .content); the kernel then drops
// that name and every cached name below it (d_invalidate), and the next lookups fetch
// fresh attributes. The write takes the root directory's inode lock, which a lookup
// waiting for our JS thread may hold: it is done from a worker thread, never from the
// thread that answers FUSE requests.
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { log } from '../log.js';

/** Open /dev/fuse descriptors of this process. */
export function devFuseFds(): Set<number> {
  const fds = new Set<number>();
  for (const name of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${name}`) === '/dev/fuse') fds.add(Number(name));
    } catch {
      /* closed while we looked */
    }
  }
  return fds;
}

const FUSE_ROOT_ID = 1n;
const FUSE_NOTIFY_INVAL_ENTRY = 3;

/** The notification message: fuse_out_header, fuse_notify_inval_entry_out, the name and a NUL. */
export function invalEntryMessage(parent: bigint, name: string): Buffer {
  const bytes = Buffer.from(name);
  const msg = Buffer.alloc(16 + 16 + bytes.length + 1);
  msg.writeUInt32LE(msg.length, 0); // len
  msg.writeInt32LE(FUSE_NOTIFY_INVAL_ENTRY, 4); // error field carries the notify code
  msg.writeBigUInt64LE(0n, 8); // unique 0: a notification, not a reply
  msg.writeBigUInt64LE(parent, 16);
  msg.writeUInt32LE(bytes.length, 24);
  bytes.copy(msg, 32);
  return msg;
}

// The worker: writes each message it gets; ENOENT only means the name was not cached.
// When the tree is unmounted from outside, libfuse closes the descriptor before we hear
// of it, and the number may already name another file: it is checked to still be
// /dev/fuse (same device number) before each batch, and never written again otherwise.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
let gone = false;
parentPort.on('message', (msgs) => {
  const failures = [];
  try { gone ||= fs.fstatSync(workerData.fd).rdev !== workerData.rdev; } catch { gone = true; }
  if (gone) failures.push('EBADF');
  else for (const msg of msgs) {
    try { fs.writeSync(workerData.fd, msg); } catch (err) { if (err.code !== 'ENOENT') failures.push(err.code || String(err)); }
  }
  parentPort.postMessage(failures);
});`;

export class KernelInvalidator {
  private readonly worker: Worker;
  private pending = new Set<string>();
  private busy = false;
  private closed = false;
  /** Calls made and messages the kernel refused (not counting names it had not cached). */
  readonly stats = { sent: 0, failed: 0 };

  constructor(private readonly fd: number) {
    this.worker = new Worker(WORKER, { eval: true, workerData: { fd, rdev: fs.statSync('/dev/fuse').rdev } });
    this.worker.unref();
    this.worker.on('message', (failures: string[]) => {
      this.busy = false;
      if (failures.length) {
        this.stats.failed += failures.length;
        log.warn({ op: 'invalidate', fd, failures }, 'the kernel refused a cache invalidation; outside changes show after the attribute timeout');
      }
      this.flush();
    });
    this.worker.on('error', (err) => log.warn({ op: 'invalidate', err: String(err) }, 'invalidation worker failed'));
  }

  /** Finds the descriptor the mount opened (the one /dev/fuse fd that was not there before). */
  static afterMount(before: Set<number>): KernelInvalidator | undefined {
    const fresh = [...devFuseFds()].filter((fd) => !before.has(fd));
    if (fresh.length !== 1) {
      log.warn({ op: 'invalidate', candidates: fresh }, 'could not tell which /dev/fuse descriptor is the mount; outside changes show after the attribute timeout');
      return undefined;
    }
    return new KernelInvalidator(fresh[0]!);
  }

  /** Drops the kernel's cached names and attributes under these children of the mount root. */
  invalidate(rootChildren: Iterable<string>): void {
    if (this.closed) return;
    for (const name of rootChildren) this.pending.add(name);
    this.flush();
  }

  /** Resolves when every invalidation asked for so far has been written. */
  async settled(): Promise<void> {
    while (!this.closed && (this.busy || this.pending.size)) await new Promise((r) => setTimeout(r, 5));
  }

  private flush(): void {
    // One batch in flight; names asked for meanwhile go in the next one.
    if (this.busy || this.closed || this.pending.size === 0) return;
    const msgs = [...this.pending].map((name) => invalEntryMessage(FUSE_ROOT_ID, name));
    log.debug({ op: 'invalidate', names: [...this.pending] }, 'telling the kernel to drop cached names');
    this.pending.clear();
    this.busy = true;
    this.stats.sent += msgs.length;
    this.worker.postMessage(msgs);
  }

  /** Stops before the mount closes its descriptor (whose number could then be reused). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.worker.terminate();
  }
}
