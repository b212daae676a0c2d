// The jobs table and its items: the durable journal of committed actions. A job is
// claimed by one process at a time (owner), checkpoints its progress in its row, and
// reads pause or cancel requests (control) written by other processes.
import type { Db } from '../db/database.js';
import type { JobPayload, PlanItem, PlanOp } from '../actions/types.js';
import { bootId, isOwnerAlive } from './owner.js';

export type JobStatus = 'queued' | 'running' | 'paused' | 'completed' | 'failed' | 'cancelled';
export type JobControl = 'pause' | 'cancel';

/** How far a job got; JSON in jobs.progress, written at every checkpoint. */
export interface JobProgress {
  itemsTotal: number;
  /** The first step not finished yet. */
  nextSeq: number;
  filesTotal: number;
  filesDone: number;
  bytesTotal: number;
  /** Bytes of finished steps plus what the current file has so far. */
  bytesDone: number;
  /** The step in flight: where its bytes go and how far it got. */
  current: CurrentStep | null;
  /** Bytes written by copies (not renames) and the time spent running, for throughput. */
  copiedBytes: number;
  copyMs: number;
  skipped: number;
  identical: number;
  renamed: number;
  verified: number;
  /** Scrub: files whose bytes changed while their size and mtime did not (bit rot). */
  corrupt?: number;
  /** How many times the job started (1 + resumes). */
  runs: number;
  /** Bytes of a half-copied file the last run kept and continued from (a resume, not a restart). */
  resumedAtBytes: number;
  /** Every step before this one is on disk for good (fsync'ed), as of boot `durableBoot`. */
  durableSeq: number;
  durableBoot: string;
}

export interface CurrentStep {
  seq: number;
  /** Bytes in the part file at the last checkpoint (survive a killed process). */
  bytes: number;
  /** Bytes made durable by fdatasync (survive a power loss: used after a reboot). */
  synced?: number;
  /** The boot the checkpoint was written in (/proc/sys/kernel/random/boot_id). */
  boot?: string;
  finalDst: string | null;
  part: string | null;
  /** The source as it was when the copy began: a resume onto a changed source starts over. */
  srcSize?: number;
  srcMtimeMs?: number;
}

export interface Job {
  id: number;
  kind: string;
  status: JobStatus;
  payload: JobPayload;
  progress: JobProgress;
  error: string | null;
  actor: string;
  owner: string | null;
  control: JobControl | null;
  createdAt: number;
  updatedAt: number;
  /** Left 'running' by a process that is gone (killed): resumable. */
  interrupted: boolean;
}

export interface JobItem extends PlanItem {
  status: 'done' | 'skipped' | null;
  finalDst: string | null;
}

interface JobRow {
  id: number;
  kind: string;
  status: JobStatus;
  payload: string;
  progress: string | null;
  error: string | null;
  actor: string;
  owner: string | null;
  control: JobControl | null;
  created_at: number;
  updated_at: number;
}

interface ItemRow {
  seq: number;
  op: PlanOp;
  src: string | null;
  dst: string | null;
  size: number;
  content_id: string | null;
  status: 'done' | 'skipped' | null;
  final_dst: string | null;
}

export function emptyProgress(items: readonly PlanItem[]): JobProgress {
  const counted = items.filter((i) => i.op !== 'mkdir' && i.op !== 'rmdir');
  return {
    itemsTotal: items.length,
    nextSeq: 0,
    filesTotal: counted.length,
    filesDone: 0,
    bytesTotal: items.reduce((sum, i) => sum + i.size, 0),
    bytesDone: 0,
    current: null,
    copiedBytes: 0,
    copyMs: 0,
    skipped: 0,
    identical: 0,
    renamed: 0,
    verified: 0,
    runs: 0,
    resumedAtBytes: 0,
    durableSeq: 0,
    durableBoot: bootId(),
  };
}

function toJob(row: JobRow): Job {
  const payload = JSON.parse(row.payload) as JobPayload;
  const progress = row.progress ? (JSON.parse(row.progress) as JobProgress) : emptyProgress([]);
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    payload,
    progress,
    error: row.error,
    actor: row.actor,
    owner: row.owner,
    control: row.control,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    interrupted: row.status === 'running' && (row.owner === null || !isOwnerAlive(row.owner)),
  };
}

function toItem(row: ItemRow): JobItem {
  return { seq: row.seq, op: row.op, src: row.src, dst: row.dst, size: row.size, contentId: row.content_id, status: row.status, finalDst: row.final_dst };
}

export class JobStore {
  private readonly s;

