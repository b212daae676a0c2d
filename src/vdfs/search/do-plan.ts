// What `sd do` will do: an intent (intent.ts) made concrete over this library. The files
// are a search (plain.ts); where to is a device, a location or a folder named as the
// library names them. The result is one of the existing actions (copy, move, delete to the
// trash), previewed and journaled like any other, or a set of tags; copies onto a paired
// device are the guardian's kind of remote copy job, delivered by the running mount.
import { SdError } from '../../errors.js';
import type { Action } from '../actions/types.js';
import { listDevices, type Device } from '../device.js';
import { EntryStore, type Entry } from '../entries.js';
import type { Library } from '../library.js';
import { listLocations, type Location } from '../locations.js';
import { entrySdPath, isSdPath, resolvePath } from '../sdpath.js';
import type { Intent } from './intent.js';
import { parsePlain } from './plain.js';
import { parseQuery } from './query.js';
import { plainContext } from './run.js';
import { foldersNamed, searchEntries } from './search.js';

/** The most files one sentence acts on (the rest is said, not done). */
export const DO_MAX_FILES = 10_000;

export interface Destination {
  device: Device;
  location: Location;
  /** Below the location's root ('' for the root). */
  rel: string;
  sdPath: string;
}

export type DoPlan =
  | { kind: 'action'; action: Action; files: Entry[]; notes: string[] }
  | { kind: 'remote-copy'; to: Destination; files: Entry[]; notes: string[] }
  | { kind: 'tag'; tags: string[]; entries: Entry[]; notes: string[] };

export function planDo(library: Library, intent: Intent, options: { force?: boolean } = {}): DoPlan {
  const db = library.db;
  const store = new EntryStore(db);
  const notes: string[] = [];
  const found = findFiles(library, intent, notes);
  if (intent.verb === 'tag') {
    if (found.length === 0) throw nothingFound(intent, notes);
    return { kind: 'tag', tags: intent.tags!, entries: found, notes };
  }
  // The others act on this device's files.
  const local = found.filter((e) => e.deviceId === library.device.id && e.kind === 'file');
  const elsewhere = found.filter((e) => e.deviceId !== library.device.id).length;
  if (elsewhere > 0) notes.push(`${elsewhere} match${elsewhere === 1 ? ' is' : 'es are'} on other devices: sd do ${intent.verb}s this device's files only`);
  let files = intent.duplicates ? duplicatesAmong(store, local, library.device.id, notes) : local;
  if (files.length === 0) throw nothingFound(intent, notes);
  const sdPath = sdPaths(library, store);
  if (intent.verb === 'delete') {
    return { kind: 'action', action: { kind: 'delete', input: { targets: files.map(sdPath), ...(options.force ? { force: true } : {}) } }, files, notes };
  }
  const to = destination(library, intent.to!);
  const inPlace = files.filter((f) => f.deviceId === to.device.id && f.locationId === to.location.id && store.relativePath(f.parentId!) === to.rel);
  if (inPlace.length > 0) {
    notes.push(`${inPlace.length} already in ${to.sdPath}: left where ${inPlace.length === 1 ? 'it is' : 'they are'}`);
    files = files.filter((f) => !inPlace.includes(f));
    if (files.length === 0) throw nothingFound(intent, notes);
  }
  if (!to.device.isLocal) {
    if (intent.verb === 'move') throw new SdError('NOT_SUPPORTED', `move to another device (${to.device.slug}): copy there first ('sd do copy ... to ${to.device.slug}'), then delete here once it counts as a copy`);
    return { kind: 'remote-copy', to, files, notes };
  }
  const action: Action = { kind: intent.verb, input: { sources: files.map(sdPath), target: to.sdPath, onConflict: 'rename' } };
  return { kind: 'action', action, files, notes };
}

function findFiles(library: Library, intent: Intent, notes: string[]): Entry[] {
  if (!intent.what && intent.duplicates) {
    notes.push('duplicates anywhere on this device');
    return searchEntries(library.db, parseQuery('kind:file'), { limit: DO_MAX_FILES, deviceId: library.device.id });
  }
  const parsed = parsePlain(intent.what, plainContext(library.db));
  notes.push(...parsed.notes);
  const found = searchEntries(library.db, parsed.query, { limit: DO_MAX_FILES + 1 });
  if (found.length > DO_MAX_FILES) {
    notes.push(`more than ${DO_MAX_FILES} files match: only the first ${DO_MAX_FILES} are part of this`);
    found.length = DO_MAX_FILES;
  }
  return found;
}

/**
 * The files of `scope` whose bytes are also in another file of this device: where a copy
 * is outside the scope, every one in it; else all but the oldest in it.
 */
function duplicatesAmong(store: EntryStore, scope: readonly Entry[], deviceId: string, notes: string[]): Entry[] {
  const byContent = new Map<string, Entry[]>();
  for (const e of scope) if (e.contentId) byContent.set(e.contentId, [...(byContent.get(e.contentId) ?? []), e]);
  const inScope = new Set(scope.map((e) => e.id));
  const extra: Entry[] = [];
  for (const [contentId, files] of byContent) {
    const outside = store.withContent(contentId).filter((e) => e.kind === 'file' && e.deviceId === deviceId && !inScope.has(e.id));
    if (outside.length > 0) extra.push(...files);
    else if (files.length > 1) extra.push(...[...files].sort((a, b) => a.mtime - b.mtime || a.id - b.id).slice(1));
  }
  notes.push(`duplicates: ${extra.length} of ${scope.length} files have their bytes in another file of this device (one copy of each is kept)`);
  return extra;
}

