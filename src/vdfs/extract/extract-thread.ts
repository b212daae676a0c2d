// Extraction on a worker thread, one file at a time in the order asked: pdf.js and the
// unzip run there, so the process's main thread (FUSE requests) stays free while a PDF parses.
// A file that takes too long (a malformed document) is given up on: its worker is ended and
// a fresh one takes the next file. This module is also the worker's entry (its last lines).
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { ExtractError } from './extract-error.js';
import type { Extracted, ExtractOptions } from './extract.js';

export interface ExtractThreadOptions {
  /** One file taking longer than this fails with ExtractError, and its worker is replaced (ms). */
  timeoutMs?: number;
  /**
   * The worker's JavaScript heap (MiB): a file whose parse keeps growing past it fails (its
   * worker ended) rather than swelling the process. A backstop, set far above what the
   * capped inputs need (about 60 MB over a 12,000-page PDF or 60 MB of docx XML): V8 aborts
   * the whole process, not the worker, when one allocation overshoots the limit by more than
   * Node's 16 MB leeway.
   */
  maxHeapMb?: number;
}

/** Per request: ExtractOptions, and a timeout for this file alone. */
export interface ExtractRequestOptions extends ExtractOptions {
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 20_000;
const DEFAULT_MAX_HEAP_MB = 512;

interface ExtractThreadData {
  sdfsExtractThread: true;
}

interface Request {
  id: number;
  file: string;
  ext: string;
  options: ExtractOptions;
}

type Reply = { id: number; started: true } | { id: number; result: Extracted } | { id: number; error: { message: string; name: string; code?: string } };

interface Job {
  request: Request;
  timeoutMs: number;
  resolve: (x: Extracted) => void;
  reject: (err: Error) => void;
}

export class ExtractThread {
  private readonly timeoutMs: number;
  private readonly maxHeapMb: number;
  private worker: Worker | undefined;
  private readonly queue: Job[] = [];
  private current: Job | undefined;
  private timer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private closed = false;

  constructor(options: ExtractThreadOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxHeapMb = options.maxHeapMb ?? DEFAULT_MAX_HEAP_MB;
  }

  /** What the file's bytes say; rejects with ExtractError when it cannot be parsed or takes too long, with the errno error when it cannot be read. */
  extract(file: string, ext: string, options: ExtractRequestOptions): Promise<Extracted> {
    if (this.closed) return Promise.reject(new Error('the extract thread is closed'));
    return new Promise<Extracted>((resolve, reject) => {
      const request: Request = { id: this.nextId++, file, ext, options: { maxTextBytes: options.maxTextBytes } };
      this.queue.push({ request, timeoutMs: options.timeoutMs ?? this.timeoutMs, resolve, reject });
      this.pump();
    });
  }

  /** Ends the worker; requests not answered yet reject. */
  async close(): Promise<void> {
    this.closed = true;
    const err = new Error('the extract thread was closed');
    for (const job of this.queue.splice(0)) job.reject(err);
    this.finish()?.reject(err);
    await this.dropWorker();
  }

  /** Sends the next request when none is under way. */
  private pump(): void {
    if (this.current || this.closed) return;
    const job = this.queue.shift();
    if (!job) {
      this.worker?.unref(); // idle: the process may exit
      return;
    }
    this.current = job;
    const worker = this.ensureWorker();
    worker.ref(); // work outstanding: the process waits for it
    // Armed now (a fresh worker's start-up counts too) and again when the worker begins the file.
    this.arm(job);
    worker.postMessage(job.request);
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const data: ExtractThreadData = { sdfsExtractThread: true };
    const worker = new Worker(new URL(import.meta.url), { workerData: data, resourceLimits: { maxOldGenerationSizeMb: this.maxHeapMb } });
    worker.on('message', (reply: Reply) => this.received(reply));
    // A worker that dies (out of memory, a crash in a parser) fails the file it was on; the next gets a new one.
    worker.on('error', (err) => this.lost(worker, err.message));
    worker.on('exit', (code) => this.lost(worker, `exit ${code}`));
    this.worker = worker;
    return worker;
  }

  private arm(job: Job): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.timedOut(job), job.timeoutMs);
    this.timer.unref();
  }

  private received(reply: Reply): void {
    const job = this.current;
    if (!job || reply.id !== job.request.id) return;
    if ('started' in reply) {
      this.arm(job);
      return;
    }
    this.finish();
    if ('result' in reply) job.resolve(reply.result);
    else job.reject(reply.error.name === 'ExtractError' ? new ExtractError(reply.error.message) : Object.assign(new Error(reply.error.message), reply.error.code ? { code: reply.error.code } : {}));
    this.pump();
  }

  private timedOut(job: Job): void {
    if (this.current !== job) return;
    this.finish();
    job.reject(new ExtractError(`extraction took longer than ${job.timeoutMs / 1000} s`)); // the caller knows which file
    void this.dropWorker();
    this.pump();
  }

  private lost(worker: Worker, why: string): void {
    if (worker !== this.worker) return;
    this.worker = undefined;
    const job = this.finish();
    job?.reject(new ExtractError(`extraction stopped its thread (${why})`));
    this.pump();
  }

  /** Clears the job under way (and its timer); returns it. */
  private finish(): Job | undefined {
    const job = this.current;
    this.current = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    return job;
  }

  private async dropWorker(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.worker = undefined;
    worker.removeAllListeners();
    worker.on('error', () => undefined); // whatever it says on its way out is no news
    await worker.terminate();
  }
}

// ---------------------------------------------------------------- the worker's side

if (!isMainThread && (workerData as ExtractThreadData | undefined)?.sdfsExtractThread) {
  // Loaded here only: the main thread never holds the parsers.
  const { extractFile } = await import('./extract.js');
  const port = parentPort!;
  port.on('message', (request: Request) => {
    port.postMessage({ id: request.id, started: true } satisfies Reply);
    extractFile(request.file, request.ext, request.options).then(
      (result) => port.postMessage({ id: request.id, result } satisfies Reply),
      (err: unknown) => {
        const e: NodeJS.ErrnoException = err instanceof Error ? err : new Error(String(err));
        port.postMessage({ id: request.id, error: { message: e.message, name: e.name, ...(e.code ? { code: e.code } : {}) } } satisfies Reply);
      },
    );
  });
}
