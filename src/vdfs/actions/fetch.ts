// The fetch action: contents this device lacks put at new paths in its locations, their
// bytes fetched from the paired devices holding them and checked against the content's
// full BLAKE3 before they land (sd guardian protect onto this device). Only a running
// `sd mount` reaches the peers, so it runs these jobs; one step per file.
import path from 'node:path';
import { SdError } from '../../errors.js';
import type { Library } from '../library.js';
import { locationOfPath } from '../locations.js';
import { peersHolding } from './repair.js';
import { emptyPreview, problem, settleCopies } from './preview.js';
import type { FetchInput, Plan, PlanItem } from './types.js';

export function planFetch(library: Library, input: FetchInput): Plan {
  const preview = emptyPreview('fetch');
  const items: PlanItem[] = [];
  const content = library.db.prepare('SELECT size, full_hash AS fullHash FROM content_identities WHERE id = ?');
  for (const { contentId, target } of input.copies) {
    const known = content.get(contentId) as { size: number; fullHash: string | null } | undefined;
    const abs = path.resolve(target);
    if (!locationOfPath(library.db, library.device.id, abs)) preview.problems.push(problem('INVALID', `${target} is not in a location of this device`));
    else if (!known?.fullHash) preview.problems.push(problem('NOT_FOUND', `content ${contentId} has no full BLAKE3 known, so its bytes could not be checked; 'sd guardian scrub' on a device holding it verifies it`));
    else if (peersHolding(library, contentId).length === 0) preview.problems.push(problem('NOT_FOUND', `no paired device holds content ${contentId}`));
    else items.push({ seq: items.length, op: 'fetch', src: null, dst: abs, size: known.size, contentId });
  }
  return {
    preview: settleCopies(preview, items),
    items,
    payload: { action: { kind: 'fetch', input }, onConflict: 'rename', verify: true, bwlimit: 0, summary: `fetch ${items.length} cop${items.length === 1 ? 'y' : 'ies'} from paired devices`, target: items.map((i) => i.dst).join(' ') },
  };
}

/** Thrown by a fetch step run where no peer can be reached (the CLI): the running mount runs it. */
export function needsMount(dst: string): SdError {
  return new SdError('NOT_FOUND', `the bytes of ${dst} are on paired devices; the running 'sd mount' fetches them (it runs this job)`);
}
