// One run of a claimed job: its steps in order, each done on disk first and then
// recorded (step done, index updated, checkpoint) in one transaction, so a run killed
// at any point resumes at the step it was on and finds what that step already did. A
// record held up by another process holding the library waits for it (see record()).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { SdError } from '../../errors.js';
import { AuditLog } from '../audit.js';
import { log } from '../../log.js';
import { contentHashOfFile, type ContentHash } from '../content/identity.js';
import type { Library } from '../library.js';
import { listLocations, type Location } from '../locations.js';
import { freeName, renameTarget } from '../actions/conflict.js';
import { fsError, tryFs } from '../actions/errno.js';
import { IndexUpdater, baseName, parentRel } from '../actions/index-update.js';
import type { ConflictMode } from '../actions/types.js';
import { copyFileChunked, copySmall, fullHashAsync, type CopyFileResult } from './copy-file.js';
import { HashCancelled, HashThread, type HashTask } from './hash-thread.js';
import { scrubVerdict } from './scrub-verdict.js';
import { isCurrent } from '../content/copy-checks.js';
import { repairSource } from '../actions/repair.js';
import { needsMount } from '../actions/fetch.js';
import type { Job, JobItem, JobProgress, JobStore } from './job-store.js';
import { jobOptions } from './options.js';
import { bootId } from './owner.js';
import { lstatOrUndefined } from '../fs-stat.js';
import { whenLibraryFree } from '../db/when-free.js';

export type Interruption = 'pause' | 'cancel' | 'stop';

/** Thrown inside a run when it must stop at a checkpoint (pause, cancel, process shutdown). */
export class JobInterrupted extends Error {
  constructor(readonly reason: Interruption) {
    super(`job ${reason}`);
  }
}

export interface ProgressEvent {
  jobId: number;
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** The file being worked on. */
  current: string | null;
}

export interface RunHooks {
  /** Asked at every chunk and between steps: an interruption to honour, or null. */
  interruption(): Interruption | null;
  onProgress?(event: ProgressEvent): void;
  /** Overrides the job's own bandwidth limit (bytes/s, 0 = none). */
  bwlimit?: number;
  /** Fetches a content's bytes from paired devices (the running node's replication); absent in a CLI process. */
  fetchContent?: ContentFetcher;
  /** Told when a record starts waiting for another process that holds the library past the busy timeout. */
  onLibraryBusy?(): void;
}

/** Writes the bytes of a content, fetched from paired devices, to `dest`; true when their full BLAKE3 is `fullHash`. */
export type ContentFetcher = (want: { contentId: string; size: number; fullHash: string }, dest: string) => Promise<boolean>;

const STAGING_FOLDER = '.sd-staging';
const execFileAsync = promisify(execFile);

/** Puts the progress back as it was before a record that did not go through. */
function restore(progress: JobProgress, saved: JobProgress): void {
  for (const key of Object.keys(progress)) if (!(key in saved)) delete (progress as unknown as Record<string, unknown>)[key];
  Object.assign(progress, saved);
}

function sampled(file: string): ContentHash | undefined {
  return contentHashOfFile(file);
}

function sampledId(file: string): string | null {
  return sampled(file)?.contentId ?? null;
}

/** Whether the file on disk is a file as its entry records it (size and mtime): not changed since it was indexed. */
function indexedAsIs(entry: { kind: string; size: number; mtime: number }, st: fs.Stats | undefined): st is fs.Stats {
  return st !== undefined && st.isFile() && entry.kind === 'file' && st.size === entry.size && st.mtimeMs === entry.mtime;
}

