// sd jobs [ls|show|pause|resume|cancel]: the committed actions, their progress and
// their audit trail; pause, resume (here, to the end) and cancel.
import { remoteOf } from '../../vdfs/remote-changes.js';
import { AuditLog } from '../../vdfs/audit.js';
import { JobManager } from '../../vdfs/jobs/job-manager.js';
import type { Job } from '../../vdfs/jobs/job-store.js';
import { UsageError, type Command, type CommandContext } from '../command.js';
import { formatBytes, formatTime, table } from '../format.js';
import { bwlimitOption, describeOutcome, requireCompleted, runJobHere } from './job-run.js';

function jobId(ctx: CommandContext, name: string): number {
  const [text, ...extra] = ctx.positionals;
  const id = Number(text);
  if (text === undefined || extra.length > 0 || !Number.isInteger(id) || id <= 0) throw new UsageError(`sd jobs ${name} takes one job ID (a number; 'sd jobs' lists them)`);
  return id;
}

/** The status a user sees: a job left running by a killed process is 'interrupted'. */
function shownStatus(job: Job): string {
  return job.interrupted ? 'interrupted' : job.status;
}

function jobJson(job: Job) {
  const p = job.progress;
  return {
    id: job.id,
    kind: job.kind,
    status: shownStatus(job),
    summary: job.payload.summary,
    target: job.payload.target,
    /** The paired device that runs it (a change made in its tree through the mount), else null. */
    device: remoteOf(job)?.device ?? null,
    actor: job.actor,
    filesDone: p.filesDone,
    filesTotal: p.filesTotal,
    bytesDone: p.bytesDone + (p.current?.bytes ?? 0),
    bytesTotal: p.bytesTotal,
    runs: p.runs,
    error: job.error,
    owner: job.owner,
    createdAt: new Date(job.createdAt).toISOString(),
    updatedAt: new Date(job.updatedAt).toISOString(),
  };
}

function percent(done: number, total: number): string {
  return total > 0 ? `${Math.floor((100 * done) / total)}%` : '-';
}

function listJobs(ctx: CommandContext): void {
  const jobs = new JobManager(ctx.library()).list({ limit: 50 }).map(jobJson);
  ctx.out.result(jobs, () =>
    jobs.length === 0
      ? ["No jobs yet; 'sd cp', 'sd mv', 'sd rm' and 'sd mkdir' make them"]
      : table(
          [
            ['ID', 'STATUS', 'KIND', 'DONE', 'FILES', 'SIZE', 'UPDATED', 'WHAT'],
            ...jobs.map((j) => [String(j.id), j.status, j.kind, percent(j.bytesTotal ? j.bytesDone : j.filesDone, j.bytesTotal || j.filesTotal), `${j.filesDone}/${j.filesTotal}`, formatBytes(j.bytesTotal), formatTime(Date.parse(j.updatedAt)), j.summary]),
          ],
          new Set([0, 3, 4, 5]),
        ),
  );
}

const ls: Command = {
  name: 'ls',
  summary: 'list jobs, newest first',
  usage: 'Usage: sd jobs [ls]\n\nStatus: queued, running, paused, interrupted (its process died: resume it), completed, failed, cancelled.',
  run: listJobs,
};

const show: Command = {
  name: 'show',
  summary: "a job's details and audit trail",
  usage: 'Usage: sd jobs show ID\n\nThe job, its progress and every audit row: who did what, when, and how it ended.',
  run(ctx) {
    const id = jobId(ctx, 'show');
    const library = ctx.library();
    const job = new JobManager(library).get(id);
    const trail = new AuditLog(library.db).trail(id);
    const data = { ...jobJson(job), onConflict: job.payload.onConflict, verify: job.payload.verify, progress: job.progress, audit: trail.map((r) => ({ ...r, at: new Date(r.at).toISOString() })) };
    ctx.out.result(data, () => [
      `job ${id}: ${data.summary}`,
      `  status ${data.status}, ${data.filesDone}/${data.filesTotal} files, ${formatBytes(data.bytesDone)}/${formatBytes(data.bytesTotal)}, ${data.runs} run${data.runs === 1 ? '' : 's'}${data.error ? `\n  error: ${data.error}` : ''}`,
      '  audit:',
      ...table(trail.map((r) => ['   ', formatTime(r.at), r.status, `by ${r.actor}`, r.details === null ? '' : JSON.stringify(r.details)])),
    ]);
  },
};

/** pause and cancel: ask the JobManager for a state change, print where the job stands. */
function stateCommand(name: 'pause' | 'cancel', summary: string, usage: string, change: (jobs: JobManager, id: number) => Promise<Job>, describe: (job: Job, id: number) => string): Command {
  return {
    name,
    summary,
    usage,
    async run(ctx) {
      const id = jobId(ctx, name);
      const job = await change(new JobManager(ctx.library()), id);
      ctx.out.result(jobJson(job), () => `job ${id} is ${shownStatus(job)}${describe(job, id)}`);
    },
  };
}

const pause = stateCommand(
  'pause',
  'pause a job at its next checkpoint',
  "Usage: sd jobs pause ID\n\nThe job stops at its next checkpoint (within about a second), wherever it runs; 'sd jobs resume ID' continues it.",
  (jobs, id) => jobs.pause(id),
  (job, id) => (job.status === 'paused' ? `; 'sd jobs resume ${id}' continues it` : ''),
);

const resume: Command = {
  name: 'resume',
  summary: 'continue a paused, failed or interrupted job here, to its end',
  usage: `Usage: sd jobs resume ID [--bwlimit RATE]

Runs the job in this process from its last checkpoint (a file half copied continues
where it stopped) with a progress bar; Ctrl-C pauses it again.`,
  options: { bwlimit: { type: 'string' } },
  async run(ctx) {
    const id = jobId(ctx, 'resume');
    const jobs = new JobManager(ctx.library(), { actor: 'cli' });
    const before = jobs.get(id);
    const outcome = await runJobHere(ctx, jobs, id, { bwlimit: bwlimitOption(ctx) });
    requireCompleted(outcome);
    const verb = before.kind === 'copy' ? 'Copied' : before.kind === 'move' ? 'Moved' : before.kind === 'mkdir' ? 'Created' : 'Deleted';
    ctx.out.result({ job: id, ...outcome, resumedAtBytes: outcome.progress.resumedAtBytes }, () => describeOutcome(verb, outcome, before.payload.verify, before.payload.target));
  },
};

const cancel = stateCommand(
  'cancel',
  'cancel a job (finished files stay; a partial file is removed)',
  'Usage: sd jobs cancel ID',
  (jobs, id) => jobs.cancel(id),
  (job) => ` (${job.progress.filesDone}/${job.progress.filesTotal} files were done and stay)`,
);

export const jobsCommand: Command = {
  name: 'jobs',
  usage: 'Usage: sd jobs [ls] | sd jobs show|pause|resume|cancel ID',
  subcommands: [ls, show, pause, resume, cancel],
  run: listJobs,
};
