// The audit log: who changed what, when, and how it ended. Actions and jobs append a
// row per step (Previewed → Committed → Running → Completed/Failed/Cancelled); the mount
// appends one compact row per namespace operation. Rows are never rewritten.
import type { Db } from './db/database.js';

export type AuditStatus = 'Previewed' | 'Committed' | 'Running' | 'Paused' | 'Completed' | 'Failed' | 'Cancelled';

/** Who asked: the CLI, the mount (FUSE), a job resumed on its own, or a named front end. */
export type Actor = 'cli' | 'fuse' | 'job' | (string & {});

export interface AuditInput {
  actor: Actor;
  /** What was done: copy, move, delete, mkdir, or a namespace op (create, rename, ...). */
  action: string;
  status: AuditStatus;
  /** What it was done to: an SdPath or a short description. */
  target?: string | null;
  details?: unknown;
  jobId?: number | null;
  /** Milliseconds since the epoch; now when left out. */
  at?: number;
}

export interface AuditRecord {
  id: number;
  at: number;
  actor: string;
  action: string;
  status: AuditStatus;
  target: string | null;
  details: unknown;
  jobId: number | null;
}

interface AuditRow {
  id: number;
  at: number;
  actor: string;
  action: string;
  status: AuditStatus;
  target: string | null;
  details: string | null;
  job_id: number | null;
}

export interface AuditQuery {
  jobId?: number;
  action?: string;
  /** Only rows at or after this time (ms). */
  since?: number;
  /** Newest rows first, at most this many (default 100). */
  limit?: number;
}

export class AuditLog {
  private readonly insert;

  constructor(private readonly db: Db) {
    this.insert = db.prepare('INSERT INTO audit_log (at, actor, action, status, target, details, job_id) VALUES (?, ?, ?, ?, ?, ?, ?)');
  }

  append(input: AuditInput): number {
    const details = input.details === undefined ? null : JSON.stringify(input.details);
    return Number(this.insert.run(input.at ?? Date.now(), input.actor, input.action, input.status, input.target ?? null, details, input.jobId ?? null).lastInsertRowid);
  }

  /** Rows matching the query, newest first (a job's trail: oldest first, see trail()). */
  list(query: AuditQuery = {}): AuditRecord[] {
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (query.jobId !== undefined) (where.push('job_id = ?'), args.push(query.jobId));
    if (query.action !== undefined) (where.push('action = ?'), args.push(query.action));
    if (query.since !== undefined) (where.push('at >= ?'), args.push(query.since));
    const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, query.limit ?? 100) as AuditRow[]).map(toRecord);
  }

  /** Every row of one job, in the order they were written. */
  trail(jobId: number): AuditRecord[] {
    return (this.db.prepare('SELECT * FROM audit_log WHERE job_id = ? ORDER BY id').all(jobId) as AuditRow[]).map(toRecord);
  }
}

function toRecord(row: AuditRow): AuditRecord {
  return {
    id: row.id,
    at: row.at,
    actor: row.actor,
    action: row.action,
    status: row.status,
    target: row.target,
    details: row.details === null ? null : (JSON.parse(row.details) as unknown),
    jobId: row.job_id,
  };
}
