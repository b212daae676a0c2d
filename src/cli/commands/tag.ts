// sd tag add|rm|ls|files: tags on files, shared by every device of the library (merged
// last-writer-wins by hybrid logical clock). The mount shows them in /sd/.tags/<tag>/.
import { SdError } from '../../errors.js';
import { EntryStore, type Entry } from '../../vdfs/entries.js';
import { EntryViewer } from '../../vdfs/listing.js';
import { resolvePath } from '../../vdfs/sdpath.js';
import { TagStore, parseTagList, validateTag } from '../../vdfs/tags.js';
import { UsageError, type Command, type CommandContext } from '../command.js';
import { table } from '../format.js';

function tagStore(ctx: CommandContext): TagStore {
  const library = ctx.library();
  return new TagStore(library.db, library.device.id);
}

/** The entry an SdPath or local path names; tags and metadata go on files, folders and links, not devices. */
export function entryAt(ctx: CommandContext, target: string): Entry {
  const resolved = resolvePath(ctx.library().db, target);
  if (resolved.kind !== 'entry') throw new SdError('INVALID', `${target} is not a file or folder; tags and metadata go on entries of a location`);
  return resolved.entry;
}

function tagsAndTargets(ctx: CommandContext, name: string): { tags: string[]; targets: string[] } {
  const [list, ...targets] = ctx.positionals;
  if (list === undefined || targets.length === 0) throw new UsageError(`sd tag ${name} takes TAG[,TAG...] SDPATH...`);
  const tags = parseTagList(list);
  if (tags.length === 0) throw new UsageError(`sd tag ${name}: no tag in '${list}'`);
  return { tags, targets };
}

function changeCommand(name: 'add' | 'rm', summary: string, verb: string): Command {
  return {
    name,
    summary,
    usage: `Usage: sd tag ${name} TAG[,TAG...] SDPATH...

${summary[0]!.toUpperCase()}${summary.slice(1)}. SDPATH is sd://device/location/path or a local path
inside a location. Tags are shared with every paired device; the newest change wins.`,
    run(ctx) {
      const { tags, targets } = tagsAndTargets(ctx, name);
      const store = tagStore(ctx);
      const entries = targets.map((t) => entryAt(ctx, t));
      const changed = entries.map((entry, i) => {
        const ops = name === 'add' ? store.add(entry, tags) : store.remove(entry, tags);
        return { target: targets[i]!, tags: store.tagsOf(entry.id), changed: ops.length };
      });
      ctx.out.result(changed, () => changed.map((c) => `${verb} ${tags.join(', ')}: ${c.target} (now: ${c.tags.join(', ') || 'no tags'})`));
    },
  };
}

const ls: Command = {
  name: 'ls',
  summary: 'list every tag with its count, or the tags of the given files',
  usage: 'Usage: sd tag ls [SDPATH...]\n\nWithout a path: every tag in use and how many entries carry it.',
  run(ctx) {
    const store = tagStore(ctx);
    if (ctx.positionals.length === 0) {
      const rows = store.list();
      ctx.out.result(rows, () => (rows.length === 0 ? ["No tags yet; 'sd tag add TAG PATH' adds one"] : table(rows.map((r) => [r.tag, `${r.entries} entr${r.entries === 1 ? 'y' : 'ies'}`]))));
      return;
    }
    const rows = ctx.positionals.map((target) => ({ target, tags: store.tagsOf(entryAt(ctx, target).id) }));
    ctx.out.result(rows, () => table(rows.map((r) => [r.target, r.tags.join(', ') || '(no tags)'])));
  },
};

const files: Command = {
  name: 'files',
  summary: 'list the files carrying a tag',
  usage: 'Usage: sd tag files TAG\n\nThe SdPath of every entry with that tag, on every device.',
  run(ctx) {
    const [raw, ...extra] = ctx.positionals;
    if (raw === undefined || extra.length > 0) throw new UsageError('sd tag files takes one TAG');
    const tag = validateTag(raw);
    const db = ctx.library().db;
    const store = new EntryStore(db);
    const entries = tagStore(ctx).entriesWith(tag).flatMap((id) => store.get(id) ?? []);
    const views = new EntryViewer(db).views(entries);
    ctx.out.result(views, () => (views.length === 0 ? [`No entry is tagged '${tag}'`] : views.map((v) => v.sdpath)));
  },
};

export const tagCommand: Command = {
  name: 'tag',
  usage: 'Usage: sd tag add|rm TAG[,TAG...] SDPATH... | sd tag ls [SDPATH...] | sd tag files TAG',
  subcommands: [changeCommand('add', 'add tags to files or folders', 'Tagged'), changeCommand('rm', 'remove tags from files or folders', 'Untagged'), ls, files],
};
