// sd location add|ls|rm: the folders this device indexes.
import { EntryStore } from '../../vdfs/entries.js';
import { INDEX_MODES, addLocation, listLocations, removeLocation, requireLocation, type IndexMode, type Location } from '../../vdfs/locations.js';
import { UsageError, type Command, type CommandContext } from '../command.js';
import { formatBytes, formatTime, table } from '../format.js';
import { runIndexes } from './index-run.js';

function locationJson(ctx: CommandContext, l: Location) {
  const stats = ctx.library().db
    .prepare(`SELECT count(*) AS entries, coalesce(sum(CASE kind WHEN 'file' THEN size ELSE 0 END), 0) AS bytes FROM entries WHERE location_id = ?`)
    .get(l.id) as { entries: number; bytes: number };
  return {
    id: l.id,
    name: l.name,
    path: l.rootPath,
    mode: l.indexMode,
    includeHidden: l.includeHidden,
    ignore: l.ignoreRules,
    entries: Math.max(0, stats.entries - 1),
    bytes: stats.bytes,
    lastIndexed: l.lastIndexedAt === null ? null : new Date(l.lastIndexedAt).toISOString(),
  };
}

const add: Command = {
  name: 'add',
  summary: 'add a folder as a location and index it',
  usage: `Usage: sd location add PATH [--name N] [--mode shallow|content|deep] [--no-hidden] [--ignore PATTERN]... [--no-index]

  --name N        the location's name in sd:// paths (default: the folder's name)
  --mode M        shallow: names, sizes, times; content (default): also a content id per
                  file (sampled BLAKE3, for dedup); deep: also the full BLAKE3 of every file
  --no-hidden     skip names starting with '.'
  --ignore P      a .gitignore-style pattern to skip (repeatable); .gitignore files in the
                  tree, .git, node_modules and other build and system folders are always skipped
  --no-index      only record the location; index later with 'sd index'`,
  options: {
    name: { type: 'string' },
    mode: { type: 'string' },
    'no-hidden': { type: 'boolean' },
    ignore: { type: 'string', multiple: true },
    'no-index': { type: 'boolean' },
  },
  async run(ctx) {
    const [dir, ...extra] = ctx.positionals;
    if (dir === undefined || extra.length > 0) throw new UsageError('sd location add takes one PATH');
    const mode = (ctx.values.mode as string | undefined) ?? 'content';
    if (!INDEX_MODES.includes(mode as IndexMode)) throw new UsageError(`--mode must be one of ${INDEX_MODES.join(', ')}`);
    const library = ctx.library();
    const location = addLocation(library.db, new EntryStore(library.db), library.device.id, {
      path: dir,
      name: ctx.values.name as string | undefined,
      mode: mode as IndexMode,
      includeHidden: ctx.values['no-hidden'] !== true,
      ignoreRules: (ctx.values.ignore as string[] | undefined) ?? [],
    });
    const summary = ctx.values['no-index'] ? undefined : (await runIndexes(ctx, [location]))[0];
    // Read back after indexing, so lastIndexed (and the counts) show what the index did.
    const indexed = listLocations(library.db, library.device.id).find((l) => l.id === location.id) ?? location;
    ctx.out.result({ location: locationJson(ctx, indexed), index: summary ?? null }, () => [
      `Added location '${location.name}' (${location.rootPath}, ${location.indexMode}) as sd://${library.device.slug}/${location.name}/`,
      ...(summary ? [`Indexed ${summary.counts.new} entries in ${summary.seconds} s${summary.warnings ? `, ${summary.warnings} warnings ('sd index --json' lists them)` : ''}`] : []),
    ]);
  },
};

const ls: Command = {
  name: 'ls',
  summary: 'list locations',
  usage: 'Usage: sd location ls',
  run(ctx) {
    const library = ctx.library();
    const rows = listLocations(library.db, library.device.id).map((l) => locationJson(ctx, l));
    ctx.out.result(rows, () =>
      rows.length === 0
        ? ["No locations yet; add one with 'sd location add PATH'"]
        : table(
            [['NAME', 'MODE', 'ENTRIES', 'SIZE', 'INDEXED', 'PATH'], ...rows.map((r) => [r.name, r.mode, String(r.entries), formatBytes(r.bytes), formatTime(r.lastIndexed ? Date.parse(r.lastIndexed) : null), r.path])],
            new Set([2, 3]),
          ),
    );
  },
};

const rm: Command = {
  name: 'rm',
  summary: 'forget a location (its files are not touched)',
  usage: 'Usage: sd location rm NAME\n\nRemoves the location and its index entries; the folder and its files stay as they are.',
  run(ctx) {
    const [name, ...extra] = ctx.positionals;
    if (name === undefined || extra.length > 0) throw new UsageError('sd location rm takes one location NAME');
    const library = ctx.library();
    const location = requireLocation(library.db, library.device.id, name);
    const removed = removeLocation(library.db, new EntryStore(library.db), location);
    ctx.out.result({ removed: location.name, entries: removed }, () => `Removed location '${location.name}' (${removed} index entries; no files touched)`);
  },
};

export const locationCommand: Command = {
  name: 'location',
  usage: 'Usage: sd location add PATH [options] | sd location ls | sd location rm NAME',
  subcommands: [add, ls, rm],
};
