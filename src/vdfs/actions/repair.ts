// The repair action: a file a scrub found corrupt (its bytes changed while its size and
// mtime did not) is replaced by a verified copy of the bytes it should have, checked
// against the hash its last good check recorded before it is renamed into place. A file
// changed since (a new mtime: an edit) is never "repaired". Sources: a verified copy on
// this device (another location, a duplicate), else the copies paired devices hold,
// fetched by the running mount (the bytes are checked against the hash when they arrive).
import path from 'node:path';
import { SdError } from '../../errors.js';
import { CopyChecks, isCurrent } from '../content/copy-checks.js';
import { EntryStore, type Entry } from '../entries.js';
import type { Library } from '../library.js';
import { listLocations } from '../locations.js';
import { resolvePath } from '../sdpath.js';
import { emptyPreview, problem, settleCopies } from './preview.js';
import type { Plan, PlanItem, RepairInput } from './types.js';

/** Where a verified copy of a corrupt file's bytes is on this device, if anywhere. */
export function repairSource(library: Library, entry: Entry, fullHash: string): string | undefined {
  const store = new EntryStore(library.db);
  const locations = new Map(listLocations(library.db, library.device.id).map((l) => [l.id, l]));
  for (const id of new CopyChecks(library.db).verifiedCopies(library.device.id, fullHash)) {
    const copy = store.get(id);
    const location = copy && copy.id !== entry.id ? locations.get(copy.locationId) : undefined;
    if (copy && location) return path.join(location.rootPath, ...store.relativePath(copy.id).split('/'));
  }
  return undefined;
}

/** Paired devices whose index holds a file with this content (its bytes are checked when they arrive). */
export function peersHolding(library: Library, contentId: string): string[] {
  return library.db
    .prepare("SELECT DISTINCT e.device_id FROM entries e WHERE e.content_id = ? AND e.kind = 'file' AND e.device_id != ?")
    .pluck()
    .all(contentId, library.device.id) as string[];
}

export function planRepair(library: Library, input: RepairInput): Plan {
  const preview = emptyPreview('repair');
  const db = library.db;
  const store = new EntryStore(db);
  const checks = new CopyChecks(db);
  const locations = new Map(listLocations(db, library.device.id).map((l) => [l.id, l]));
  const targets: Array<{ entry: Entry; given: string }> = [];
  if (input.targets.length === 0) {
    for (const id of checks.corruptEntries(library.device.id)) targets.push({ entry: store.get(id)!, given: String(id) });
  } else {
    for (const given of input.targets) {
      try {
        const r = resolvePath(db, given);
        if (r.kind !== 'entry' || r.entry.kind !== 'file') throw new SdError('INVALID', `${given} is not a file`);
        if (r.device.id !== library.device.id) throw new SdError('INVALID', `${given} is a file of ${r.device.name}; that device repairs its own files`);
        targets.push({ entry: r.entry, given });
      } catch (err) {
        preview.problems.push(problem(err instanceof SdError ? err.code : 'IO', err instanceof Error ? err.message : String(err)));
      }
    }
  }
  const items: PlanItem[] = [];
  for (const { entry } of targets) {
    const location = locations.get(entry.locationId);
    if (!location) continue;
    const abs = path.join(location.rootPath, ...store.relativePath(entry.id).split('/'));
    const check = checks.get(entry.id);
    if (!isCurrent(check, entry)) preview.problems.push(problem('INVALID', `${abs} changed since its last check (an edit, or never checked): it is not repaired; 'sd guardian scrub' checks it`));
    else if (!check.corrupt) preview.problems.push(problem('INVALID', `${abs} is not corrupt (its last scrub found it intact): nothing to repair`));
    else {
      // A copy here, else one a paired device holds (fetched by the running mount, checked on arrival).
      const source = repairSource(library, entry, check.fullHash);
      const onPeer = !source && entry.contentId !== null && peersHolding(library, entry.contentId).length > 0;
      if (!source && !onPeer) preview.problems.push(problem('NOT_FOUND', `no copy of ${abs} is on this device or a paired one; restore it from a backup`));
      items.push({ seq: items.length, op: 'repair', src: source ?? null, dst: abs, size: entry.size, contentId: entry.contentId });
    }
  }
  preview.sources = items.map((i) => ({ given: i.src ?? '', path: i.src ?? '', sdpath: null, location: null }));
  return {
    preview: settleCopies(preview, items),
    items,
    payload: { action: { kind: 'repair', input }, onConflict: 'overwrite', verify: true, bwlimit: 0, summary: `repair ${items.length} corrupt file${items.length === 1 ? '' : 's'}`, target: items.map((i) => i.dst).join(' ') },
  };
}