/** fsync of a file or folder (a folder: so the names renamed into it survive a crash). */
async function fsyncPath(p: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(p, 'r');
    await fh.sync();
  } catch {
    // Gone since (moved on by a later step), or a file system that refuses fsync on folders.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** syncfs(2) of the file systems holding these paths, through `sync -f` (async: never blocks the mount). */
async function syncFileSystems(paths: string[]): Promise<boolean> {
  const byDevice = new Map<number, string>();
  for (const p of paths) {
    const st = lstatOrUndefined(p);
    if (st && !byDevice.has(st.dev)) byDevice.set(st.dev, p);
  }
  try {
    await Promise.all([...byDevice.values()].map((p) => execFileAsync('sync', ['-f', p], { timeout: 120_000 })));
    return true;
  } catch (err) {
    log.debug({ op: 'job', err: String(err) }, "'sync -f' failed; fsync one by one");
    return false;
  }
}

interface Target {
  /** Where the step's result goes, or null to skip it. */
  final: string | null;
  identical: boolean;
}

export class JobRun {
  private readonly index: IndexUpdater;
  private readonly locations: Location[];
  /** Folder destinations that were renamed (or skipped: null) on conflict; what is inside follows. */
  private readonly redirects = new Map<string, string | null>();
  private readonly progress: JobProgress;
  private readonly onConflict: ConflictMode;
  private readonly verify: boolean;
  private readonly bwlimit: number;
  private lastCheckpoint = 0;
  private lastDurable = 0;
  /** Small files landed since the last durable point, and folders whose entries changed. */
  private readonly unsynced: string[] = [];
  private readonly dirtyDirs = new Set<string>();
  private lastControlPoll = 0;
  /** The step after the one running (a scrub asks for its hash ahead). */
  private nextItem: JobItem | undefined;
  /** Where a scrub's files are hashed (started by the first), and the next step's hash, asked for ahead. */
  private hashThread: HashThread | undefined;
  private hashAhead: HashTask | undefined;
  private lastYield = performance.now();
  private readonly stagingDirs = new Set<string>();
  private runStarted = 0;

  constructor(
    private readonly library: Library,
    private readonly store: JobStore,
    private readonly job: Job,
    private readonly hooks: RunHooks,
  ) {
    this.index = new IndexUpdater(library);
    this.locations = listLocations(library.db, library.device.id);
    this.progress = { ...job.progress };
    this.onConflict = job.payload.onConflict;
    this.verify = job.payload.verify;
    this.bwlimit = hooks.bwlimit ?? job.payload.bwlimit;
    for (const item of store.redirectedDirs(job.id)) if (item.dst) this.redirects.set(item.dst, item.status === 'skipped' ? null : item.finalDst);
  }

  get state(): JobProgress {
    return this.progress;
  }

  /** Runs the steps from where the job stands; throws JobInterrupted or the step's error. */
  async execute(): Promise<void> {
    this.runStarted = performance.now();
    this.progress.runs++;
    this.progress.resumedAtBytes = 0;
    this.lastDurable = performance.now();
    try {
      if (this.progress.durableBoot !== bootId() && this.progress.durableSeq < this.progress.nextSeq) await this.reverifyAfterReboot();
      for (;;) {
        const page = this.store.items(this.job.id, this.progress.nextSeq);
        if (page.length === 0) break;
        for (const [i, item] of page.entries()) {
          const interruption = this.pollInterruption();
          if (interruption) throw new JobInterrupted(interruption);
          this.nextItem = page[i + 1];
          if (item.status === null) await this.step(item);
          this.progress.nextSeq = item.seq + 1;
          if (performance.now() - this.lastDurable >= jobOptions.syncEveryMs) await this.makeDurable();
          await this.maybeYield();
        }
      }
      this.progress.current = null;
      await this.makeDurable();
      await this.cleanStaging();
    } catch (err) {
      // Paused or stopped: what is done so far is made durable before the run lets go (the
      // job manager records it as it settles the job).
      if (err instanceof JobInterrupted) await this.makeDurable({ record: false }).catch(() => undefined);
      throw err;
    } finally {
      this.hashAhead = undefined;
      await this.hashThread?.close();
      this.hashThread = undefined;
      this.countTime();
    }
  }

  /**
   * fsyncs the small files and the folders changed since the last durable point (many at
   * once), then records that every finished step is durable (or only notes it, for the
   * caller to record).
   */
  private async makeDurable(options = { record: true }): Promise<void> {
    const files = this.unsynced.splice(0);
    const dirs = [...this.dirtyDirs];
    this.dirtyDirs.clear();
    const paths = [...files, ...dirs];
    // Many paths: one syncfs per file system (`sync -f`, async) beats an fsync each by far.
    if (paths.length > jobOptions.fsyncParallel && (await syncFileSystems(dirs.length ? dirs : files))) paths.length = 0;
    for (let i = 0; i < paths.length; i += jobOptions.fsyncParallel) {
      await Promise.all(paths.slice(i, i + jobOptions.fsyncParallel).map(fsyncPath));
    }
    this.lastDurable = performance.now();
    this.progress.durableSeq = this.progress.nextSeq;
    this.progress.durableBoot = bootId();
    if (options.record) await this.checkpoint();
  }

  /**
   * The machine rebooted since the last durable point: steps finished after it may have
   * lost their bytes. Each copy is checked against its source again; one that does not
   * match is removed and done again.
   */
  private async reverifyAfterReboot(): Promise<void> {
    const from = this.progress.durableSeq;
    const until = this.progress.nextSeq;
    log.info({ op: 'job', job: this.job.id, from, until }, 'rebooted since the last durable point; checking those steps again');
    for (let seq = from; seq < until; ) {
      const page = this.store.items(this.job.id, seq);
      if (page.length === 0) break;
      for (const item of page) {
        seq = item.seq + 1;
        if (item.seq >= until) break;
        if ((item.op !== 'copy' && item.op !== 'move') || item.status !== 'done' || !item.finalDst) continue;
        const src = item.src ? lstatOrUndefined(item.src) : undefined;
        const there = lstatOrUndefined(item.finalDst);
        const intact = src ? there !== undefined && this.holds(item.finalDst, src.size, sampledId(item.src!)) : there?.size === item.size;
        if (intact) continue;
        if (!src) throw new SdError('IO', `${item.finalDst} was damaged by a power loss and its source ${item.src} was already moved away; restore it from another copy`);
        fs.rmSync(item.finalDst, { force: true });
        await this.record('reset', () => this.store.resetItem(this.job.id, item.seq));
        this.progress.filesDone--;
        this.progress.bytesDone -= item.size;
      }
    }
    this.progress.nextSeq = from;
  }

  /** Adds the time run since the last count to copyMs (kept with every checkpoint, for throughput). */
  private countTime(): void {
    const now = performance.now();
    this.progress.copyMs += Math.round(now - this.runStarted);
    this.runStarted = now;
  }

  /** Removes the part file of the step in flight (cancel). */
  async discardPart(): Promise<void> {
    const part = this.progress.current?.part;
    if (part) fs.rmSync(part, { force: true });
    this.progress.current = null;
    await this.cleanStaging();
  }

  private async step(item: JobItem): Promise<void> {
    this.report(item.src ?? item.dst);
    switch (item.op) {
      case 'mkdir':
        return this.mkdir(item);
      case 'copy':
      case 'move':
        return lstatOrUndefined(item.src!)?.isSymbolicLink() ? this.symlink(item) : this.copy(item);
      case 'symlink':
        return this.symlink(item);
      case 'rename':
        return this.rename(item);
      case 'rmdir':
        return this.rmdir(item);
      case 'trash':
        return this.trash(item);
      case 'remove':
        return this.remove(item);
      case 'scrub':
        return this.scrub(item);
      case 'repair':
        return this.repair(item);
      case 'fetch':
        return this.fetch(item);
    }
  }

  /**
   * Puts a content this device lacks at dst: fetched from the paired devices holding it,
   * checked against its full BLAKE3, renamed into place (a different file at dst is kept:
   * the copy gets a numbered name), indexed as a verified copy. Skipped when this device
   * holds a verified copy already (a step run again after a kill).
   */
  private async fetch(item: JobItem): Promise<void> {
    const dst = item.dst!;
    const contentId = item.contentId!;
    const fullHash = this.index.contents.get(contentId)?.fullHash;
    if (!fullHash) throw new SdError('NOT_FOUND', `content ${contentId} has no full BLAKE3 known; nothing was fetched`);
    if (this.index.checks.verifiedCopies(this.library.device.id, fullHash).length > 0) return this.finish(item, 'skipped', null, () => this.progress.identical++, item.size);
    if (!this.hooks.fetchContent) throw needsMount(dst);
    const part = this.partPath(dst, item.seq);
    const made = tryFs(`make the folder ${path.dirname(dst)}`, () => fs.mkdirSync(path.dirname(dst), { recursive: true }));
    const ok = await this.hooks.fetchContent({ contentId, size: item.size, fullHash }, part).catch(() => false);
    if (!ok) {
      fs.rmSync(part, { force: true });
      throw new SdError('IO', `no online paired device delivered content ${contentId} with its BLAKE3 (${fullHash.slice(0, 16)}…); resume the job when one is online`);
    }
    const final = lstatOrUndefined(dst) ? freeName(dst) : dst;
    tryFs(`move the fetched bytes into place as ${final}`, () => fs.renameSync(part, final));
    this.progress.copiedBytes += item.size;
    this.progress.verified++;
    await this.finish(item, 'done', final, () => {
      if (made) this.placeAt(made, undefined, null, true);
      this.placeAt(final, sampled(final) ?? null, fullHash);
    }, item.size);
  }

  /**
   * Replaces a corrupt file with a verified copy of its bytes: copied into a part file,
   * its full BLAKE3 checked against the corrupt file's last good check, given the file's
   * mode and times, renamed over it. A file edited since it was found corrupt is left alone.
   */
  private async repair(item: JobItem): Promise<void> {
    const dst = item.dst!;
    const where = this.locate(dst);
    const entry = where && this.index.entryAt(where.location, where.rel);
    const st = lstatOrUndefined(dst);
    const check = entry && this.index.checks.get(entry.id);
    if (!entry || !indexedAsIs(entry, st) || !isCurrent(check, entry) || !check.corrupt) return this.finish(item, 'skipped', null, () => this.progress.skipped++, item.size);
    const expected = check.fullHash;
    // Looked up again: the copy the plan found may have changed since. A copy here first, else a peer's.
    const source = repairSource(this.library, entry, expected);
    const part = this.partPath(dst, item.seq);
    const base = this.progress.bytesDone;
    let copied: { size: number; fullHash: string | null };
    try {
      if (source) {
        copied = await copyFileChunked({
          src: source, part, resumeAt: 0, fullHash: true, chunkBytes: jobOptions.scrubChunkBytes, fsync: true, bwlimit: this.bwlimit,
          onChunk: (bytes) => {
            this.hooks.onProgress?.({ ...this.counts(), bytesDone: base + bytes, current: path.basename(dst) });
            const interruption = this.pollInterruption();
            if (interruption) throw new JobInterrupted(interruption);
          },
        });
      } else if (this.hooks.fetchContent && entry.contentId) {
        const ok = await this.hooks.fetchContent({ contentId: entry.contentId, size: entry.size, fullHash: expected }, part);
        copied = { size: entry.size, fullHash: ok ? expected : null };
      } else {
        throw new SdError('NOT_FOUND', `no verified copy of ${dst} is on this device; a paired device's copy is fetched by the running 'sd mount' (it runs this job when it runs)`);
      }
    } catch (err) {
      fs.rmSync(part, { force: true });
      if (err instanceof JobInterrupted || err instanceof SdError) throw err;
      throw fsError(err, `copy ${source ?? 'a peer copy'} to ${part}`);
    }
    if (copied.fullHash !== expected) {
      fs.rmSync(part, { force: true });
      throw new SdError('IO', `no copy ${source ? `at ${source}` : 'on an online paired device'} hashes to what ${dst} held (BLAKE3 ${expected.slice(0, 16)}…); nothing was replaced`);
    }
    tryFs(`restore ${dst}`, () => {
      fs.chmodSync(part, st.mode & 0o7777);
      fs.utimesSync(part, st.atimeMs / 1000, st.mtimeMs / 1000);
      fs.renameSync(part, dst);
    });
    this.progress.copiedBytes += copied.size;
    this.progress.verified++;
    const hash = sampled(dst);
    await this.finish(item, 'done', dst, () => this.placeAt(dst, hash ?? null, expected), item.size);
  }

  /**
   * Reads one file whole and judges it against its last check (see scrubVerdict). A file
   * changed since it was indexed, or while it was read, is an edit, not rot: skipped.
   */
  private async scrub(item: JobItem): Promise<void> {
    const src = item.src!;
    // This file's hash was asked for while the step before was recorded; the next one's is asked for now.
    let task = this.hashAhead?.file === src ? this.hashAhead : undefined;
    if (this.hashAhead && !task) await this.hashThread?.cancelAll();
    this.hashAhead = undefined;
    const where = this.locate(src);
    const entry = where && this.index.entryAt(where.location, where.rel);
    if (!entry || !indexedAsIs(entry, lstatOrUndefined(src))) {
      if (task) await this.hashThread?.cancelAll();
      return this.finish(item, 'skipped', null, () => this.progress.skipped++, item.size);
    }
    const thread = (this.hashThread ??= new HashThread());
    task ??= thread.hash(src, this.bwlimit);
    const next = this.nextItem;
    if (next?.op === 'scrub' && next.status === null && next.src) this.hashAhead = thread.hash(next.src, this.bwlimit);
    const base = this.progress.bytesDone;
    let interruption: Interruption | null = null;
    task.onProgress((bytes) => {
      this.hooks.onProgress?.({ ...this.counts(), bytesDone: base + bytes, current: path.basename(src) });
      interruption ??= this.pollInterruption();
      if (interruption) void thread.cancelAll();
    });
    let hash: string;
    try {
      hash = await task.done;
    } catch (err) {
      if (err instanceof HashCancelled && interruption) throw new JobInterrupted(interruption);
      throw fsError(err, `read ${src}`);
    }
    if (!indexedAsIs(entry, lstatOrUndefined(src))) return this.finish(item, 'skipped', null, () => this.progress.skipped++, item.size);
    await this.finish(item, 'done', null, () => {
      const verdict = scrubVerdict(this.index.checks.get(entry.id), entry, hash);
      this.index.checks.record(entry.id, { fullHash: verdict.expected, size: entry.size, mtime: entry.mtime, corrupt: verdict.corrupt });
      if (entry.contentId && !verdict.corrupt) this.index.contents.recordFullHash(entry.contentId, hash);
      if (verdict.corrupt) {
        this.progress.corrupt = (this.progress.corrupt ?? 0) + 1;
        log.warn({ op: 'scrub', job: this.job.id, file: src, expected: verdict.expected, found: hash }, 'bit rot: the bytes changed while size and mtime did not');
        // One audit row per rotten file: what was found, where, when, by which job.
        new AuditLog(this.library.db).append({ actor: 'job', action: 'scrub', status: 'Failed', target: src, details: { bitRot: true, expected: verdict.expected, found: hash, size: entry.size, mtime: entry.mtime }, jobId: this.job.id });
      } else this.progress.verified++;
    }, item.size);
  }

  // --- steps ---------------------------------------------------------------------

  private async mkdir(item: JobItem): Promise<void> {
    const dst = this.mapDst(item.dst!);
    if (dst === null) return this.finish(item, 'skipped', null, () => this.redirects.set(item.dst!, null));
    const there = lstatOrUndefined(dst);
    let final = dst;
    if (there?.isDirectory()) return this.finish(item, 'done', dst);
    if (there) {
      const t = this.resolveConflict(item, dst, undefined, null);
      if (t.final === null) {
        this.redirects.set(item.dst!, null);
        return this.finish(item, 'skipped', null);
      }
      final = t.final;
      if (final === dst) tryFs(`replace ${dst}`, () => fs.unlinkSync(dst));
    }
    const mode = this.job.payload.action.kind === 'mkdir' ? (this.job.payload.action.input.mode ?? 0o777) : (item.src ? (lstatOrUndefined(item.src)?.mode ?? 0o777) & 0o7777 : 0o777);
    tryFs(`create folder ${final}`, () => fs.mkdirSync(final, { mode }));
    if (final !== item.dst) this.redirects.set(item.dst!, final);
    await this.finish(item, 'done', final, () => this.placeAt(final));
  }

  private async copy(item: JobItem): Promise<void> {
    const src = item.src!;
    const srcSt = lstatOrUndefined(src);
    const cur = this.progress.current?.seq === item.seq ? this.progress.current : null;
    if (!srcSt) {
      // A move killed after its copy landed and before the source went: nothing left to do.
      if (item.op === 'move' && cur?.finalDst && lstatOrUndefined(cur.finalDst)) return this.movedAlready(item, cur.finalDst);
      throw new SdError('NOT_FOUND', `${src} is gone (deleted or moved since the job was committed); cancel the job or put it back`);
    }
    if (!srcSt.isFile()) throw new SdError('INVALID', `${src} is no longer a file; cancel the job or put it back`);
    const srcHash = sampled(src);
    let final: string;
    let part: string;
    if (cur?.finalDst && cur.part) {
      final = cur.finalDst;
      part = cur.part;
      if (!lstatOrUndefined(part) && this.holds(final, srcSt.size, srcHash?.contentId ?? null)) {
        // Killed after the rename into place, before it was recorded.
        return this.landed(item, final, srcHash ?? null, null);
      }
    } else {
      const dst = this.mapDst(item.dst!);
      if (dst === null) return this.finish(item, 'skipped', null, undefined, item.size);
      const t = this.resolveConflict(item, dst, srcSt, srcHash?.contentId ?? null);
      if (t.identical) {
        this.progress.identical++;
        if (item.op === 'move') await this.removeSource(item, dst);
        return this.finish(item, 'skipped', dst, () => item.op === 'move' && this.forget(src), item.size);
      }
      if (t.final === null) return this.finish(item, 'skipped', null, undefined, item.size);
      final = t.final;
      part = this.partPath(final, item.seq);
      // A small file is simply copied again after a crash: no checkpoint needed before it.
      if (srcSt.size >= jobOptions.fsyncMinBytes) {
        this.progress.current = { seq: item.seq, bytes: 0, finalDst: final, part, srcSize: srcSt.size, srcMtimeMs: srcSt.mtimeMs };
        await this.checkpoint();
      }
    }
    // Resume only onto bytes of the same source: after a reboot the fdatasync'ed ones, after a killed process all.
    const sameSource = cur?.srcSize === srcSt.size && cur.srcMtimeMs === srcSt.mtimeMs;
    const resumeAt = cur?.part !== part || !sameSource ? 0 : cur.boot === bootId() ? cur.bytes : (cur.synced ?? 0);
    let result = await this.copyBytes(item, src, part, resumeAt, srcSt);
    if (cur) this.progress.resumedAtBytes = result.resumedAt;
    let now = lstatOrUndefined(src);
    if (!now || now.size !== result.size || now.mtimeMs !== result.mtimeMs) {
      // The source changed while it was copied: copy it once more from the start.
      log.info({ op: 'copy', job: this.job.id, src }, 'source changed during copy; copying again');
      now = lstatOrUndefined(src);
      if (!now) throw new SdError('NOT_FOUND', `${src} went away while it was copied; cancel the job or put it back`);
      result = await this.copyBytes(item, src, part, 0, now);
    }
    // Verified before it replaces anything: a bad copy never lands.
    const expected = sampled(src) ?? null;
    const fullHash = await this.verifyPart(item, part, result, expected);
    tryFs(`move ${part} into place as ${final}`, () => fs.renameSync(part, final));
    if (result.size < jobOptions.fsyncMinBytes) this.unsynced.push(final);
    this.dirtyDirs.add(path.dirname(final));
    this.progress.copiedBytes += result.size - result.resumedAt;
    return this.landed(item, final, expected, fullHash);
  }

  /**
   * Checks a finished part file against its source: size and content id, and the full
   * BLAKE3 with --verify or when bytes of an earlier run were kept (nothing read them back,
   * and the content id samples only part of a large file).
   */
  private async verifyPart(item: JobItem, part: string, copied: CopyFileResult, expected: ContentHash | null): Promise<string | null> {
    const { size, resumedAt } = copied;
    const fail = async (what: string) => {
      fs.rmSync(part, { force: true });
      this.progress.current = null;
      await this.checkpoint();
      return new SdError('IO', `the copy of ${item.src} does not match its source (${what}); it was discarded — resume the job to copy it again`);
    };
    const st = lstatOrUndefined(part);
    if (!st || st.size !== size || (sampled(part)?.contentId ?? null) !== (expected?.contentId ?? null)) throw await fail('size or content id');
    if (!this.verify && resumedAt === 0) return copied.fullHash;
    const there = await fullHashAsync(part, jobOptions.copyChunkBytes);
    // A resumed copy's streamed hash covers the kept bytes as they are in the part: the source is read again whole.
    const source = resumedAt === 0 && copied.fullHash ? copied.fullHash : await fullHashAsync(item.src!, jobOptions.copyChunkBytes);
    if (there !== source) throw await fail('full BLAKE3');
    this.progress.verified++;
    return there;
  }

  /** Indexes a copy now in place and finishes the step (a move deletes its source first). */
  private async landed(item: JobItem, final: string, hash: ContentHash | null, fullHash: string | null): Promise<void> {
    if (final !== this.mapDst(item.dst!)) this.progress.renamed++;
    if (item.op === 'move') await this.removeSource(item, final);
    await this.finish(item, 'done', final, () => {
      this.placeAt(final, hash, fullHash);
      if (item.op === 'move') this.forget(item.src!);
    }, item.size);
  }

  private async copyBytes(item: JobItem, src: string, part: string, resumeAt: number, srcSt: fs.Stats): Promise<CopyFileResult> {
    if (srcSt.size < jobOptions.fsyncMinBytes && resumeAt === 0 && !this.verify && !this.deepTarget(part)) return copySmall(src, part, srcSt);
    const base = this.progress.bytesDone;
    const name = path.basename(src);
    let synced = resumeAt;
    let lastSync = performance.now();
    try {
      return await copyFileChunked({
        src,
        part,
        resumeAt,
        fullHash: this.verify || this.deepTarget(this.progress.current?.finalDst ?? null),
        chunkBytes: jobOptions.copyChunkBytes,
        fsync: srcSt.size >= jobOptions.fsyncMinBytes,
        bwlimit: this.bwlimit,
        onChunk: async (bytes, sync) => {
          this.hooks.onProgress?.({ ...this.counts(), bytesDone: base + bytes, current: name });
          const interruption = this.pollInterruption();
          const now = performance.now();
          if (interruption || now - this.lastCheckpoint >= jobOptions.checkpointEveryMs) {
            if (interruption || now - lastSync >= jobOptions.syncEveryMs) {
              await sync();
              synced = bytes;
              lastSync = performance.now();
            }
            this.progress.current = { seq: item.seq, bytes, synced, boot: bootId(), finalDst: this.progress.current?.finalDst ?? null, part, srcSize: srcSt.size, srcMtimeMs: srcSt.mtimeMs };
            await this.checkpoint();
          }
          if (interruption) throw new JobInterrupted(interruption);
        },
      });
    } catch (err) {
      if (err instanceof JobInterrupted) throw err;
      throw fsError(err, `copy ${src} to ${part}`);
    }
  }

  private async symlink(item: JobItem): Promise<void> {
    const src = item.src!;
    const srcSt = lstatOrUndefined(src);
    if (!srcSt) {
      const cur = this.progress.current?.seq === item.seq ? this.progress.current : null;
      if (item.op === 'move' && cur?.finalDst && lstatOrUndefined(cur.finalDst)) return this.movedAlready(item, cur.finalDst);
      throw new SdError('NOT_FOUND', `${src} is gone (deleted or moved since the job was committed); cancel the job or put it back`);
    }
    const dst = this.mapDst(item.dst!);
    if (dst === null) return this.finish(item, 'skipped', null);
    const linkTarget = tryFs(`read the link ${src}`, () => fs.readlinkSync(src));
    const there = lstatOrUndefined(dst);
    if (there?.isSymbolicLink() && fs.readlinkSync(dst) === linkTarget) {
      this.progress.identical++;
      if (item.op === 'move') await this.removeSource(item, dst);
      return this.finish(item, 'skipped', dst, () => item.op === 'move' && this.forget(src));
    }
    const t = this.resolveConflict(item, dst, srcSt, null);
    if (t.final === null) return this.finish(item, 'skipped', null);
    const final = t.final;
    // Made beside its place and renamed over it, so an overwrite is atomic.
    const temp = this.partPath(final, item.seq);
    fs.rmSync(temp, { force: true });
    tryFs(`create the link ${final}`, () => fs.symlinkSync(linkTarget, temp));
    tryFs(`move the link into place as ${final}`, () => fs.renameSync(temp, final));
    if (final !== dst) this.progress.renamed++;
    if (item.op === 'move') await this.removeSource(item, final);
    await this.finish(item, 'done', final, () => {
      this.placeAt(final);
      if (item.op === 'move') this.forget(src);
    });
  }

  private async rename(item: JobItem): Promise<void> {
    const src = item.src!;
    const cur = this.progress.current?.seq === item.seq ? this.progress.current : null;
    const srcSt = lstatOrUndefined(src);
    if (!srcSt) {
      if (cur?.finalDst && lstatOrUndefined(cur.finalDst)) return this.finish(item, 'done', cur.finalDst, () => this.moveInIndex(src, cur.finalDst!), item.size);
      throw new SdError('NOT_FOUND', `${src} is gone (deleted or moved since the job was committed); cancel the job or put it back`);
    }
    const dst = this.mapDst(item.dst!);
    if (dst === null) return this.finish(item, 'skipped', null, undefined, item.size);
    let final = dst;
    if (lstatOrUndefined(dst)) {
      const t = this.resolveConflict(item, dst, srcSt, srcSt.isFile() ? sampledId(src) : null);
      if (t.identical) {
        this.progress.identical++;
        await this.removeSource(item, dst);
        return this.finish(item, 'skipped', dst, () => this.forget(src), item.size);
      }
      if (t.final === null) return this.finish(item, 'skipped', null, undefined, item.size);
      final = t.final;
    }
    this.progress.current = { seq: item.seq, bytes: 0, finalDst: final, part: null };
    await this.checkpoint();
    tryFs(`move ${src} to ${final}`, () => fs.renameSync(src, final));
    if (final !== dst) this.progress.renamed++;
    // A file whose full BLAKE3 the caller checked (a peer's bytes that arrived) lands verified.
    const action = this.job.payload.action;
    const checked = srcSt.isFile() && (action.kind === 'move' || action.kind === 'copy') ? action.input.fullHash : undefined;
    await this.finish(item, 'done', final, () => {
      if (!checked) return this.moveInIndex(src, final);
      this.forget(src);
      this.placeAt(final, sampled(final) ?? null, checked);
    }, item.size);
  }

  private async rmdir(item: JobItem): Promise<void> {
    const src = item.src!;
    try {
      fs.rmdirSync(src);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Left when something stayed behind (a skipped file) or is gone already.
      if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOENT') return this.finish(item, 'skipped', null);
      throw fsError(err, `remove the emptied folder ${src}`);
    }
    await this.finish(item, 'done', null, () => this.forget(src));
  }

  private async trash(item: JobItem): Promise<void> {
    const src = item.src!;
    const cur = this.progress.current?.seq === item.seq ? this.progress.current : null;
    if (!lstatOrUndefined(src)) {
      const there = cur?.finalDst ?? item.dst!;
      if (lstatOrUndefined(there)) return this.finish(item, 'done', there, () => this.forget(src), item.size);
      throw new SdError('NOT_FOUND', `${src} is gone already; nothing to move to the trash`);
    }
    // Never over something trashed before under the same name.
    const final = lstatOrUndefined(item.dst!) ? freeName(item.dst!) : item.dst!;
    this.progress.current = { seq: item.seq, bytes: 0, finalDst: final, part: null };
    await this.checkpoint();
    tryFs(`create the trash folder ${path.dirname(final)}`, () => fs.mkdirSync(path.dirname(final), { recursive: true }));
    tryFs(`move ${src} to the trash`, () => fs.renameSync(src, final));
    await this.finish(item, 'done', final, () => this.forget(src), item.size);
  }

  private async remove(item: JobItem): Promise<void> {
    const src = item.src!;
    // Async: a big tree deleted from the mount's process must not hold its thread.
    try {
      await fsp.rm(src, { recursive: true, force: true });
    } catch (err) {
      throw fsError(err, `delete ${src}`);
    }
    await this.finish(item, 'done', null, () => this.forget(src), item.size);
  }

  // --- conflicts -----------------------------------------------------------------

  /** What to do about something already at dst, per --on-conflict. */
  private resolveConflict(item: JobItem, dst: string, srcSt: fs.Stats | undefined, srcId: string | null): Target {
    const there = lstatOrUndefined(dst);
    if (!there) return { final: dst, identical: false };
    if (srcSt?.isFile() && there.isFile() && there.size === srcSt.size && (srcSt.size === 0 || (srcId !== null && sampledId(dst) === srcId))) {
      return { final: null, identical: true };
    }
    switch (this.onConflict) {
      case 'overwrite':
        if (there.isDirectory() && !(srcSt?.isDirectory() ?? item.op === 'mkdir')) {
          throw new SdError('EXISTS', `${dst} is a folder; --on-conflict overwrite never replaces a folder with a file (remove it first, then resume the job)`);
        }
        return { final: dst, identical: false };
      case 'rename': {
        const alt = renameTarget(dst, (candidate) => srcSt?.isFile() === true && this.holds(candidate, srcSt.size, srcId));
        return alt.identical ? { final: null, identical: true } : { final: alt.path, identical: false };
      }
      case 'skip':
        this.progress.skipped++;
        return { final: null, identical: false };
      case 'abort':
        throw new SdError('EXISTS', `${dst} exists already (it appeared after the job was committed); resume with another --on-conflict or cancel the job`);
    }
  }

  /** A destination below a folder that was renamed or skipped follows that folder. */
  private mapDst(dst: string): string | null {
    if (this.redirects.size === 0) return dst;
    for (let dir = path.dirname(dst); ; dir = path.dirname(dir)) {
      if (this.redirects.has(dir)) {
        const to = this.redirects.get(dir)!;
        return to === null ? null : path.join(to, path.relative(dir, dst));
      }
      if (path.dirname(dir) === dir) return dst;
    }
  }

  private holds(file: string, size: number, id: string | null): boolean {
    const st = lstatOrUndefined(file);
    return st !== undefined && st.isFile() && st.size === size && sampledId(file) === id;
  }

  // --- the index -----------------------------------------------------------------

  private locate(abs: string): { location: Location; rel: string } | undefined {
    for (const location of this.locations) {
      const rel = path.relative(location.rootPath, abs);
      if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) return { location, rel: rel.split(path.sep).join('/') };
    }
    return undefined;
  }

  private deepTarget(abs: string | null): boolean {
    return abs !== null && this.locate(abs)?.location.indexMode === 'deep';
  }

  /**
   * Records what is now at abs in the index (a whole new folder tree when asked), with
   * the content hash the copy checked (undefined: computed when needed).
   */
  private placeAt(abs: string, hash?: ContentHash | null, fullHash?: string | null, subtree = false): void {
    const where = this.locate(abs);
    if (!where || where.rel === '') return;
    const st = lstatOrUndefined(abs);
    if (!st) return;
    const shallow = where.location.indexMode === 'shallow';
    let placed: number | undefined;
    if (subtree && st.isDirectory()) this.index.indexSubtree(where.location, where.rel);
    else placed = this.index.place(where.location, where.rel, st, hash === undefined ? undefined : shallow ? null : (hash?.contentId ?? null));
    if (hash && !shallow) {
      this.index.contents.record(hash.contentId, st.size, hash.sampledHash);
      if (fullHash) this.index.contents.recordFullHash(hash.contentId, fullHash);
      // The copy was read whole and matched its source: a verified copy for the guardian.
      if (fullHash && placed !== undefined) this.index.checks.recordCurrent(placed, fullHash);
    }
    this.index.touchDir(where.location, parentRel(where.rel));
  }

  private forget(abs: string): void {
    const where = this.locate(abs);
    if (!where || where.rel === '') return;
    this.index.removeAt(where.location, where.rel);
    this.index.touchDir(where.location, parentRel(where.rel));
  }

  /** A rename: the same entry moves when it stays in its location, else it leaves one and joins the other. */
  private moveInIndex(from: string, to: string): void {
    const a = this.locate(from);
    const b = this.locate(to);
    const entry = a && a.rel !== '' ? this.index.entryAt(a.location, a.rel) : undefined;
    const newParent = b ? this.index.entryAt(b.location, parentRel(b.rel)) : undefined;
    const ignored = b && newParent ? this.index.ignores(b.location, parentRel(b.rel), baseName(b.rel), entry?.kind === 'dir') : true;
    if (a && b && a.location.id === b.location.id && entry && newParent?.kind === 'dir' && !ignored) {
      this.index.move(entry, newParent, baseName(b.rel));
      const st = lstatOrUndefined(to);
      if (st) this.index.refresh(b.location, this.index.store.get(entry.id)!, st, b.rel);
      this.index.touchDir(a.location, parentRel(a.rel));
      this.index.touchDir(b.location, parentRel(b.rel));
      return;
    }
    this.forget(from);
    this.placeAt(to, undefined, null, true);
  }

  /** A move killed after its copy landed and its source went, before that was recorded. */
  private movedAlready(item: JobItem, final: string): Promise<void> {
    return this.finish(item, 'done', final, () => {
      this.placeAt(final);
      this.forget(item.src!);
    }, item.size);
  }

  /** Deletes a moved file's source once its copy is in place (recorded first, so a resume knows). */
  private async removeSource(item: JobItem, final: string): Promise<void> {
    this.progress.current = { seq: item.seq, bytes: item.size, finalDst: final, part: null };
    await this.checkpoint();
    tryFs(`delete the moved source ${item.src}`, () => fs.unlinkSync(item.src!));
  }

  // --- bookkeeping ---------------------------------------------------------------

  /** Ends a step: marks it, applies its index changes and checkpoints, all in one transaction. */
  private async finish(item: JobItem, status: 'done' | 'skipped', finalDst: string | null, indexChanges?: () => unknown, bytes = 0): Promise<void> {
    this.countTime();
    await this.record('step', () => {
      indexChanges?.();
      this.store.finishItem(this.job.id, item.seq, status, finalDst);
      if (item.op !== 'mkdir' && item.op !== 'rmdir') this.progress.filesDone++;
      this.progress.bytesDone += bytes;
      this.progress.nextSeq = item.seq + 1;
      this.progress.current = null;
      this.store.checkpoint(this.job.id, this.progress);
    });
    this.lastCheckpoint = performance.now();
    if (finalDst) this.dirtyDirs.add(path.dirname(finalDst));
    if (item.src && item.op !== 'copy' && item.op !== 'symlink' && item.op !== 'mkdir' && item.op !== 'scrub' && item.op !== 'repair') this.dirtyDirs.add(path.dirname(item.src));
    this.report(finalDst);
  }

  private async checkpoint(): Promise<void> {
    this.countTime();
    await this.record('checkpoint', () => this.store.checkpoint(this.job.id, this.progress));
    this.lastCheckpoint = performance.now();
  }

  /**
   * Writes what the run did to the library, `change` in one transaction (also how the job
   * manager settles the run). Another process holding the library past the busy timeout
   * is no reason to fail a job half done: the record waits for it, tried again until it goes
   * through, the job's pause, cancel or stop excepted: then JobInterrupted, and the step the
   * record was for is found done by the resume, as after a kill (each step records where its
   * result goes before it acts, and looks there first). Only the record is tried again, never
   * the step; a try that did not go through leaves the progress as it was. Other errors throw.
   * `interruption` says what stops the wait (default: any pause, cancel or stop, asked here or
   * by another process).
   */
  async record(what: string, change: () => void, interruption: () => Interruption | null = () => this.stopAsked()): Promise<void> {
    let asked: Interruption | null = null;
    const attempt = () => {
      const before = structuredClone(this.progress);
      try {
        this.library.db.transaction(change).immediate();
      } catch (err) {
        restore(this.progress, before);
        throw err;
      }
    };
    const stopped = () => (asked ??= interruption()) !== null;
    if (!(await whenLibraryFree({ op: 'job', job: this.job.id, record: what }, attempt, stopped, this.hooks.onLibraryBusy))) throw new JobInterrupted(asked!);
  }

  private partPath(final: string, seq: number): string {
    const where = this.locate(final);
    const dir = path.dirname(final);
    if (where) {
      const staging = path.join(where.location.rootPath, STAGING_FOLDER);
      try {
        fs.mkdirSync(staging, { recursive: true });
        if (fs.statSync(staging).dev === fs.statSync(dir).dev) {
          this.stagingDirs.add(staging);
          return path.join(staging, `job-${this.job.id}-${seq}.part`);
        }
      } catch {
        // no staging folder: stage beside the destination
      }
    }
    return path.join(dir, `.${path.basename(final)}.sd-part-${this.job.id}-${seq}`);
  }

  /**
   * Removes the staging folders this run made (when empty); the location root's time
   * changed, so it is re-read (left to the watcher when the run stops while the library is busy).
   */
  private async cleanStaging(): Promise<void> {
    for (const dir of this.stagingDirs) {
      try {
        fs.rmdirSync(dir);
      } catch {
        // other jobs still stage there
      }
      const where = this.locate(path.dirname(dir));
      if (where) await this.record('staging', () => this.index.touchDir(where.location, where.rel)).catch((err: unknown) => {
        if (!(err instanceof JobInterrupted)) throw err;
      });
    }
    this.stagingDirs.clear();
  }

  private counts(): Omit<ProgressEvent, 'bytesDone' | 'current'> {
    return { jobId: this.job.id, filesDone: this.progress.filesDone, filesTotal: this.progress.filesTotal, bytesTotal: this.progress.bytesTotal };
  }

  private report(current: string | null): void {
    this.hooks.onProgress?.({ ...this.counts(), bytesDone: this.progress.bytesDone, current: current && path.basename(current) });
  }

  /** A pause, cancel or stop asked of the job, here or by another process (unthrottled: while the run waits). */
  private stopAsked(): Interruption | null {
    const local = this.hooks.interruption();
    if (local) return local;
    try {
      return this.store.control(this.job.id);
    } catch {
      return null;
    }
  }

  private pollInterruption(): Interruption | null {
    const now = performance.now();
    const local = this.hooks.interruption();
    if (local) return local;
    if (now - this.lastControlPoll < jobOptions.controlPollMs) return null;
    this.lastControlPoll = now;
    return this.store.control(this.job.id);
  }

  private async maybeYield(): Promise<void> {
    const now = performance.now();
    if (now - this.lastYield < jobOptions.yieldEveryMs) return;
    await new Promise((r) => setImmediate(r));
    this.lastYield = performance.now();
  }
}
