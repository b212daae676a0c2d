// The scrub action: read files of this device's locations whole and check each one's full
// BLAKE3 against its last check. A file whose bytes changed while its size and mtime did
// not is bit rot: its check is marked corrupt (it stops counting as a copy and is not
// served to peers). One step per file, so a killed scrub resumes at the file it was on.
import path from 'node:path';
import type { Library } from '../library.js';
import { listLocations } from '../locations.js';
import { DEFAULT_THROUGHPUT } from './estimate.js';
import { emptyPreview, problem, settle } from './preview.js';
import type { Plan, PlanItem, ScrubInput } from './types.js';

export function planScrub(library: Library, input: ScrubInput): Plan {
  const preview = emptyPreview('scrub');
  const all = listLocations(library.db, library.device.id);
  const wanted = input.locations.length ? input.locations : all.map((l) => l.name);
  const locations = [];
  for (const name of wanted) {
    const location = all.find((l) => l.name === name);
    if (!location) preview.problems.push(problem('NOT_FOUND', `this device has no location '${name}'; 'sd location ls' lists them`));
    else locations.push(location);
  }
  const items: PlanItem[] = [];
  // Depth-first by path, so the disk is read folder by folder.
  const files = library.db.prepare(`WITH RECURSIVE tree(id, path) AS (
      SELECT id, '' FROM entries WHERE id = ?
      UNION ALL SELECT e.id, CASE tree.path WHEN '' THEN e.name ELSE tree.path || '/' || e.name END FROM tree JOIN entries e ON e.parent_id = tree.id)
    SELECT tree.path, e.size, e.content_id FROM tree JOIN entries e ON e.id = tree.id
    WHERE e.kind = 'file' AND e.content_id IS NOT NULL ORDER BY tree.path`);
  for (const location of locations) {
    if (location.rootEntryId === null) continue;
    for (const f of files.iterate(location.rootEntryId) as Iterable<{ path: string; size: number; content_id: string }>) {
      items.push({ seq: items.length, op: 'scrub', src: path.join(location.rootPath, f.path), dst: null, size: f.size, contentId: f.content_id });
    }
  }
  preview.sources = locations.map((l) => ({ given: l.name, path: l.rootPath, sdpath: `sd://${library.device.slug}/${l.name}`, location: l.name }));
  preview.files = items.length;
  preview.bytes = items.reduce((n, i) => n + i.size, 0);
  const rate = input.rate && input.rate > 0 ? Math.min(input.rate, DEFAULT_THROUGHPUT) : DEFAULT_THROUGHPUT;
  preview.throughputBytesPerSec = rate;
  preview.estimatedSeconds = Math.ceil(preview.bytes / rate);
  const names = locations.map((l) => l.name).join(', ');
  return {
    preview: settle(preview),
    items,
    payload: {
      action: { kind: 'scrub', input },
      onConflict: 'skip',
      verify: true,
      bwlimit: input.rate ?? 0,
      summary: `scrub ${items.length} files in ${names || 'no location'}`,
      target: locations.map((l) => `sd://${library.device.slug}/${l.name}`).join(' '),
    },
  };
}