  constructor(readonly db: Db) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      insert: p(`INSERT INTO jobs (kind, status, payload, progress, actor, created_at, updated_at) VALUES (?, 'queued', ?, ?, ?, ?, ?)`),
      insertItem: p('INSERT INTO job_items (job_id, seq, op, src, dst, size, content_id) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      get: p('SELECT * FROM jobs WHERE id = ?'),
      claim: p(`UPDATE jobs SET status = 'running', owner = ?, control = NULL, error = NULL, updated_at = ?
                WHERE id = ? AND status = ? AND coalesce(owner, '') = ?`),
      checkpoint: p('UPDATE jobs SET progress = ?, updated_at = ? WHERE id = ?'),
      finishItem: p('UPDATE job_items SET status = ?, final_dst = ? WHERE job_id = ? AND seq = ?'),
      resetItem: p('UPDATE job_items SET status = NULL, final_dst = NULL WHERE job_id = ? AND seq = ?'),
      settle: p('UPDATE jobs SET status = ?, error = ?, owner = NULL, control = NULL, progress = ?, updated_at = ? WHERE id = ?'),
      setStatus: p('UPDATE jobs SET status = ?, owner = NULL, control = NULL, updated_at = ? WHERE id = ? AND status = ?'),
      control: p('SELECT control FROM jobs WHERE id = ?'),
      requestControl: p('UPDATE jobs SET control = ?, updated_at = ? WHERE id = ?'),
      items: p('SELECT * FROM job_items WHERE job_id = ? AND seq >= ? ORDER BY seq LIMIT ?'),
      remoteDevices: p(`SELECT DISTINCT json_extract(payload, '$.remote.deviceId') FROM jobs
                         WHERE status IN ('queued', 'running') AND json_extract(payload, '$.remote.deviceId') IS NOT NULL`).pluck(),
      oldestRemote: p(`SELECT * FROM jobs WHERE status IN ('queued', 'running', 'paused')
                       AND json_extract(payload, '$.remote.deviceId') = ? ORDER BY id LIMIT 1`),
      doneDirs: p(`SELECT * FROM job_items WHERE job_id = ? AND op = 'mkdir' AND status IS NOT NULL AND (final_dst IS NULL OR final_dst != dst) ORDER BY seq`),
    };
  }

  /** Writes a committed job and its steps (the caller holds the transaction). */
  create(kind: string, payload: JobPayload, items: readonly PlanItem[], actor: string, now = Date.now()): number {
    const id = Number(this.s.insert.run(kind, JSON.stringify(payload), JSON.stringify(emptyProgress(items)), actor, now, now).lastInsertRowid);
    for (const i of items) this.s.insertItem.run(id, i.seq, i.op, i.src, i.dst, i.size, i.contentId);
    return id;
  }

  get(id: number): Job | undefined {
    const row = this.s.get.get(id) as JobRow | undefined;
    return row && toJob(row);
  }

  list(options: { statuses?: JobStatus[]; limit?: number } = {}): Job[] {
    const where = options.statuses?.length ? `WHERE status IN (${options.statuses.map(() => '?').join(', ')})` : '';
    const rows = this.db.prepare(`SELECT * FROM jobs ${where} ORDER BY id DESC LIMIT ?`).all(...(options.statuses ?? []), options.limit ?? 50) as JobRow[];
    return rows.map(toJob);
  }

  /** Devices with changes to their trees waiting here (jobs whose payload names a remote device, queued or running). */
  remoteDevicesWaiting(): string[] {
    return this.s.remoteDevices.all() as string[];
  }

  /** The oldest unsettled job (queued, running or paused) that device `deviceId` is to run: changes go to it in order. */
  oldestRemote(deviceId: string): Job | undefined {
    const row = this.s.oldestRemote.get(deviceId) as JobRow | undefined;
    return row && toJob(row);
  }

  /** Takes the job for `owner` if it is still as observed (status and owner); returns whether it did. */
  claim(id: number, owner: string, observed: { status: JobStatus; owner: string | null }): boolean {
    return this.s.claim.run(owner, Date.now(), id, observed.status, observed.owner ?? '').changes === 1;
  }

  checkpoint(id: number, progress: JobProgress): void {
    this.s.checkpoint.run(JSON.stringify(progress), Date.now(), id);
  }

  finishItem(id: number, seq: number, status: 'done' | 'skipped', finalDst: string | null): void {
    this.s.finishItem.run(status, finalDst, id, seq);
  }

  /** Marks a finished step as to do again (its result did not survive a power loss). */
  resetItem(id: number, seq: number): void {
    this.s.resetItem.run(id, seq);
  }

  /** Ends a run: the new status, an error message, the final progress; the owner lets go. */
  settle(id: number, status: JobStatus, progress: JobProgress, error: string | null = null): void {
    this.s.settle.run(status, error, JSON.stringify(progress), Date.now(), id);
  }

  /** Changes a job's status only if it is still `from` (no runner involved). */
  transition(id: number, from: JobStatus, to: JobStatus): boolean {
    return this.s.setStatus.run(to, Date.now(), id, from).changes === 1;
  }

  control(id: number): JobControl | null {
    return (this.s.control.pluck().get(id) as JobControl | null | undefined) ?? null;
  }

  requestControl(id: number, control: JobControl): void {
    this.s.requestControl.run(control, Date.now(), id);
  }

  /** Steps from seq on, a page at a time. */
  items(id: number, fromSeq: number, limit = 500): JobItem[] {
    return (this.s.items.all(id, fromSeq, limit) as ItemRow[]).map(toItem);
  }

  /** Finished folder steps whose destination moved (renamed) or was skipped: their contents follow them. */
  redirectedDirs(id: number): JobItem[] {
    return (this.s.doneDirs.all(id) as ItemRow[]).map(toItem);
  }
}
