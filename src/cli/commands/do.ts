// sd do: a command in plain language ("copy my 2024 photos to the nas") made one of the
// existing actions, its preview always printed first; it runs with --yes or a yes on a
// terminal, never otherwise.
import path from 'node:path';
import readline from 'node:readline/promises';
import { SdError } from '../../errors.js';
import { ActionManager } from '../../vdfs/actions/action-manager.js';
import { fullHashAsync } from '../../vdfs/jobs/copy-file.js';
import { CopyChecks, isCurrent } from '../../vdfs/content/copy-checks.js';
import { ContentStore } from '../../vdfs/content/store.js';
import type { Entry } from '../../vdfs/entries.js';
import { EntryViewer, type EntryView } from '../../vdfs/listing.js';
import { RemoteChanges } from '../../vdfs/remote-changes.js';
import { planDo, type DoPlan } from '../../vdfs/search/do-plan.js';
import { parseIntent } from '../../vdfs/search/intent.js';
import { TagStore, validateTag } from '../../vdfs/tags.js';
import type { Command, CommandContext } from '../command.js';
import { formatBytes, printable } from '../format.js';
import { describeGuarded, describeOutcome, describePreview, requireCompleted, runJobHere } from './job-run.js';

const SHOWN = 10;

export const doCommand: Command = {
  name: 'do',
  usage: `Usage: sd do SENTENCE... [--yes] [--force]

Does what a sentence says, with the actions sd has: copy, move, delete (to the
location's trash) and tag. The files are a search (see 'sd search --help': kinds,
topics, dates, sizes, devices, locations, folders, tags); where to is a device (its
location: "the nas", "nas backup"), a location or folder of this device by name, or an
SdPath.
  sd do copy my 2024 photos to the nas
  sd do move screenshots older than a month to archive
  sd do tag everything in taxes 2025 as tax
  sd do delete duplicates in Downloads
The preview comes first, always; nothing runs without --yes, or a 'y' when asked on a
terminal. Copy, move and delete act on this device's files (a copy onto a paired device
is queued as jobs its running 'sd mount' delivers, checked by full BLAKE3 there); tag
works on any device's files. At most 10,000 files per sentence. A sentence it cannot map
says what it understood and what not (exit 2). --json prints the plan (and the outcome).
  --yes     do it after the preview, without asking
  --force   a delete goes ahead even for the last copy of a content, or one its copy
            policy counts on (as sd rm --force; the preview names them)`,
  options: { yes: { type: 'boolean' }, force: { type: 'boolean' } },
  async run(ctx) {
    const text = ctx.positionals.join(' ').trim();
    const intent = parseIntent(text);
    const library = ctx.library();
    const plan = planDo(library, intent, { force: ctx.values.force === true });
    const files = plan.kind === 'tag' ? plan.entries : plan.files;
    const views = new EntryViewer(library.db).views(files);
    const paths = views.map((v) => v.sdpath);
    const preview = plan.kind === 'action' ? new ActionManager(library, { actor: 'cli' }).preview(plan.action) : undefined;
    const lines = [
      ...plan.notes.map((n) => `understood: ${n}`),
      ...(plan.kind === 'tag'
        ? [`Preview: tag ${plan.tags.join(', ')} on ${files.length} entr${files.length === 1 ? 'y' : 'ies'}`]
        : plan.kind === 'remote-copy'
          ? [`Preview: copy ${files.length} file${files.length === 1 ? '' : 's'} (${formatBytes(files.reduce((n, f) => n + f.size, 0))}) to ${plan.to.sdPath} on ${plan.to.device.slug}: queued as jobs its running 'sd mount' delivers (it fetches the bytes and checks their full BLAKE3; what it holds already is not copied again)`]
          : describePreview(preview!).slice(0, -1).concat(describeGuarded(preview!))),
      ...paths.slice(0, SHOWN).map((p) => `  ${printable(p)}`),
      ...(paths.length > SHOWN ? [`  … and ${paths.length - SHOWN} more (--json lists them all)`] : []),
    ];
    const planJson = { intent, notes: plan.notes, kind: plan.kind, files: paths, ...(plan.kind === 'tag' ? { tags: plan.tags } : {}), ...(plan.kind === 'remote-copy' ? { to: plan.to.sdPath } : {}), ...(preview ? { preview } : {}) };
    if (preview && !preview.ok) {
      ctx.out.result({ plan: planJson, done: false }, () => [...lines, '  nothing was changed; this would not start as it is']);
      return 1;
    }
    if (!(await confirmed(ctx, lines))) {
      ctx.out.result({ plan: planJson, done: false }, () => [...lines, "  nothing was changed: run again with --yes to do it (or answer 'y' on a terminal)"]);
      return 0;
    }
    const outcome = await carryOut(ctx, plan, views);
    ctx.out.result({ plan: planJson, done: true, ...outcome.json }, () => (process.stdin.isTTY && !ctx.values.yes ? outcome.lines : [...lines, ...outcome.lines]));
    return 0;
  },
};