function nothingFound(intent: Intent, notes: readonly string[]): SdError {
  return new SdError('NOT_FOUND', `nothing to ${intent.verb}: ${intent.duplicates ? 'no duplicates among ' : 'no file matches '}'${intent.what}'${notes.length ? ` (understood: ${notes.join('; ')})` : ''}`);
}

function sdPaths(library: Library, store: EntryStore): (e: Entry) => string {
  const devices = new Map(listDevices(library.db).map((d) => [d.id, d]));
  const locations = new Map(listLocations(library.db).map((l) => [l.id, l]));
  return (e) => entrySdPath(devices.get(e.deviceId)!, locations.get(e.locationId)!, store.relativePath(e.id).split('/').filter(Boolean));
}

/**
 * Where "to X" points: an SdPath; else a device (its only location, or the one named
 * after it: "nas backup"); else a location or a folder of this device by name.
 */
export function destination(library: Library, text: string): Destination {
  const db = library.db;
  const store = new EntryStore(db);
  const at = (device: Device, location: Location, rel: string): Destination => ({ device, location, rel, sdPath: entrySdPath(device, location, rel.split('/').filter(Boolean)) });
  if (isSdPath(text)) {
    const r = resolvePath(db, text);
    if (r.kind !== 'entry' || r.entry.kind !== 'dir') throw new SdError('USAGE', `to ${text}: not a folder; name a location or a folder`);
    return at(r.device, r.location, r.relPath.join('/'));
  }
  const words = text.toLowerCase().replace(/^(?:the|my)\s+/, '').replace(/\s+(?:folder|directory|location|device|drive)$/, '').split(/\s+/).filter((w) => !/^(the|my|on|in|at|of)$/.test(w));
  const devices = listDevices(db);
  const locations = listLocations(db);
  const deviceNamed = (w: string) => devices.find((d) => d.slug.toLowerCase() === w || d.name.toLowerCase() === w) ?? single(devices.filter((d) => d.name.toLowerCase().split(/[^\p{L}\p{N}]+/u).includes(w)));
  // A device named first or last ("nas backup", "backup on nas").
  for (const [deviceWord, rest] of [[words[0], words.slice(1)], [words[words.length - 1], words.slice(0, -1)]] as const) {
    const device = deviceWord ? deviceNamed(deviceWord) : undefined;
    if (!device) continue;
    const own = locations.filter((l) => l.deviceId === device.id);
    if (rest.length === 0) {
      if (own.length === 1) return at(device, own[0]!, '');
      throw new SdError('USAGE', `to ${text}: ${device.slug} has ${own.length === 0 ? 'no location' : `locations ${own.map((l) => l.name).join(', ')}: say which ('to ${device.slug} ${own[0]!.name}')`}`);
    }
    const name = rest.join(' ');
    const location = own.find((l) => l.name.toLowerCase() === name);
    if (location) return at(device, location, '');
    const folder = foldersOf(db, store, name, device.id, locations);
    if (folder.length === 1) return at(device, folder[0]!.location, folder[0]!.rel);
    throw new SdError('NOT_FOUND', `to ${text}: ${device.slug} has no location or ${folder.length > 1 ? 'single ' : ''}folder named '${name}'${folder.length > 1 ? ` (${folder.map((f) => f.rel).join(', ')}): name it as an SdPath` : ''}`);
  }
  const name = words.join(' ');
  const local = library.device;
  const location = locations.find((l) => l.deviceId === local.id && l.name.toLowerCase() === name);
  if (location) return at(local, location, '');
  const folder = foldersOf(db, store, name, local.id, locations);
  if (folder.length === 1) return at(local, folder[0]!.location, folder[0]!.rel);
  if (folder.length > 1) throw new SdError('USAGE', `to ${text}: ${folder.length} folders are named '${name}' (${folder.slice(0, 5).map((f) => at(local, f.location, f.rel).sdPath).join(', ')}): name one as an SdPath`);
  throw new SdError('NOT_FOUND', `to ${text}: no device, location or folder named '${name}'; make the folder first ('sd mkdir sd://${local.slug}/LOCATION/${name}') or name one as an SdPath`);
}

function single<T>(xs: readonly T[]): T | undefined {
  return xs.length === 1 ? xs[0] : undefined;
}

/** Folders of a device with this name (any case), as location and path below its root. */
function foldersOf(db: Library['db'], store: EntryStore, name: string, deviceId: string, locations: readonly Location[]): Array<{ location: Location; rel: string }> {
  const byId = new Map(locations.map((l) => [l.id, l]));
  return foldersNamed(db, name, { deviceId, limit: 20 }).flatMap((id) => {
    const e = store.get(id);
    const location = e && byId.get(e.locationId);
    return location ? [{ location, rel: store.relativePath(id) }] : [];
  });
}
