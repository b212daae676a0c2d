// Full BLAKE3 of whole files on a worker thread, as b3sum does it: each small chunk read
// synchronously and hashed while it is still in the CPU's cache. Reading on the thread pool
// while the main thread hashed the chunk before (two 2 MiB buffers) measured 0.80 s for
// 2 GiB in the page cache, this 0.54 s, b3sum --num-threads 1 0.54 s; and the main thread
// stays free (a scrub in the running mount never holds up its FUSE requests).
// Files are hashed one after another in the order asked: a scrub asks for the next file
// while it records the one before, so the worker is never idle between them.
import fs from 'node:fs';
import { isMainThread, Worker, workerData, parentPort } from 'node:worker_threads';
import { Blake3Hasher } from '@napi-rs/blake-hash';

/** Bytes read and hashed at a time: small enough to stay in the CPU's cache between the two. */
const CHUNK_BYTES = 128 * 1024;
/** The worker says how far it got about this often (bytes). */
const PROGRESS_BYTES = 8 * 1024 * 1024;
/** A throttled read sleeps in slices this long, so a cancel is seen soon. */
const SLEEP_SLICE_MS = 50;

/** Shared slots: the highest task id cancelled (every task up to it stops), and one to sleep on. */
const CANCELLED = 0;
const SLEEP = 1;

interface HashThreadData {
  sdfsHashThread: true;
  shared: Int32Array;
}

interface HashRequest {
  id: number;
  file: string;
  bytesPerSec: number;
}

type HashReply = { id: number; progress: number } | { id: number; hash: string } | { id: number; cancelled: true } | { id: number; error: { message: string; code?: string } };

/** Thrown (as the task's rejection) when a hash was cancelled before it finished. */
export class HashCancelled extends Error {
  constructor(file: string) {
    super(`hash of ${file} cancelled`);
    this.name = 'HashCancelled';
  }
}

/** One file's hash: under way or queued in the worker. */
export interface HashTask {
  readonly file: string;
  /** The hex BLAKE3; rejects with the read's error (its errno in `code`) or HashCancelled. */
  readonly done: Promise<string>;
  /** Where the bytes hashed so far go from now on (the step that owns the task). */
  onProgress(listener: (bytes: number) => void): void;
}

interface Pending {
  task: HashTask;
  resolve: (hash: string) => void;
  reject: (err: Error) => void;
  listener?: (bytes: number) => void;
}

export class HashThread {
  private readonly worker: Worker;
  private readonly shared = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failed: Error | undefined;

  constructor() {
    const data: HashThreadData = { sdfsHashThread: true, shared: this.shared };
    this.worker = new Worker(new URL(import.meta.url), { workerData: data });
    this.worker.unref();
    this.worker.on('message', (reply: HashReply) => this.received(reply));
    const fail = (err: Error) => {
      this.failed = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the hashing thread ended (exit ${code})`)));
  }

  /** Queues a file's hash, read at most `bytesPerSec` (0: no limit). */
  hash(file: string, bytesPerSec: number): HashTask {
    const id = this.nextId++;
    let pending!: Pending;
    const done = new Promise<string>((resolve, reject) => {
      pending = { resolve, reject, task: undefined as unknown as HashTask };
    });
    done.catch(() => undefined); // a task cancelled or never awaited is not an unhandled rejection
    pending.task = { file, done, onProgress: (listener) => (pending.listener = listener) };
    if (this.failed) {
      pending.reject(this.failed);
      return pending.task;
    }
    this.pending.set(id, pending);
    this.worker.ref(); // work outstanding: the process waits for it
    this.worker.postMessage({ id, file, bytesPerSec } satisfies HashRequest);
    return pending.task;
  }

  /** Stops every task asked for so far (the one under way at its next chunk); each rejects with HashCancelled. */
  async cancelAll(): Promise<void> {
    const ids = [...this.pending.keys()];
    if (ids.length === 0) return;
    Atomics.store(this.shared, CANCELLED, Math.max(...ids));
    Atomics.notify(this.shared, SLEEP);
    await Promise.allSettled(ids.map((id) => this.pending.get(id)?.task.done));
  }

  async close(): Promise<void> {
    await this.cancelAll();
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }

  private received(reply: HashReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    if ('progress' in reply) {
      p.listener?.(reply.progress);
      return;
    }
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if ('hash' in reply) p.resolve(reply.hash);
    else if ('cancelled' in reply) p.reject(new HashCancelled(p.task.file));
    else p.reject(Object.assign(new Error(reply.error.message), reply.error.code ? { code: reply.error.code } : {}));
  }
}

// ---------------------------------------------------------------- the worker's side

function hashFile(request: HashRequest, shared: Int32Array, post: (reply: HashReply) => void): void {
  const cancelled = () => Atomics.load(shared, CANCELLED) >= request.id;
  if (cancelled()) return post({ id: request.id, cancelled: true });
  const fd = fs.openSync(request.file, 'r');
  try {
    const buffer = Buffer.allocUnsafeSlow(CHUNK_BYTES);
    const hasher = new Blake3Hasher();
    const started = performance.now();
    let pos = 0;
    let told = 0;
    for (;;) {
      const n = fs.readSync(fd, buffer, 0, CHUNK_BYTES, pos);
      if (n === 0) break;
      hasher.update(n === CHUNK_BYTES ? buffer : buffer.subarray(0, n));
      pos += n;
      if (pos - told >= PROGRESS_BYTES) {
        post({ id: request.id, progress: pos });
        told = pos;
      }
      if (request.bytesPerSec > 0) {
        // Sleep until the rate allows the next chunk, waking for a cancel.
        for (let due = (pos / request.bytesPerSec) * 1000 - (performance.now() - started); due > 1 && !cancelled(); due = (pos / request.bytesPerSec) * 1000 - (performance.now() - started)) {
          Atomics.wait(shared, SLEEP, 0, Math.min(due, SLEEP_SLICE_MS));
        }
      }
      if (cancelled()) return post({ id: request.id, cancelled: true });
    }
    post({ id: request.id, progress: pos });
    post({ id: request.id, hash: hasher.digest('hex') });
  } finally {
    fs.closeSync(fd);
  }
}

if (!isMainThread && (workerData as HashThreadData | undefined)?.sdfsHashThread) {
  const { shared } = workerData as HashThreadData;
  const port = parentPort!;
  port.on('message', (request: HashRequest) => {
    try {
      hashFile(request, shared, (reply) => port.postMessage(reply));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      port.postMessage({ id: request.id, error: { message: e.message ?? String(err), ...(e.code ? { code: e.code } : {}) } } satisfies HashReply);
    }
  });
}
