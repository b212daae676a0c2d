// sd search and sd dupes: find entries by name and filters, and duplicated content.
import { findDuplicates } from '../../vdfs/dupes.js';
import { EntryViewer } from '../../vdfs/listing.js';
import { parseQuery } from '../../vdfs/search/query.js';
import { searchEntries } from '../../vdfs/search/search.js';
import { UsageError, type Command } from '../command.js';
import { formatBytes, formatTime, printable, table } from '../format.js';

function limitOf(value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError('--limit takes a positive whole number');
  return n;
}

export const searchCommand: Command = {
  name: 'search',
  usage: `Usage: sd search QUERY... [--limit N]

Words match the start of words in names (holiday → "Holiday 2024.jpg"); every word
must match. Filters narrow the result:
  kind:image|video|audio|document|archive|code|file|dir|symlink
  ext:pdf (or ext:jpg,png)
  size:>100MB  size:<=4KiB   (KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024)
  modified:<2025-01-01  modified:>7d   (a date, or an age: 30m, 12h, 7d, 2w)
  in:<location>
Results are best match first (newest first without words); --limit N (default 100).`,
  options: { limit: { type: 'string' } },
  run(ctx) {
    const text = ctx.positionals.join(' ').trim();
    if (!text) throw new UsageError('sd search needs a QUERY (words and/or filters)');
    const { db } = ctx.library();
    const entries = searchEntries(db, parseQuery(text), { limit: limitOf(ctx.values.limit, 100) });
    const views = new EntryViewer(db).views(entries);
    ctx.out.result(views, () =>
      views.length === 0
        ? ['No matches']
        : table(views.map((v) => [v.kind === 'dir' ? 'dir' : formatBytes(v.size), formatTime(Date.parse(v.mtime)), printable(v.sdpath)]), new Set([0])),
    );
  },
};

export const dupesCommand: Command = {
  name: 'dupes',
  usage: `Usage: sd dupes [--limit N]

Groups of files with the same content id (content or deep index mode), the biggest
waste first; wasted = size × (copies − 1).`,
  options: { limit: { type: 'string' } },
  run(ctx) {
    const { db } = ctx.library();
    const groups = findDuplicates(db, { limit: ctx.values.limit === undefined ? undefined : limitOf(ctx.values.limit, 0) });
    const viewer = new EntryViewer(db);
    const data = groups.map((g) => ({ contentId: g.contentId, size: g.size, copies: g.entries.length, wastedBytes: g.wastedBytes, paths: viewer.views(g.entries).map((v) => v.sdpath) }));
    const total = data.reduce((sum, g) => sum + g.wastedBytes, 0);
    ctx.out.result({ groups: data, wastedBytes: total }, () =>
      data.length === 0
        ? ['No duplicates']
        : [
            ...data.flatMap((g) => [`${g.contentId}  ${formatBytes(g.size)} × ${g.copies}  (${formatBytes(g.wastedBytes)} wasted)`, ...g.paths.map((p) => `  ${printable(p)}`)]),
            `${data.length} duplicated content${data.length === 1 ? '' : 's'}, ${formatBytes(total)} wasted`,
          ],
    );
  },
};
