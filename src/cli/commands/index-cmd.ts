// sd index [LOCATION...]: (re)index locations now.
import { listLocations, requireLocation } from '../../vdfs/locations.js';
import type { IndexSummary } from '../../vdfs/indexer/summary.js';
import type { Command } from '../command.js';
import { printable } from '../format.js';
import { runIndexes } from './index-run.js';

function describe(s: IndexSummary): string[] {
  const c = s.counts;
  const lines = [
    `${s.location} (${s.mode}): ${c.scanned} entries in ${s.seconds} s — ${c.new} new, ${c.modified} modified, ${c.moved} moved, ${c.deleted} deleted, ${c.unchanged} unchanged` +
      (c.identified ? `, ${c.identified} content ids` : '') +
      (c.fullHashed ? `, ${c.fullHashed} full hashes` : '') +
      (c.extracted + c.extractFailed ? `, ${c.extracted} contents read${c.extractFailed ? ` (${c.extractFailed} not parsed)` : ''}` : '') +
      (c.ignored ? `, ${c.ignored} ignored` : ''),
  ];
  if (s.warnings > 0) {
    lines.push(`  ${s.warnings} warning${s.warnings === 1 ? '' : 's'}:`);
    for (const w of s.warningSamples) lines.push(`    ${printable(w.path)}: ${w.reason}`);
    if (s.warnings > s.warningSamples.length) lines.push(`    … and ${s.warnings - s.warningSamples.length} more`);
  }
  return lines;
}

export const indexCommand: Command = {
  name: 'index',
  usage: `Usage: sd index [LOCATION...]

Walks each location and brings the library in line with the disk: new, modified
(size or time), moved (same inode) and deleted entries, folder sizes, then content ids
(content and deep modes), then what the new contents' bytes say: their kind by bytes,
the text of documents (txt, md, csv, html, pdf, docx, odt...; up to 64 KiB each), photo
metadata (date taken, camera, size, GPS) and audio/video length, so 'sd search' finds
files by what they hold. A file that cannot be parsed is found by its name and counted
as a warning. An unchanged tree writes nothing. A killed run (or Ctrl-C) leaves the
library consistent; the next run continues where it stopped. A running 'sd mount' does
the same in the background. A progress line shows on a terminal; --json prints a
summary per location (counts, seconds, warnings).`,
  async run(ctx) {
    const library = ctx.library();
    const locations = ctx.positionals.length
      ? ctx.positionals.map((n) => requireLocation(library.db, library.device.id, n))
      : listLocations(library.db, library.device.id);
    if (locations.length === 0) ctx.out.info("sd: no locations yet; add one with 'sd location add PATH'");
    const summaries = await runIndexes(ctx, locations);
    ctx.out.result(summaries, () => summaries.flatMap(describe));
  },
};
