// Runs committed jobs: claims one for this process, runs its steps (JobRun), and settles
// it as completed, failed, paused or cancelled with an audit row for each. Pause and
// cancel work across processes (a request in the job's row, seen at the next
// checkpoint); jobs a killed process left running are resumed, never restarted. Another
// process holding the library past the busy timeout holds a job up, never fails it.
import { SdError } from '../../errors.js';
import { log } from '../../log.js';
import { AuditLog, type Actor, type AuditStatus } from '../audit.js';
import { heldByAnotherProcess, whenLibraryFree } from '../db/when-free.js';
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
  /** Told each time the job starts waiting for another process that holds the library past the busy timeout. */
  onLibraryBusy?: () => void;
}

export interface JobOutcome {
  id: number;
  /**
   * How the run ended; 'running' when it stopped (pause, cancel, shutdown) while another
   * process held the library, so its row could not say so: resumable as after a kill.
   */
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

/** How a run ended, to be recorded: the job's status and its audit row. */
interface Ending {
  status: JobStatus;
  error: string | null;
  audit: AuditStatus;
  details: unknown;
}

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
    const actor = options.actor ?? this.actor;
    // Taken at once when the library is free; else once it is (below), unless paused meanwhile.
    let claimed: boolean | undefined;
    try {
      claimed = this.claim(job, actor);
    } catch (err) {
      if (!heldByAnotherProcess(err)) throw err;
    }
    if (claimed === false) throw takenMeanwhile(id);
    const entry: Running = { request: null, done: Promise.resolve(undefined as unknown as JobOutcome) };
    running.set(id, entry);
    entry.done = (claimed ? this.execute(this.get(id), entry, options) : this.claimWhenFree(job, entry, options)).finally(() => running.delete(id));
    return entry.done;
  }

  /** Takes the job for this process and audits the run's start, in one transaction; false when another process took it first. */
  private claim(job: Job, actor: Actor): boolean {
    return this.library.db.transaction(() => {
      if (!this.store.claim(job.id, ownerToken(), { status: job.status, owner: job.owner })) return false;
      this.auditJob(job, actor, 'Running', {
        run: job.progress.runs + 1,
        fromStep: job.progress.nextSeq,
        resumedAtBytes: job.progress.current?.bytes ?? 0,
        owner: process.pid,
      });
      return true;
    }).immediate();
  }

  /** Claims the job once another process lets go of the library, then runs it; left as it was when paused or cancelled meanwhile. */
  private async claimWhenFree(job: Job, entry: Running, options: RunOptions): Promise<JobOutcome> {
    let claimed = false;
    const free = await whenLibraryFree({ op: 'job', job: job.id, record: 'claim' }, () => void (claimed = this.claim(job, options.actor ?? this.actor)), () => entry.request !== null, options.onLibraryBusy);
    if (!free) return { id: job.id, status: job.status, error: null, progress: job.progress, seconds: 0 };
    if (!claimed) throw takenMeanwhile(job.id);
    return this.execute(this.get(job.id), entry, options);
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
    await run.discardPart();
    if (isRemoteJob(job)) new RemoteChanges(this.library).clear(id);
    this.store.settle(id, 'cancelled', run.state);
    this.auditJob(job, this.actor, 'Cancelled', { filesDone: run.state.filesDone, filesTotal: run.state.filesTotal });
    return this.get(id);
  }

  private async execute(job: Job, entry: Running, options: RunOptions): Promise<JobOutcome> {
    const actor = options.actor ?? this.actor;
    const started = performance.now();
    const run = new JobRun(this.library, this.store, job, {
      interruption: () => entry.request,
      onProgress: options.onProgress,
      bwlimit: options.bwlimit,
      fetchContent: this.contentFetcher,
      onLibraryBusy: options.onLibraryBusy,
    });
    const outcome = (status: JobStatus, error: string | null = null): JobOutcome => ({
      id: job.id,
      status,
      error,
      progress: run.state,
      seconds: Math.round(performance.now() - started) / 1000,
    });
    let ending: Ending;
    try {
      await run.execute();
      const p = run.state;
      ending = {
        status: 'completed',
        error: null,
        audit: 'Completed',
        details: {
          files: p.filesDone,
          bytes: p.bytesDone,
          copiedBytes: p.copiedBytes,
          seconds: Math.round(performance.now() - started) / 1000,
          skipped: p.skipped,
          identical: p.identical,
          renamed: p.renamed,
          verified: job.payload.verify ? `full BLAKE3 (${p.verified} files)` : 'size + content id',
        },
      };
    } catch (err) {
      const p = run.state;
      if (err instanceof JobInterrupted && err.reason === 'cancel') {
        await run.discardPart();
        ending = { status: 'cancelled', error: null, audit: 'Cancelled', details: { filesDone: p.filesDone, filesTotal: p.filesTotal } };
      } else if (err instanceof JobInterrupted) {
        // Paused by a user, or stopped with the process: queued again to resume at its next start.
        const asked = err.reason === 'pause';
        ending = { status: asked ? 'paused' : 'queued', error: null, audit: 'Paused', details: { reason: asked ? 'asked' : 'shutdown', filesDone: p.filesDone, bytesDone: p.bytesDone, atBytes: p.current?.bytes ?? 0 } };
      } else {
        const message = err instanceof Error ? err.message : String(err);
        ending = { status: 'failed', error: message, audit: 'Failed', details: { error: message, errno: err instanceof SdError ? err.errno : null, step: p.nextSeq, filesDone: p.filesDone } };
        log.warn({ op: 'job', job: job.id, err: message }, 'failed');
      }
    }
    if (!(await this.settle(run, job, actor, ending, () => entry.request))) {
      return outcome('running', `it stopped while another process held the library, which could not record that; it shows as interrupted once this process is gone`);
    }
    if (ending.status === 'completed') log.info({ op: 'job', job: job.id, kind: job.kind, files: run.state.filesDone, bytes: run.state.bytesDone }, 'completed');
    return outcome(ending.status, ending.error);
  }

  /**
   * Records how the run ended (status, progress, audit row) in one transaction, waiting out
   * another process that holds the library. False when this process asked the run to stop
   * (Ctrl-C, shutdown; one try, then): the row still says running in this process, so once
   * it is gone the job is resumable, as after a kill. A pause asked by another process waits
   * to be recorded: this process lives on, and its job must not stay 'running' meanwhile.
   */
  private async settle(run: JobRun, job: Job, actor: Actor, ending: Ending, askedHere: () => Interruption | null): Promise<boolean> {
    try {
      await run.record(
        'settle',
        () => {
          this.store.settle(job.id, ending.status, run.state, ending.error);
          this.auditJob(job, actor, ending.audit, ending.details);
        },
        askedHere,
      );
      return true;
    } catch (err) {
      if (!(err instanceof JobInterrupted)) throw err;
      log.warn({ op: 'job', job: job.id, status: ending.status }, 'the library stayed busy with another process; the job is left to resume as after a kill');
      return false;
    }
  }

  private auditJob(job: Job, actor: Actor, status: AuditStatus, details: unknown): void {
    this.audit.append({ actor, action: job.kind, status, target: job.payload.target, details, jobId: job.id });
  }
}

function takenMeanwhile(id: number): SdError {
  return new SdError('BUSY', `job ${id} was just taken by another process; 'sd jobs' shows where it stands`);
}
