// Changes to another device's tree, made here (through the mount): each is a job in this
// library's journal that the replication delivers to the device, which runs it as its own
// action. Until then the change is a pending row the mount shows over the device's
// mirrored index; a new file's bytes wait in <library>/outgoing/.
import fs from 'node:fs';
import path from 'node:path';
import { AuditLog } from './audit.js';
import type { Library } from './library.js';
import { JobStore, type Job } from './jobs/job-store.js';
import type { Action, JobPayload } from './actions/types.js';
import { PendingStore, type PendingChange } from './pending.js';

/** What the device is asked to do, in its own terms (location name, relative paths). */
export type RemoteOp =
  /** Fetch the staged bytes of change `pendingId` and put them at path (replacing what is there when `overwrite`). */
  | { op: 'copy'; location: string; path: string; pendingId: number; overwrite: boolean }
  | { op: 'mkdir'; location: string; path: string; mode: number }
  /** Into the location's .sd-trash, as `sd rm` does (files or whole folders). */
  | { op: 'delete'; location: string; path: string }
  | { op: 'move'; location: string; path: string; to: string }
  /** chmod and/or utimens of something already there (e.g. cp -p on a folder it made). */
  | ({ op: 'attrs'; location: string; path: string } & FileAttrs)
  /**
   * A copy of a content for the guardian (sd guardian protect): unless the device holds a
   * verified copy already, it fetches the bytes from any online device holding them, checks
   * them against `fullHash` and puts them at path (folders made; a different file there is kept).
   */
  | { op: 'protect'; location: string; path: string; contentId: string; fullHash: string; size: number; mode: number; mtimeMs: number };

/** What a protect copy carries besides where it goes. */
export type ProtectedContent = Omit<Extract<RemoteOp, { op: 'protect' }>, 'op' | 'location' | 'path'>;

/** What chmod and utimens set. */
export interface FileAttrs {
  mode?: number;
  atimeMs?: number;
  mtimeMs?: number;
}

/** A remote job's payload: `action` is the Action it amounts to, absent for attribute changes (no such Action). */
export interface RemoteJobPayload extends Omit<JobPayload, 'action'> {
  action?: Action;
  remote: { deviceId: string; device: string; op: RemoteOp };
}

export type RemoteJobInfo = RemoteJobPayload['remote'];

/** The device and request of a job that another device runs (a change made in its tree); undefined for local jobs. */
export function remoteOf(job: Job): RemoteJobInfo | undefined {
  return (job.payload as Partial<RemoteJobPayload>).remote;
}

export function isRemoteJob(job: Job): boolean {
  return remoteOf(job) !== undefined;
}

/** What the start of a mount did with the new files a stopped process left (see RemoteChanges.recover). */
export interface PendingRecovery {
  /** Staged, never committed: their copy jobs now. */
  committed: Array<{ path: string; jobId: number }>;
  /** Paused for a handle opened again: queued again. */
  requeued: Array<{ path: string; jobId: number }>;
  /** Nothing to send (staged bytes gone, a fetch cut short): taken back (`device`: its slug, when still known). */
  withdrawn: Array<{ path: string; reason: string; device?: string }>;
}

/** The device a change is for: its id and the name the mount shows. */
export interface PeerRef {
  id: string;
  slug: string;
}

export class RemoteChanges {
  readonly pending: PendingStore;
  private readonly jobs: JobStore;
  private readonly audit: AuditLog;
  readonly stagingDir: string;

  constructor(private readonly library: Library) {
    this.pending = new PendingStore(library.db);
    this.jobs = new JobStore(library.db);
    this.audit = new AuditLog(library.db);
    this.stagingDir = path.join(library.dir, 'outgoing');
  }

  stagedPath(change: PendingChange | number): string {
    return path.join(this.stagingDir, String(typeof change === 'number' ? change : change.id));
  }

