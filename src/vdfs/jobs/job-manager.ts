// Runs committed jobs: claims one for this process, runs its steps (JobRun), and settles
// it as completed, failed, paused or cancelled with an audit row for each. Pause and
// cancel work across processes (a request in the job's row, seen at the next
// checkpoint); jobs a killed process left running are resumed, never restarted.
import { SdError } from '../../errors.js';
import { log } from '../../log.js';
import { AuditLog, type Actor, type AuditStatus } from '../audit.js';
import type { Library } from '../library.js';
import { JobInterrupted, JobRun, type ContentFetcher, type Interruption, type ProgressEvent } from './job-run.js';
import { RemoteChanges, isRemoteJob, remoteOf } from '../remote-changes.js';
import { JobStore, type Job, type JobProgress, type JobStatus } from './job-store.js';
import { ownerPid, ownerToken } from './owner.js';

export interface RunOptions {
  /** Who runs it, for the audit log (default: the manager's actor). */
  actor?: Actor;
  onProgress?: (event: ProgressEvent) => void;
  /** Overrides the job's bandwidth limit for this run (bytes/s, 0 = none). */
  bwlimit?: number;
}

export interface JobOutcome {
  id: number;
  status: JobStatus;
  error: string | null;
  progress: JobProgress;
  /** Seconds this run took. */
  seconds: number;
}

interface Running {
  request: Interruption | null;
  done: Promise<JobOutcome>;
}

/** Jobs running in this process, whichever manager started them. */
const running = new Map<number, Running>();

/** A queued job never run and younger than this belongs to the process that just committed it. */
const FRESH_JOB_MS = 10_000;

/** How long pause and cancel wait for a runner in another process to stop at a checkpoint. */
const CONTROL_WAIT_MS = 10_000;

export class JobManager {
  readonly store: JobStore;
  private readonly audit: AuditLog;
  private readonly actor: Actor;
  /** Set by the running node once replication runs: lets jobs (repair) fetch bytes from paired devices. */
  contentFetcher: ContentFetcher | undefined;

  constructor(
    private readonly library: Library,
    options: { actor?: Actor } = {},
  ) {
    this.store = new JobStore(library.db);
    this.audit = new AuditLog(library.db);
    this.actor = options.actor ?? 'cli';
  }

  get(id: number): Job {
    const job = this.store.get(id);
    if (!job) throw new SdError('NOT_FOUND', `no job ${id}; 'sd jobs' lists them`);
    return job;
  }

  list(options: { statuses?: JobStatus[]; limit?: number } = {}): Job[] {
    return this.store.list(options);
  }

  /** Whether this process is running the job now. */
  isRunningHere(id: number): boolean {
    return running.has(id);
  }

  /**
   * Runs a job (queued, paused, failed, or left running by a dead process) in this
   * process until it completes, fails, is paused or cancelled. Resolves with how it ended.
   */
  run(id: number, options: RunOptions = {}): Promise<JobOutcome> {
    const here = running.get(id);
    if (here) return here.done;
    const job = this.get(id);
    if (job.status === 'completed' || job.status === 'cancelled') {
      throw new SdError('INVALID', `job ${id} is ${job.status} already; nothing to run`);
    }
    if (isRemoteJob(job)) return Promise.resolve(this.requeueRemote(job));
    if (job.status === 'running' && !job.interrupted) {
      throw new SdError('BUSY', `job ${id} is running in process ${ownerPid(job.owner!)}; 'sd jobs pause ${id}' stops it there`);
    }
    if (!this.store.claim(id, ownerToken(), { status: job.status, owner: job.owner })) {
      throw new SdError('BUSY', `job ${id} was just taken by another process; 'sd jobs' shows where it stands`);
    }
    const entry: Running = { request: null, done: Promise.resolve(undefined as unknown as JobOutcome) };
    running.set(id, entry);
    entry.done = this.execute(this.get(id), entry, options).finally(() => running.delete(id));
    return entry.done;
  }

