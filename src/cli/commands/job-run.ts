// Runs a job in the CLI process to its end with a progress bar on a terminal; Ctrl-C
// pauses it at a checkpoint ('sd jobs resume ID' continues). Held up by another process
// holding the library, it says so on stderr and waits. Shared by cp, mv, rm, mkdir and
// jobs resume.
import { SdError } from '../../errors.js';
import type { ActionPreview } from '../../vdfs/actions/types.js';
import type { JobManager, JobOutcome } from '../../vdfs/jobs/job-manager.js';
import type { ProgressEvent } from '../../vdfs/jobs/job-run.js';
import type { CommandContext } from '../command.js';
import { formatBytes, parseSize } from '../format.js';
import { UsageError } from '../command.js';
import { ProgressLine } from '../progress.js';

export async function runJobHere(ctx: CommandContext, jobs: JobManager, id: number, options: { bwlimit?: number } = {}): Promise<JobOutcome> {
  const progress = new ProgressLine();
  const started = Date.now();
  const draw = (e: ProgressEvent) => {
    const width = 24;
    const fraction = e.bytesTotal > 0 ? Math.min(1, e.bytesDone / e.bytesTotal) : e.filesTotal > 0 ? e.filesDone / e.filesTotal : 0;
    const filled = Math.round(fraction * width);
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0.5 ? ` ${formatBytes(Math.round(e.bytesDone / seconds))}/s` : '';
    progress.update(`job ${id} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${e.filesDone}/${e.filesTotal} files ${formatBytes(e.bytesDone)}/${formatBytes(e.bytesTotal)}${rate} ${e.current ?? ''}`);
  };
  void ctx.stopped.then(() => {
    progress.clear();
    ctx.out.info(`sd: pausing job ${id} at its next checkpoint...`);
    jobs.pause(id).catch(() => undefined);
  });
  const waiting = () => {
    progress.clear();
    ctx.out.info(`sd: another process holds the library past the busy timeout; job ${id} waits for the library and goes on when it is free (Ctrl-C pauses it)`);
  };
  try {
    return await jobs.run(id, { onProgress: draw, bwlimit: options.bwlimit, onLibraryBusy: waiting });
  } finally {
    progress.clear();
  }
}

/** Throws the one-line error for a job that did not complete. */
export function requireCompleted(outcome: JobOutcome): void {
  const id = outcome.id;
  if (outcome.status === 'completed') return;
  if (outcome.status === 'failed') throw new SdError('IO', `job ${id} failed: ${outcome.error}; fix that and 'sd jobs resume ${id}', or 'sd jobs cancel ${id}'`);
  if (outcome.status === 'cancelled') throw new SdError('CANCELLED', `job ${id} was cancelled; finished files stay`);
  if (outcome.status === 'running') {
    throw new SdError('LIBRARY_LOCKED', `job ${id} stopped at ${outcome.progress.filesDone}/${outcome.progress.filesTotal} files while another process held the library, so it could not record that: it shows as interrupted; 'sd jobs resume ${id}' continues it`);
  }
  throw new SdError('BUSY', `job ${id} is ${outcome.status} at ${outcome.progress.filesDone}/${outcome.progress.filesTotal} files; 'sd jobs resume ${id}' continues it`);
}

export function describeOutcome(verb: string, o: JobOutcome, verify: boolean, target = ''): string[] {
  const p = o.progress;
  if (verb === 'Created') return [`Created ${target} — job ${o.id}`];
  const rate = o.seconds > 0 && p.copiedBytes >= 1024 * 1024 ? `, ${formatBytes(Math.round(p.copiedBytes / o.seconds))}/s` : '';
  const extra = [
    p.identical ? `${p.identical} already there (same content)` : '',
    p.skipped ? `${p.skipped} skipped` : '',
    p.renamed ? `${p.renamed} renamed` : '',
  ].filter(Boolean);
  const copied = (verb === 'Copied' || verb === 'Moved') && (p.copiedBytes > 0 || p.verified > 0);
  const checked = copied ? `, verified (${verified(verify, p.verified)})` : verb === 'Moved' ? ' (renamed in place)' : '';
  return [`${verb} ${p.filesDone} file${p.filesDone === 1 ? '' : 's'} (${formatBytes(p.bytesDone)}) in ${o.seconds} s${rate}${checked} — job ${o.id}${extra.length ? ` (${extra.join(', ')})` : ''}`];
}