  /**
   * A new file in the device's tree: a pending row and its staged file, opened read-write
   * (the mount's handle). Its copy job is committed when the handle is released (or, when
   * the process stopped first, by the next start: see recover). `overwrite`: the name shows
   * a file of the device, which the copy replaces; `fetching`: the staged bytes are that
   * file's, fetched to change it in place (see fetched).
   */
  newFile(device: PeerRef, location: string, rel: string, mode: number, how: { overwrite: boolean; fetching?: boolean }): { change: PendingChange; fd: number } {
    fs.mkdirSync(this.stagingDir, { recursive: true });
    const change = this.pending.add({ deviceId: device.id, location, path: rel, kind: 'file', mode, overwrite: how.overwrite, fetching: how.fetching });
    try {
      const fd = fs.openSync(this.stagedPath(change), fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC, mode & 0o7777);
      return { change, fd };
    } catch (err) {
      this.pending.remove(change.id);
      throw err;
    }
  }

  /**
   * The bytes of a pending file were written (its handle released): its copy job is
   * committed (replacing the device's file when the row says `overwrite`), or, when the
   * file was opened again meanwhile, queued again.
   */
  written(device: PeerRef, change: PendingChange): number {
    if (change.jobId !== null) {
      this.jobs.transition(change.jobId, 'paused', 'queued');
      return change.jobId;
    }
    const overwrite = change.overwrite;
    const size = fs.statSync(this.stagedPath(change)).size;
    const op: RemoteOp = { op: 'copy', location: change.location, path: change.path, pendingId: change.id, overwrite };
    return this.library.db.transaction(() => {
      const id = this.commit(device, op, { kind: 'copy', input: { sources: [this.stagedPath(change)], target: this.sdPath(device, change.location, change.path), onConflict: overwrite ? 'overwrite' : 'rename' } }, `copy ${change.path} (${size} bytes)`);
      this.pending.setJob(change.id, id);
      return id;
    }).immediate();
  }

  /** A pending file opened for writing again: its queued job waits until the handle is released. */
  reopened(change: PendingChange): void {
    if (change.jobId !== null) this.jobs.transition(change.jobId, 'queued', 'paused');
  }

  /**
   * At the start of the mount, the new files a stopped process left (killed, or unmounted
   * while a handle was open or a release waited for the library): every handle of that
   * process is gone, so each is treated as released. Staged and never committed: its copy
   * job is committed as a release would; paused for a handle opened again: queued again (not
   * when `sd jobs pause` paused it); staged bytes gone, or a fetch for an in-place change cut
   * short: withdrawn (nothing to send), audited. A job queued, running or settled is left to
   * the delivery, so nothing goes twice. `inUse`: files this process has open or is
   * releasing (a handle opened since the mount serves), left to their release. One
   * transaction: all or nothing when another process holds the library.
   */
  recover(inUse: (changeId: number) => boolean = () => false): PendingRecovery {
    const done: PendingRecovery = { committed: [], requeued: [], withdrawn: [] };
    const deviceOf = this.library.db.prepare('SELECT id, slug FROM devices WHERE id = ?');
    this.library.db.transaction(() => {
      for (const change of this.pending.files()) {
        if (inUse(change.id)) continue;
        const job = change.jobId === null ? undefined : this.jobs.get(change.jobId);
        if (change.jobId !== null && job?.status !== 'paused') continue;
        if (job && this.pausedByUser(job.id)) continue;
        const device = deviceOf.get(change.deviceId) as PeerRef | undefined;
        const staged = this.stagedPath(change);
        const lost = !device ? `device ${change.deviceId} is no longer known here` : !fs.existsSync(staged) ? `its staged bytes are gone (${staged})` : change.fetching ? 'the mount stopped while it fetched the file to change it in place: nothing written to it was sent' : undefined;
        const target = device ? this.sdPath(device, change.location, change.path) : `${change.location}/${change.path}`;
        if (lost !== undefined) {
          this.withdraw(change, `not sent: ${lost}`);
          if (!job) this.audit.append({ actor: 'fuse', action: 'copy', status: 'Failed', target, details: { reason: `not sent: ${lost}`, pendingId: change.id } });
          done.withdrawn.push({ path: target, reason: lost, ...(device ? { device: device.slug } : {}) });
          continue;
        }
        if (!job) {
          done.committed.push({ path: target, jobId: this.written(device!, change) });
          continue;
        }
        if (!this.jobs.transition(job.id, 'paused', 'queued')) continue;
        this.audit.append({ actor: 'fuse', action: job.kind, status: 'Committed', target: job.payload.target, details: { requeued: true, reason: 'its file was left open by a stopped mount' }, jobId: job.id });
        done.requeued.push({ path: target, jobId: job.id });
      }
    }).immediate();
    return done;
  }