  /**
   * Starts every job that should be running and is not: queued ones and those a killed
   * process left 'running'. Returns their ids; each runs in the background (see `settled`).
   */
  resumeInterrupted(options: RunOptions = {}): number[] {
    const started: number[] = [];
    const now = Date.now();
    for (const job of this.store.list({ statuses: ['queued', 'running'], limit: 1000 }).reverse()) {
      if (running.has(job.id) || (job.status === 'running' && !job.interrupted) || isRemoteJob(job)) continue;
      // A job committed a moment ago is about to be run by the process that committed it.
      if (job.status === 'queued' && job.progress.runs === 0 && now - job.updatedAt < FRESH_JOB_MS) continue;
      try {
        this.run(job.id, { actor: 'job', ...options }).catch((err) => log.warn({ op: 'job', job: job.id, err: String(err) }, 'resumed job failed'));
        started.push(job.id);
      } catch (err) {
        log.debug({ op: 'job', job: job.id, err: String(err) }, 'not resumed');
      }
    }
    return started;
  }

  /**
   * A change to another device's tree runs on that device: the mount sends it when the
   * device is online. Running it here means queueing it again (after a pause or a refusal).
   */
  private requeueRemote(job: Job): JobOutcome {
    const device = remoteOf(job)!.device;
    if (job.status === 'running' && !job.interrupted) throw new SdError('BUSY', `job ${job.id} is being sent to ${device} now`);
    if (job.status !== 'queued' && !this.store.transition(job.id, job.status, 'queued')) throw new SdError('BUSY', `job ${job.id} changed meanwhile; try again`);
    this.auditJob(job, this.actor, 'Committed', { requeued: true, device });
    return { id: job.id, status: 'queued', error: null, progress: job.progress, seconds: 0 };
  }

  /** The outcome of a job running in this process (undefined when it runs nowhere here). */
  settled(id: number): Promise<JobOutcome> | undefined {
    return running.get(id)?.done;
  }

  /** Pauses a job at its next checkpoint (here or in another process); `sd jobs resume` continues it. */
  async pause(id: number): Promise<Job> {
    return this.interrupt(id, 'pause');
  }

  /** Cancels a job: it stops at its next checkpoint, its partial file is removed; finished steps stay. */
  async cancel(id: number): Promise<Job> {
    return this.interrupt(id, 'cancel');
  }

  /** Resumes a paused, failed or interrupted job here; the same as run(). */
  resume(id: number, options: RunOptions = {}): Promise<JobOutcome> {
    return this.run(id, options);
  }

  /**
   * Stops every job this process runs at a checkpoint and leaves them queued, so the
   * next start (resumeInterrupted) continues them. For SIGINT/SIGTERM of the mount.
   */
  async stop(): Promise<void> {
    const waits: Array<Promise<unknown>> = [];
    for (const entry of running.values()) {
      entry.request = 'stop';
      waits.push(entry.done.catch(() => undefined));
    }
    await Promise.all(waits);
  }