/** How the copies were checked: all by full BLAKE3 (--verify), or by size and content id and the resumed ones in full. */
function verified(verify: boolean, fullyChecked: number): string {
  if (verify) return 'full BLAKE3';
  if (fullyChecked === 0) return 'size + content id';
  return `size + content id; ${fullyChecked === 1 ? 'the resumed file' : `${fullyChecked} resumed files`} by full BLAKE3`;
}

/** The guarded files a delete's preview found, as lines to go before its closing line. */
export function describeGuarded(p: ActionPreview): string[] {
  const g = p.guarded;
  if (!g || g.files === 0) return [];
  const lines = [`  guarded:        ${g.files} file${g.files === 1 ? '' : 's'} (${formatBytes(g.bytes)}) the guardian stands against${g.forced ? ' (--force: deleted anyway)' : ''}`];
  for (const s of g.samples) lines.push(`    ${s.path}: ${s.why}`);
  if (g.files > g.samples.length) lines.push(`    … and ${g.files - g.samples.length} more`);
  return lines;
}

export function describePreview(p: ActionPreview): string[] {
  const lines: string[] = [];
  const where = p.target ? ` to ${p.target.sdpath ?? p.target.path}` : '';
  const named = p.sources.map((s) => s.sdpath ?? s.path);
  const what = named.length <= 3 ? named.join(', ') : `${named.slice(0, 3).join(', ')} and ${named.length - 3} more`;
  if (p.action === 'delete') lines.push(`Preview: ${p.trash ? 'move to the trash' : 'delete for good'} ${what}: ${p.files} files, ${p.dirs} folders, ${formatBytes(p.bytes)}`);
  else if (p.action === 'mkdir') lines.push(`Preview: create ${p.dirs} folder${p.dirs === 1 ? '' : 's'} at ${p.target?.sdpath ?? p.target?.path}`);
  else lines.push(`Preview: ${p.action} ${p.files} file${p.files === 1 ? '' : 's'}${p.dirs ? ` in ${p.dirs} folder${p.dirs === 1 ? '' : 's'}` : ''} (${formatBytes(p.bytes)}) from ${what}${where}`);
  if (p.action === 'copy' || p.action === 'move') {
    if (p.sameFileSystem) lines.push('  same file system: renamed in place, no bytes copied');
    lines.push(`  to copy:        ${formatBytes(p.bytesToCopy)}; free on target: ${p.freeBytes === null ? 'unknown' : formatBytes(p.freeBytes)} (${p.fits ? 'fits' : 'DOES NOT FIT'})`);
    lines.push(`  conflicts:      ${p.conflictCount === 0 ? 'none' : `${p.conflictCount} (--on-conflict ${p.onConflict})`}`);
    for (const c of p.conflicts.slice(0, 10)) lines.push(`    ${c.sdpath ?? c.path}: ${c.resolution}`);
    if (p.conflictCount > 10) lines.push(`    … and ${p.conflictCount - 10} more (--json lists ${p.conflicts.length})`);
    lines.push(`  already there:  ${p.dedup.files === 0 ? 'nothing' : `${p.dedup.files} file${p.dedup.files === 1 ? '' : 's'} (${formatBytes(p.dedup.bytes)}) with the same content in the target location`}${p.dedup.partial ? ' (not all sources hashed)' : ''}`);
    for (const d of p.dedup.samples.slice(0, 5)) lines.push(`    ${d.path} = ${d.existing}`);
  }
  if (p.trash) lines.push(`  trash folder:   ${p.trash}`);
  lines.push(`  permissions:    ${p.permissionProblems.length === 0 ? 'ok' : p.permissionProblems.map((x) => `${x.path} not ${x.need === 'read' ? 'readable' : 'writable'} (${x.errno})`).join('; ')}`);
  if (p.action === 'copy' || p.action === 'move') lines.push(`  estimated time: ${p.estimatedSeconds} s at ${formatBytes(p.throughputBytesPerSec)}/s (${p.throughputSource})`);
  for (const problem of p.problems) lines.push(`  problem: ${problem.message}`);
  lines.push(p.ok ? '  nothing was changed; run again without --preview to do it' : '  nothing was changed; this would not start as it is');
  return lines;
}

export function bwlimitOption(ctx: CommandContext): number | undefined {
  const text = ctx.values.bwlimit as string | undefined;
  if (text === undefined) return undefined;
  const bytes = parseSize(text.replace(/\/s$/i, ''));
  if (bytes === undefined) throw new UsageError(`--bwlimit takes a rate like 50M or 1.5GiB (per second), not '${text}'`);
  return bytes;
}