  /**
   * Changes the device applied whose rows are still shown: the delivery clears them once its
   * mirror of the device has the change, and a process stopped before that left them for
   * good (a file's staged bytes hid the device's later versions). With the device's log
   * length that holds the change (0 when not recorded: clear at once).
   */
  appliedLeftovers(): Array<{ jobId: number; deviceId: string; logLength: number }> {
    const ids = this.library.db.prepare(`SELECT DISTINCT p.job_id FROM pending_changes p JOIN jobs j ON j.id = p.job_id WHERE j.status = 'completed' ORDER BY p.job_id`).pluck().all() as number[];
    return ids.flatMap((jobId) => {
      const job = this.jobs.get(jobId);
      const remote = job && remoteOf(job);
      if (!remote) return [];
      const completed = this.audit.trail(jobId).filter((r) => r.status === 'Completed').pop();
      const length = (completed?.details as { logLength?: unknown } | null)?.logLength;
      return [{ jobId, deviceId: remote.deviceId, logLength: typeof length === 'number' ? length : 0 }];
    });
  }

  /** Whether the job's last word is a pause a person asked for (sd jobs pause), which a start must not undo. */
  private pausedByUser(jobId: number): boolean {
    const last = this.audit.list({ jobId, limit: 1 })[0];
    return last?.status === 'Paused' && (last.details as { reason?: unknown } | null)?.reason === 'asked';
  }

  /** A new folder in the device's tree. */
  mkdir(device: PeerRef, location: string, rel: string, mode: number): number {
    return this.withChange(device, { op: 'mkdir', location, path: rel, mode }, { kind: 'mkdir', input: { target: this.sdPath(device, location, rel), mode } }, `mkdir ${rel}`, () => [{ path: rel, kind: 'dir', mode }]);
  }

  /** A file or folder of the device's tree removed (into the location's trash there). */
  remove(device: PeerRef, location: string, rel: string): number {
    return this.withChange(device, { op: 'delete', location, path: rel }, { kind: 'delete', input: { targets: [this.sdPath(device, location, rel)] } }, `delete ${rel}`, () => [{ path: rel, kind: 'gone' }]);
  }

  /** A rename inside one location of the device. */
  move(device: PeerRef, location: string, from: string, to: string): number {
    return this.withChange(device, { op: 'move', location, path: from, to }, { kind: 'move', input: { sources: [this.sdPath(device, location, from)], target: this.sdPath(device, location, to), onConflict: 'overwrite' } }, `move ${from} to ${to}`, () => [
      { path: from, kind: 'gone' },
      { path: to, kind: 'moved', source: from },
    ]);
  }

  /** A copy of a content onto the device, for the guardian (no pending row: the mount shows it once the device has it). */
  protect(device: PeerRef, location: string, rel: string, content: ProtectedContent, actor: string): number {
    return this.library.db.transaction(() => this.commit(device, { op: 'protect', location, path: rel, ...content }, undefined, `protect ${rel} (${content.size} bytes)`, actor)).immediate();
  }

  /** A copy of a content onto the device that a person asked for (sd do): delivered and checked as protect's are. */
  copyContent(device: PeerRef, location: string, rel: string, content: ProtectedContent, actor: string): number {
    return this.library.db.transaction(() => this.commit(device, { op: 'protect', location, path: rel, ...content }, undefined, `copy ${rel} (${content.size} bytes)`, actor)).immediate();
  }

  /** chmod/utimens of a folder made here or of something of the device (a pending file's go with its bytes). */
  attrs(device: PeerRef, location: string, rel: string, attrs: FileAttrs): number {
    const what = attrs.mode !== undefined ? `chmod ${(attrs.mode & 0o7777).toString(8)}` : 'set times of';
    return this.library.db.transaction(() => this.commit(device, { op: 'attrs', location, path: rel, ...attrs }, undefined, `${what} ${rel}`)).immediate();
  }

