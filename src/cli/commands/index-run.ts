// Runs the indexer for one location with a progress line on a terminal, then (content and
// deep modes) its extraction phase: what the new contents' bytes say.
import { EntryStore } from '../../vdfs/entries.js';
import { ExtractThread } from '../../vdfs/extract/extract-thread.js';
import { dropOrphanPending, extractLocation } from '../../vdfs/indexer/extract-phase.js';
import { indexLocation } from '../../vdfs/indexer/indexer.js';
import { WarningList, withExtraction, type IndexSummary } from '../../vdfs/indexer/summary.js';
import type { Location } from '../../vdfs/locations.js';
import { config } from '../../config.js';
import type { CommandContext } from '../command.js';
import { ProgressLine } from '../progress.js';

/** Indexes the locations one after another (one extraction thread for all of them). */
export async function runIndexes(ctx: CommandContext, locations: readonly Location[]): Promise<IndexSummary[]> {
  let stopped = false;
  void ctx.stopped.then(() => (stopped = true));
  const thread = new ExtractThread({ timeoutMs: config.extractTimeoutMs });
  try {
    const summaries: IndexSummary[] = [];
    for (const location of locations) {
      if (stopped) break;
      summaries.push(await runIndex(ctx, location, thread, () => stopped));
    }
    // Contents whose last file went in these passes wait for nothing any more (the phase
    // never reads them: it goes through files).
    const library = ctx.library();
    dropOrphanPending(library.db, library.device.id);
    return summaries;
  } finally {
    await thread.close();
  }
}

async function runIndex(ctx: CommandContext, location: Location, thread: ExtractThread, shouldStop: () => boolean): Promise<IndexSummary> {
  const progress = new ProgressLine();
  const library = ctx.library();
  try {
    const summary = indexLocation(library, location, {
      onProgress: (p) => {
        if (p.phase === 'content' && p.total) progress.bar(`${location.name}: content ids`, p.done, p.total);
        else progress.update(`${location.name}: ${p.phase} ${p.done} entries`);
      },
    });
    if (location.indexMode === 'shallow') return summary;
    const started = performance.now();
    const warnings = new WarningList();
    const counts = await extractLocation(library.db, library.device.id, new EntryStore(library.db), location, {
      thread,
      warnings,
      shouldStop,
      onContent: (done, total) => done % 10 === 0 && progress.bar(`${location.name}: contents read`, done, total),
    });
    return withExtraction(summary, counts, warnings, (performance.now() - started) / 1000);
  } finally {
    progress.clear();
  }
}
