// sd meta set|rm|ls: user metadata (key = value) on files, shared by every device of the
// library and merged last-writer-wins by hybrid logical clock. The mount shows each key as
// the xattr user.sd.meta.<key>.
import { MetaStore } from '../../vdfs/metadata.js';
import { UsageError, type Command, type CommandContext } from '../command.js';
import { table } from '../format.js';
import { entryAt } from './tag.js';

function metaStore(ctx: CommandContext): MetaStore {
  const library = ctx.library();
  return new MetaStore(library.db, library.device.id);
}

const set: Command = {
  name: 'set',
  summary: 'set a metadata key of a file or folder',
  usage: `Usage: sd meta set SDPATH KEY VALUE

Sets KEY to VALUE on the entry (sd://device/location/path or a local path inside a
location). Keys are letters, digits, '.', '_' and '-'; values at most 4 KiB. Shared with
every paired device; the newest change wins. Through the mount:
setfattr -n user.sd.meta.KEY -v VALUE FILE`,
  run(ctx) {
    const [target, key, value, ...extra] = ctx.positionals;
    if (target === undefined || key === undefined || value === undefined || extra.length > 0) throw new UsageError('sd meta set takes SDPATH KEY VALUE');
    const store = metaStore(ctx);
    const entry = entryAt(ctx, target);
    const op = store.set(entry, key, value);
    const now = store.of(entry);
    ctx.out.result({ target, key: op.key, value: op.value, metadata: now }, () => [`${target}: ${op.key} = ${op.value}`]);
  },
};

const rm: Command = {
  name: 'rm',
  summary: 'remove a metadata key of a file or folder',
  usage: 'Usage: sd meta rm SDPATH KEY\n\nRemoves KEY from the entry, on every paired device.',
  run(ctx) {
    const [target, key, ...extra] = ctx.positionals;
    if (target === undefined || key === undefined || extra.length > 0) throw new UsageError('sd meta rm takes SDPATH KEY');
    const store = metaStore(ctx);
    const entry = entryAt(ctx, target);
    const op = store.set(entry, key, null);
    ctx.out.result({ target, key: op.key, removed: true, metadata: store.of(entry) }, () => [`${target}: ${op.key} removed`]);
  },
};

const ls: Command = {
  name: 'ls',
  summary: 'list the metadata of files or folders',
  usage: 'Usage: sd meta ls SDPATH...\n\nEvery key and value of each entry.',
  run(ctx) {
    if (ctx.positionals.length === 0) throw new UsageError('sd meta ls takes SDPATH...');
    const store = metaStore(ctx);
    const rows = ctx.positionals.map((target) => ({ target, metadata: store.of(entryAt(ctx, target)) }));
    ctx.out.result(rows, () =>
      rows.flatMap((r) => {
        const pairs = Object.entries(r.metadata);
        return pairs.length === 0 ? [`${r.target}: (no metadata)`] : [`${r.target}:`, ...table(pairs.map(([k, v]) => [`  ${k}`, v]))];
      }),
    );
  },
};

export const metaCommand: Command = {
  name: 'meta',
  usage: 'Usage: sd meta set SDPATH KEY VALUE | sd meta rm SDPATH KEY | sd meta ls SDPATH...',
  subcommands: [set, rm, ls],
};
