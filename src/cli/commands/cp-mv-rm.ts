// sd cp, sd mv, sd rm, sd mkdir: actions on files. --preview shows what would happen and
// writes nothing; otherwise the action is committed as a job and run here to its end.
import { ActionManager } from '../../vdfs/actions/action-manager.js';
import { CONFLICT_MODES, type Action, type ActionPreview, type ConflictMode } from '../../vdfs/actions/types.js';
import { UsageError, type Command, type CommandContext } from '../command.js';
import { bwlimitOption, describeGuarded, describeOutcome, describePreview, requireCompleted, runJobHere } from './job-run.js';

function conflictMode(ctx: CommandContext): ConflictMode | undefined {
  const mode = ctx.values['on-conflict'] as string | undefined;
  if (mode !== undefined && !CONFLICT_MODES.includes(mode as ConflictMode)) throw new UsageError(`--on-conflict must be one of ${CONFLICT_MODES.join(', ')}`);
  return mode as ConflictMode | undefined;
}

/** Previews or runs an action; prints the preview or the outcome. */
async function act(ctx: CommandContext, action: Action, verb: string, options: { verify?: boolean; bwlimit?: number } = {}): Promise<number> {
  const actions = new ActionManager(ctx.library(), { actor: 'cli' });
  if (ctx.values.preview) {
    const preview = actions.preview(action);
    ctx.out.result({ preview }, () => {
      // Before the problems (one of them may be these files) and the closing line.
      const lines = describePreview(preview);
      const at = lines.findIndex((l) => l.startsWith('  problem:'));
      const end = at < 0 ? lines.length - 1 : at;
      return [...lines.slice(0, end), ...describeGuarded(preview), ...lines.slice(end)];
    });
    return 0;
  }
  const id = actions.commit(action, 'cli');
  const outcome = await runJobHere(ctx, actions.jobs, id, { bwlimit: options.bwlimit });
  requireCompleted(outcome);
  ctx.out.result({ job: id, ...outcome }, () => describeOutcome(verb, outcome, options.verify === true, actions.jobs.get(id).payload.target));
  return 0;
}

function splitSourcesTarget(ctx: CommandContext, name: string): { sources: string[]; target: string } {
  if (ctx.positionals.length < 2) throw new UsageError(`sd ${name} takes SRC... DST`);
  return { sources: ctx.positionals.slice(0, -1), target: ctx.positionals[ctx.positionals.length - 1]! };
}

const transferOptions = {
  preview: { type: 'boolean' },
  'on-conflict': { type: 'string' },
  verify: { type: 'boolean' },
  bwlimit: { type: 'string' },
} as const;

const transferUsage = (name: string, verb: string) => `Usage: sd ${name} SRC... DST [--preview] [--on-conflict overwrite|rename|skip|abort] [--verify] [--bwlimit RATE]

${verb} files or whole folders. SRC and DST are SdPaths (sd://device/location/path),
sd://content/<id> (as a source) or plain local paths. With one SRC, DST may be a new
name; otherwise DST must be an existing folder.

  --preview          show what would happen (bytes, free space, conflicts, content
                     the target already holds, permissions, time) and change nothing
  --on-conflict M    when the destination exists: abort (default: nothing starts),
                     overwrite, rename ("name (1).ext") or skip. A destination with the
                     same size and content id is skipped in every mode.
  --verify           compare the full BLAKE3 of every copy with its source (default:
                     size + sampled content id)
  --bwlimit RATE     at most RATE bytes per second (50M, 1GiB)

The action is committed as a job (the journal) and run here with a progress bar;
Ctrl-C pauses it and 'sd jobs resume ID' continues it, as after a crash.`;

/** sd cp and sd mv: the same options and input, a different action kind. */
function transferCommand(name: 'cp' | 'mv', kind: 'copy' | 'move', verb: string): Command {
  return {
    name,
    usage: transferUsage(name, verb === 'Copied' ? 'Copies' : 'Moves'),
    options: transferOptions,
    async run(ctx) {
      const { sources, target } = splitSourcesTarget(ctx, name);
      const verify = ctx.values.verify === true;
      const bwlimit = bwlimitOption(ctx);
      return act(ctx, { kind, input: { sources, target, onConflict: conflictMode(ctx), verify, bwlimit } }, verb, { verify, bwlimit });
    },
  };
}

export const cpCommand = transferCommand('cp', 'copy', 'Copied');
export const mvCommand = transferCommand('mv', 'move', 'Moved');

export const rmCommand: Command = {
  name: 'rm',
  usage: `Usage: sd rm SDPATH... [--permanent] [--force] [--preview]

Moves each file or folder into its location's trash, .sd-trash/<time>/<path>, from
where it can be moved back.

  --permanent   delete for good (needed for paths outside any location)
  --force       delete even the last copy of a content (no device would hold it any
                more), or a copy its policy counts on (fewer verified copies than
                'sd guardian policy' asks would remain); without it sd rm refuses and
                --preview lists those files and why ("the last copy", "2 → 1 of 2 copies")
  --preview     show what would go and change nothing`,
  options: { permanent: { type: 'boolean' }, force: { type: 'boolean' }, preview: { type: 'boolean' } },
  async run(ctx) {
    if (ctx.positionals.length === 0) throw new UsageError('sd rm takes one or more SDPATHs');
    const input = { targets: ctx.positionals, permanent: ctx.values.permanent === true, force: ctx.values.force === true };
    return act(ctx, { kind: 'delete', input }, ctx.values.permanent ? 'Deleted' : 'Moved to the trash');
  },
};

export const mkdirCommand: Command = {
  name: 'mkdir',
  usage: `Usage: sd mkdir SDPATH [-p] [--preview]

Creates the folder; -p also creates missing parents and accepts an existing folder.`,
  options: { parents: { type: 'boolean', short: 'p' }, preview: { type: 'boolean' } },
  async run(ctx) {
    const [target, ...extra] = ctx.positionals;
    if (target === undefined || extra.length > 0) throw new UsageError('sd mkdir takes one SDPATH');
    return act(ctx, { kind: 'mkdir', input: { target, parents: ctx.values.parents === true } }, 'Created');
  },
};
