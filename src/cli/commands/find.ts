// sd search and sd dupes: find entries by name, in plain language or with filters, and duplicated content.
import { findDuplicates } from '../../vdfs/dupes.js';
import { EntryViewer } from '../../vdfs/listing.js';
import { parsePlain } from '../../vdfs/search/plain.js';
import type { SearchQuery } from '../../vdfs/search/query.js';
import { plainContext } from '../../vdfs/search/run.js';
import { searchGrouped } from '../../vdfs/search/search.js';
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
  usage: `Usage: sd search QUERY... [--limit N] [--explain]

Searches every device's files (this one's and its paired devices') by name and by what
they hold, in plain language or with filters, all on this machine:
  sd search tax documents from last year
  sd search videos over 1 GB from last week on nas
  sd search photos of 2024 only on my phone
  sd search "big files I haven't touched in 2 years"
Words match the start of words (holiday → "Holiday 2024.jpg"; w2 → "W-2"); every
word must match. Best first: in names; in what files hold (a document's text, a photo's
camera, a song's artist: read by sd index); in tags and metadata values; in the names of
the folders above. Understood in a sentence:
  kinds       photos, videos, music, documents, pdfs, spreadsheets, screenshots, folders…
  topics      tax (tax, 1040, W-2, receipt, invoice…), invoices, bank, contracts, resume…
  sizes       over 1 GB, under 10 MB, at least 500MB; big (≥100 MB), huge (≥1 GB), small
  dates       last year, this month, last week, today, yesterday, in 2024, in March 2024,
              before 2023, since March, older than a month, in the last 7 days, 2 weeks ago,
              (haven't) touched in 2 years
  places      on DEVICE, only on DEVICE (no copy elsewhere), not on DEVICE, in LOCATION,
              in FOLDER (below any folder of that name), tagged TAG or #TAG
  negation    not/without WORD or KIND ("documents without drafts", "not photos")
  taken       "taken"/"shot" makes the dates after it a photo's date taken
  length      longer than 10 minutes, under 3 minutes (recordings and videos)
  copies      at risk (Data Guardian), only one copy, not backed up, fewer than 2 copies
Filters, as before: kind:image|video|audio|document|archive|code|file|dir|symlink,
ext:pdf (or ext:jpg,png), size:>100MB, modified:<2025-01-01 or modified:>7d,
taken:>2024-01-01, duration:>10m, copies:1 or copies:<2, is:at-risk, in:LOCATION,
on:DEVICE, tag:TAG, -WORD (in quotes, or after --: sd search -- notes -draft).
Results: best match first, then newest (newest first without words); files with the
same bytes on several devices are one result ("also at"); a file found by what it holds
shows the words around the match under it. --limit N (default 100).
--explain prints how the query was understood, and searches nothing; --json prints the
query with the results.`,
  options: { limit: { type: 'string' }, explain: { type: 'boolean' } },
  async run(ctx) {
    const text = ctx.positionals.join(' ').trim();
    if (!text) throw new UsageError('sd search needs a QUERY (words and/or filters, or a sentence)');
    const library = ctx.library();
    const { db } = library;
    const limit = limitOf(ctx.values.limit, 100);
    const parsed = parsePlain(text, plainContext(db));
    if (ctx.values.explain) {
      ctx.out.result(parsed, () => [...parsed.notes, `query: ${JSON.stringify(compactQuery(parsed.query))}`]);
      return;
    }
    // The Data Guardian (its modules, its count of copies) only for a search that asks what is at risk.
    const guardian = parsed.query.atRisk ? new (await import('../../guardian/guardian.js')).Guardian(db, library.device.id) : undefined;
    const hits = searchGrouped(db, parsed.query, { limit, snippets: true, ...(guardian && { atRisk: () => guardian.atRiskContentIds() }) });
    const viewer = new EntryViewer(db);
    const results = hits.map((h) => ({
      ...viewer.views([h.entry])[0]!,
      alsoAt: viewer.views(h.alsoAt).map((v) => v.sdpath),
      ...(h.matched && { matched: h.matched }),
      ...(h.snippet && { snippet: h.snippet }),
    }));
    ctx.out.result({ query: compactQuery(parsed.query), notes: parsed.notes, results }, () => {
      if (results.length === 0) return ['No matches'];
      const rows = table(
        results.map((v) => [v.kind === 'dir' ? 'dir' : formatBytes(v.size), formatTime(Date.parse(v.mtime)), printable(v.sdpath) + (v.alsoAt.length ? `  (also at ${v.alsoAt.map(printable).join(', ')})` : '')]),
        new Set([0]),
      );
      // A result found by what it holds shows why, under it.
      return rows.flatMap((line, i) => (results[i]!.snippet ? [line, `    ${printable(results[i]!.snippet!)}`] : [line]));
    });
  },
};

/** The structured query with its empty parts left out (what --explain and --json show). */
function compactQuery(q: SearchQuery): Partial<SearchQuery> {
  return Object.fromEntries(Object.entries(q).filter(([, v]) => v !== false && (!Array.isArray(v) || v.length > 0))) as Partial<SearchQuery>;
}

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
