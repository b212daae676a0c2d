// Runs the indexer for one location with a progress line on a terminal.
import { indexLocation } from '../../vdfs/indexer/indexer.js';
import type { IndexSummary } from '../../vdfs/indexer/summary.js';
import type { Location } from '../../vdfs/locations.js';
import type { CommandContext } from '../command.js';
import { ProgressLine } from '../progress.js';

export function runIndex(ctx: CommandContext, location: Location): IndexSummary {
  const progress = new ProgressLine();
  try {
    return indexLocation(ctx.library(), location, {
      onProgress: (p) => {
        if (p.phase === 'content' && p.total) progress.bar(`${location.name}: content ids`, p.done, p.total);
        else progress.update(`${location.name}: ${p.phase} ${p.done} entries`);
      },
    });
  } finally {
    progress.clear();
  }
}