/** --yes, or a 'y' typed on a terminal after the preview; never without a terminal. */
async function confirmed(ctx: CommandContext, preview: string[]): Promise<boolean> {
  if (ctx.values.yes) return true;
  if (ctx.json || !process.stdin.isTTY || !process.stderr.isTTY) return false;
  for (const line of preview) ctx.out.info(line);
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await Promise.race([rl.question('Do it? [y/N] '), ctx.stopped.then(() => 'n')]);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

async function carryOut(ctx: CommandContext, plan: DoPlan, views: readonly EntryView[]): Promise<{ lines: string[]; json: Record<string, unknown> }> {
  const library = ctx.library();
  if (plan.kind === 'tag') {
    const tags = plan.tags.map(validateTag);
    const store = new TagStore(library.db, library.device.id);
    const changed = library.db.transaction(() => plan.entries.reduce((n, e) => n + (store.add(e, tags).length > 0 ? 1 : 0), 0)).immediate();
    return { lines: [`Tagged ${changed} entr${changed === 1 ? 'y' : 'ies'} ${tags.join(', ')}${changed < plan.entries.length ? ` (${plan.entries.length - changed} had ${tags.length === 1 ? 'it' : 'them'} already)` : ''}`], json: { tagged: changed } };
  }
  if (plan.kind === 'remote-copy') return copyToPeer(ctx, plan, views);
  const actions = new ActionManager(library, { actor: 'cli' });
  const id = actions.commit(plan.action, 'cli');
  const outcome = await runJobHere(ctx, actions.jobs, id);
  requireCompleted(outcome);
  const verb = plan.action.kind === 'copy' ? 'Copied' : plan.action.kind === 'move' ? 'Moved' : 'Trashed';
  return { lines: describeOutcome(verb, outcome, false, actions.jobs.get(id).payload.target), json: { job: id, ...outcome } };
}

/**
 * One remote copy job per file (the guardian's kind: the device fetches the content from
 * whoever holds it and checks its full BLAKE3 before it lands). A file whose own full hash
 * is not known is read whole here first; names that would meet in the folder get (2), (3).
 */
async function copyToPeer(ctx: CommandContext, plan: Extract<DoPlan, { kind: 'remote-copy' }>, views: readonly EntryView[]): Promise<{ lines: string[]; json: Record<string, unknown> }> {
  const library = ctx.library();
  const checks = new CopyChecks(library.db);
  const contents = new ContentStore(library.db);
  const changes = new RemoteChanges(library);
  const taken = new Set<string>();
  const jobs: number[] = [];
  const skipped: string[] = [];
  for (const [i, file] of plan.files.entries()) {
    const real = views[i]!.path!; // this device's files only (planDo)
    if (!file.contentId) {
      skipped.push(`${real}: not identified yet ('sd index')`);
      continue;
    }
    const fullHash = await fullHashOf(file, real, checks, contents);
    if (!fullHash) {
      skipped.push(`${real}: its bytes differ from the content's known full hash (changed since indexed, or rotten: 'sd guardian scrub')`);
      continue;
    }
    const name = freeName(file.name, taken);
    const rel = plan.to.rel ? `${plan.to.rel}/${name}` : name;
    jobs.push(changes.copyContent({ id: plan.to.device.id, slug: plan.to.device.slug }, plan.to.location.name, rel, { contentId: file.contentId, fullHash, size: file.size, mode: file.mode & 0o7777, mtimeMs: file.mtime }, 'cli'));
  }
  if (jobs.length === 0) throw new SdError('IO', `nothing was queued: ${skipped.join('; ')}`);
  return {
    lines: [`Queued ${jobs.length} cop${jobs.length === 1 ? 'y' : 'ies'} for ${plan.to.device.slug} as jobs ${jobs[0]}–${jobs[jobs.length - 1]}: the running 'sd mount' delivers them ('sd jobs' follows them)`, ...skipped.map((s) => `  not queued: ${s}`)],
    json: { jobs, skipped },
  };
}

/** A file's full BLAKE3: its current check's, else read whole now (and recorded); undefined when it disagrees with the content's. */
async function fullHashOf(file: Entry, real: string, checks: CopyChecks, contents: ContentStore): Promise<string | undefined> {
  const check = checks.get(file.id);
  if (isCurrent(check, file) && !check.corrupt) return check.fullHash;
  const hash = await fullHashAsync(real, 1024 * 1024);
  const known = contents.get(file.contentId!)?.fullHash;
  if (known && known !== hash) return undefined;
  checks.recordCurrent(file.id, hash);
  contents.recordFullHash(file.contentId!, hash);
  return hash;
}

function freeName(name: string, taken: Set<string>): string {
  const ext = path.extname(name);
  const stem = name.slice(0, name.length - ext.length);
  let candidate = name;
  for (let n = 2; taken.has(candidate); n++) candidate = `${stem} (${n})${ext}`;
  taken.add(candidate);
  return candidate;
}