  private async interrupt(id: number, what: 'pause' | 'cancel'): Promise<Job> {
    const here = running.get(id);
    if (here) {
      here.request = what;
      await here.done.catch(() => undefined);
      return this.get(id);
    }
    const job = this.get(id);
    if (job.status === 'completed' || job.status === 'cancelled') throw new SdError('INVALID', `job ${id} is ${job.status} already`);
    if (job.status === 'running' && !job.interrupted) {
      this.store.requestControl(id, what);
      const until = Date.now() + CONTROL_WAIT_MS;
      while (Date.now() < until) {
        await new Promise((r) => setTimeout(r, 50));
        const now = this.get(id);
        if (now.status !== 'running' || now.interrupted) return now;
      }
      throw new SdError('BUSY', `job ${id} (process ${ownerPid(job.owner!)}) did not reach a checkpoint within ${CONTROL_WAIT_MS / 1000} s; the request stands and it stops at its next one`);
    }
    if (what === 'pause') {
      if (job.status === 'paused') return job;
      if (!this.store.claim(id, ownerToken(), { status: job.status, owner: job.owner })) throw new SdError('BUSY', `job ${id} changed meanwhile; try again`);
      this.store.settle(id, 'paused', job.progress);
      this.auditJob(job, this.actor, 'Paused', { reason: 'asked' });
      return this.get(id);
    }
    // Cancel a job nobody runs: claim it so no one starts it meanwhile, drop its partial file.
    if (!this.store.claim(id, ownerToken(), { status: job.status, owner: job.owner })) throw new SdError('BUSY', `job ${id} changed meanwhile; try again`);
    const run = new JobRun(this.library, this.store, this.get(id), { interruption: () => null });
    run.discardPart();
    if (isRemoteJob(job)) new RemoteChanges(this.library).clear(id);
    this.store.settle(id, 'cancelled', run.state);
    this.auditJob(job, this.actor, 'Cancelled', { filesDone: run.state.filesDone, filesTotal: run.state.filesTotal });
    return this.get(id);
  }

  private async execute(job: Job, entry: Running, options: RunOptions): Promise<JobOutcome> {
    const actor = options.actor ?? this.actor;
    const started = performance.now();
    const run = new JobRun(this.library, this.store, job, { interruption: () => entry.request, onProgress: options.onProgress, bwlimit: options.bwlimit, fetchContent: this.contentFetcher });
    this.auditJob(job, actor, 'Running', {
      run: job.progress.runs + 1,
      fromStep: job.progress.nextSeq,
      resumedAtBytes: job.progress.current?.bytes ?? 0,
      owner: process.pid,
    });
    const outcome = (status: JobStatus, error: string | null = null): JobOutcome => ({
      id: job.id,
      status,
      error,
      progress: run.state,
      seconds: Math.round(performance.now() - started) / 1000,
    });
    try {
      await run.execute();
      const p = run.state;
      this.store.settle(job.id, 'completed', p);
      this.auditJob(job, actor, 'Completed', {
        files: p.filesDone,
        bytes: p.bytesDone,
        copiedBytes: p.copiedBytes,
        seconds: Math.round(performance.now() - started) / 1000,
        skipped: p.skipped,
        identical: p.identical,
        renamed: p.renamed,
        verified: job.payload.verify ? `full BLAKE3 (${p.verified} files)` : 'size + content id',
      });
      log.info({ op: 'job', job: job.id, kind: job.kind, files: p.filesDone, bytes: p.bytesDone }, 'completed');
      return outcome('completed');
    } catch (err) {
      const p = run.state;
      if (err instanceof JobInterrupted) {
        if (err.reason === 'cancel') {
          run.discardPart();
          this.store.settle(job.id, 'cancelled', p);
          this.auditJob(job, actor, 'Cancelled', { filesDone: p.filesDone, filesTotal: p.filesTotal });
          return outcome('cancelled');
        }
        // Paused by a user, or stopped with the process: queued again to resume at its next start.
        const status: JobStatus = err.reason === 'pause' ? 'paused' : 'queued';
        this.store.settle(job.id, status, p);
        this.auditJob(job, actor, 'Paused', { reason: err.reason === 'pause' ? 'asked' : 'shutdown', filesDone: p.filesDone, bytesDone: p.bytesDone, atBytes: p.current?.bytes ?? 0 });
        return outcome(status);
      }
      const message = err instanceof Error ? err.message : String(err);
      this.store.settle(job.id, 'failed', p, message);
      this.auditJob(job, actor, 'Failed', { error: message, errno: err instanceof SdError ? err.errno : null, step: p.nextSeq, filesDone: p.filesDone });
      log.warn({ op: 'job', job: job.id, err: message }, 'failed');
      return outcome('failed', message);
    }
  }

  private auditJob(job: Job, actor: Actor, status: AuditStatus, details: unknown): void {
    this.audit.append({ actor, action: job.kind, status, target: job.payload.target, details, jobId: job.id });
  }
}