  /**
   * chmod/utimens of a pending new file: its staged copy takes them, and they travel with
   * its bytes (read when the copy job is sent). Once that job has gone (rsync sets times and
   * mode after closing the file, before renaming it), they are a job of their own after it.
   */
  stagedAttrs(device: PeerRef, change: PendingChange, attrs: FileAttrs): void {
    const staged = this.stagedPath(change);
    if (attrs.mode !== undefined) fs.chmodSync(staged, attrs.mode & 0o7777);
    if (attrs.mtimeMs !== undefined) fs.utimesSync(staged, new Date(attrs.atimeMs ?? attrs.mtimeMs), new Date(attrs.mtimeMs));
    if (change.jobId === null) return;
    const status = this.jobs.get(change.jobId)?.status;
    if (status === 'queued' || status === 'paused') return;
    this.attrs(device, change.location, change.path, attrs);
  }

  /**
   * Takes back a pending new file or folder whose job has not started (or was never
   * committed): its row, its staged bytes and its job (cancelled) go. False when it is
   * being delivered or was already.
   */
  withdraw(change: PendingChange, reason = 'removed before it was delivered'): boolean {
    if (change.jobId !== null) {
      const job = this.jobs.get(change.jobId);
      if (!job || !(this.jobs.transition(change.jobId, 'queued', 'cancelled') || this.jobs.transition(change.jobId, 'paused', 'cancelled'))) return false;
      this.audit.append({ actor: 'fuse', action: job.kind, status: 'Cancelled', target: job.payload.target, details: { reason }, jobId: job.id });
      this.pending.removeJob(change.jobId);
    }
    this.pending.remove(change.id);
    if (change.kind === 'file') fs.rmSync(this.stagedPath(change), { force: true });
    return true;
  }

  /** The job was applied by the device (the mirror shows the result now) or cancelled: its rows and staged bytes go. */
  clear(jobId: number): void {
    for (const change of this.pending.ofJob(jobId)) {
      this.pending.remove(change.id);
      if (change.kind === 'file') fs.rmSync(this.stagedPath(change), { force: true });
    }
  }

  /** The device refused the job: the mount stops showing it; a staged file stays for the user. */
  refused(jobId: number): string[] {
    const kept: string[] = [];
    for (const change of this.pending.ofJob(jobId)) {
      this.pending.remove(change.id);
      if (change.kind === 'file') kept.push(this.stagedPath(change));
    }
    return kept;
  }

  private sdPath(device: PeerRef, location: string, rel: string): string {
    return `sd://${device.slug}/${location}${rel ? `/${rel}` : ''}`;
  }

  private withChange(device: PeerRef, op: RemoteOp, action: Action | undefined, summary: string, rows: () => Array<{ path: string; kind: 'dir' | 'gone' | 'moved'; source?: string; mode?: number }>): number {
    return this.library.db.transaction(() => {
      const id = this.commit(device, op, action, summary);
      for (const row of rows()) this.pending.add({ deviceId: device.id, location: op.location, ...row, jobId: id });
      return id;
    }).immediate();
  }

  private commit(device: PeerRef, op: RemoteOp, action: Action | undefined, summary: string, actor = 'fuse'): number {
    const target = this.sdPath(device, op.location, op.path);
    const payload: RemoteJobPayload = {
      action,
      onConflict: op.op === 'copy' && !op.overwrite ? 'rename' : 'overwrite',
      verify: true,
      bwlimit: 0,
      summary: `${summary} on ${device.slug}`,
      target,
      remote: { deviceId: device.id, device: device.slug, op },
    };
    const kind = action?.kind ?? op.op;
    // Never run by JobRun (isRemoteJob keeps it out): the device runs it; the journal holds it meanwhile.
    const id = this.jobs.create(kind, payload as JobPayload, [], actor);
    this.audit.append({ actor, action: kind, status: 'Committed', target, details: { summary: payload.summary, device: device.slug }, jobId: id });
    return id;
  }
}
