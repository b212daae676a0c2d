// The one door for changes: preview an action (zero writes), commit it as a durable job
// (the journal; audit Previewed + Committed), and apply the mount's namespace ops at
// once. Every front end — CLI, FUSE, tests — goes through here.
import { SdError } from '../../errors.js';
import { AuditLog, type Actor } from '../audit.js';
import { commitGrouped } from '../db/group-commit.js';
import type { Library } from '../library.js';
import type { Location } from '../locations.js';
import { JobManager, type JobOutcome, type RunOptions } from '../jobs/job-manager.js';
import { JobStore } from '../jobs/job-store.js';
import { FsOpApplier } from './apply-fs-op.js';
import { planCopy } from './copy.js';
import { planDelete } from './delete.js';
import type { FsOp, FsOpResult } from './fs-op.js';
import { planMkdir } from './mkdir.js';
import { planMove } from './move.js';
import { planFetch } from './fetch.js';
import { planRepair } from './repair.js';
import { planScrub } from './scrub.js';
import type { Action, ActionPreview, Plan } from './types.js';

export function planAction(library: Library, action: Action): Plan {
  switch (action.kind) {
    case 'copy':
      return planCopy(library, action.input);
    case 'move':
      return planMove(library, action.input);
    case 'delete':
      return planDelete(library, action.input);
    case 'mkdir':
      return planMkdir(library, action.input);
    case 'scrub':
      return planScrub(library, action.input);
    case 'repair':
      return planRepair(library, action.input);
    case 'fetch':
      return planFetch(library, action.input);
  }
}

/** The preview fields worth keeping in the audit log (no sample lists). */
function previewSummary(p: ActionPreview) {
  return {
    files: p.files,
    dirs: p.dirs,
    bytes: p.bytes,
    bytesToCopy: p.bytesToCopy,
    freeBytes: p.freeBytes,
    conflicts: p.conflictCount,
    onConflict: p.onConflict,
    dedupFiles: p.dedup.files,
    estimatedSeconds: p.estimatedSeconds,
    sources: p.sources.map((s) => s.sdpath ?? s.path),
    ...(p.guarded && p.guarded.files > 0 ? { guardedFiles: p.guarded.files, guardedBytes: p.guarded.bytes, forced: p.guarded.forced } : {}),
  };
}

/**
 * A paired device's delete in this device's tree is its user's unlink through their mount:
 * into the trash, never refused by the guard (the file is kept there, as a guarded unlink
 * of this mount keeps it).
 */
function asAsked(action: Action, actor: Actor): Action {
  if (action.kind !== 'delete' || action.input.permanent || !actor.startsWith('device:')) return action;
  return { kind: 'delete', input: { ...action.input, force: true } };
}

export class ActionManager {
  private readonly audit: AuditLog;
  private readonly jobStore: JobStore;
  private readonly fsOps: FsOpApplier;
  readonly jobs: JobManager;

  constructor(
    private readonly library: Library,
    options: { actor?: Actor; groupCommitMs?: number } = {},
  ) {
    this.audit = new AuditLog(library.db);
    this.jobStore = new JobStore(library.db);
    this.fsOps = new FsOpApplier(library, options.groupCommitMs);
    this.jobs = new JobManager(library, options);
  }

  /**
   * What the action would do: files and bytes, free space, conflicts, dedup, permission
   * problems, time. Reads the disk and the index; writes nothing at all (no audit row:
   * the Previewed row is written when the action is committed, with this summary).
   */
  preview(action: Action): ActionPreview {
    return planAction(this.library, action).preview;
  }

  /**
   * Plans the action again, refuses it when its preview finds a problem (missing source,
   * no space, permissions, a conflict under --on-conflict abort, a guarded delete not
   * forced), else writes the job and its steps and the audit rows Previewed and Committed
   * in one transaction. Returns the job id.
   */
  commit(asked: Action, actor: Actor = 'cli'): number {
    const action = asAsked(asked, actor);
    const plan = planAction(this.library, action);
    const p = plan.preview;
    if (!p.ok) {
      const problem = p.problems[0];
      const denied = p.permissionProblems[0];
      if (problem) throw new SdError(problem.code, `${action.kind} not started: ${problem.message}`);
      if (denied) throw new SdError('PERMISSION', `${action.kind} not started: ${denied.path} is not ${denied.need === 'read' ? 'readable' : 'writable'} (${denied.errno}); fix its permissions`);
      throw new SdError('DISK_FULL', `${action.kind} not started: it does not fit on the target`);
    }
    // The journal row is durable before the job can start, not a few ms later with the mount's changes.
    commitGrouped(this.library.db);
    return this.library.db.transaction(() => {
      const id = this.jobStore.create(action.kind, plan.payload, plan.items, actor);
      const target = plan.payload.target;
      this.audit.append({ actor, action: action.kind, status: 'Previewed', target, details: previewSummary(p), jobId: id });
      this.audit.append({ actor, action: action.kind, status: 'Committed', target, details: { summary: plan.payload.summary, steps: plan.items.length, onConflict: plan.payload.onConflict, verify: plan.payload.verify, ...(p.guarded?.forced ? { forced: true } : {}) }, jobId: id });
      return id;
    }).immediate();
  }

  /** Commits the action and runs its job here to the end (the CLI's way). */
  async execute(action: Action, actor: Actor = 'cli', options: RunOptions = {}): Promise<JobOutcome> {
    const id = this.commit(action, actor);
    return this.jobs.run(id, { actor, ...options });
  }

  /**
   * Executes one namespace op of the mount on a local location, synchronously: the disk,
   * then the index and one audit row. Throws an SdError whose errno FUSE returns as is.
   */
  applyFsOp(location: Location, op: FsOp, actor: Actor = 'fuse'): FsOpResult {
    return this.fsOps.apply(location, op, actor);
  }
}
