// sd watch [LOCATION...]: keep the index of local locations true as files change,
// until Ctrl-C; one line (or one NDJSON line) per batch that changed something.
import { SdError } from '../../errors.js';
import type { IndexSummary } from '../../vdfs/indexer/summary.js';
import { listLocations, requireLocation } from '../../vdfs/locations.js';
import { startWatcher } from '../../vdfs/watcher.js';
import type { Command } from '../command.js';

function changed(s: IndexSummary): boolean {
  const c = s.counts;
  return c.new + c.modified + c.moved + c.deleted + c.identified > 0;
}

function describe(s: IndexSummary): string {
  const c = s.counts;
  return `${s.location}: ${c.new} new, ${c.moved} moved, ${c.modified} modified, ${c.deleted} deleted` +
    (c.identified ? `, ${c.identified} content ids` : '') +
    (s.warnings ? `, ${s.warnings} warning${s.warnings === 1 ? '' : 's'}` : '');
}

export const watchCommand: Command = {
  name: 'watch',
  usage: `Usage: sd watch [LOCATION...]

Watches this device's locations (all, or the named ones). At start each is diffed in
full, so changes made while nothing watched are applied; after that creates, writes,
renames and moves (kept as the same entry), and deletes reach the index within about a
second, without a rescan. Prints one line per batch that changed something. With
--json it prints one JSON object per such batch, one per line (NDJSON: the same fields
as 'sd --json index' gives per location), not one document. Problems (a location root
that vanished, a locked library) are reported on stderr and watching goes on.`,
  async run(ctx) {
    // Take the signal handlers before the (possibly long) start, so Ctrl-C then still stops cleanly.
    const stopped = ctx.stopped;
    const library = ctx.library();
    const deviceId = library.device.id;
    const locations = ctx.positionals.length
      ? ctx.positionals.map((n) => requireLocation(library.db, deviceId, n))
      : listLocations(library.db, deviceId);
    if (locations.length === 0) throw new SdError('NOT_FOUND', "no locations to watch; add one with 'sd location add PATH'");

    const watcher = await startWatcher(library, locations, {
      onApplied(summary) {
        if (!changed(summary)) return;
        if (ctx.json) process.stdout.write(JSON.stringify(summary) + '\n');
        else ctx.out.line(describe(summary));
      },
      onError(err) {
        ctx.out.info(`sd: ${err instanceof Error ? err.message : String(err)}`);
      },
      onWarning(message) {
        ctx.out.info(`sd: warning: ${message}`);
      },
    });
    ctx.out.info(`watching ${locations.map((l) => l.name).join(', ')} (Ctrl-C to stop)`);
    await stopped;
    await watcher.close();
    return 0;
  },
};
