// Where an action's source or target is on this machine: an SdPath of a local location
// (existing or not yet), sd://content/<id> (a local copy of that content), or a plain
// local path, with the location holding it when there is one.
import fs from 'node:fs';
import path from 'node:path';
import { SdError } from '../../errors.js';
import { deviceBySlug, type Device } from '../device.js';
import { EntryViewer } from '../listing.js';
import type { Library } from '../library.js';
import { getLocation, locationOfPath, type Location } from '../locations.js';
import { entrySdPath, isSdPath, parseSdPath } from '../sdpath.js';
import { EntryStore } from '../entries.js';

export interface LocalPath {
  /** As the user wrote it. */
  given: string;
  /** Absolute path on this machine (folders above it resolved; the last name as given). */
  abs: string;
  /** The local location holding it, if any. */
  location?: Location;
  /** Path relative to the location root, '/'-separated ('' for the root). */
  rel?: string;
  /** Its SdPath when it is inside a location. */
  sdpath: string | null;
}

export function resolveLocal(library: Library, given: string): LocalPath {
  return isSdPath(given) ? resolveSd(library, given) : resolvePlain(library, given);
}

/** The same place described from an absolute path (used for paths derived inside a job). */
export function describeAbs(library: Library, abs: string): LocalPath {
  return resolvePlain(library, abs);
}

function resolveSd(library: Library, given: string): LocalPath {
  const p = parseSdPath(given);
  if (p.kind === 'root') throw new SdError('INVALID', `${given} is the root of all devices; name a location: sd://<device>/<location>/...`);
  if (p.kind === 'content') {
    const viewer = new EntryViewer(library.db);
    const local = viewer.views(new EntryStore(library.db).withContent(p.contentId)).find((v) => v.path !== null && fs.existsSync(v.path));
    if (!local?.path) throw new SdError('NOT_FOUND', `no copy of content ${p.contentId} is on this device`);
    return resolvePlain(library, local.path, given);
  }
  const device = deviceBySlug(library.db, p.device);
  if (!device) throw new SdError('NOT_FOUND', `no device '${p.device}' in this library; 'sd ls sd://' lists devices`);
  requireLocal(device, given);
  if (p.location === undefined) throw new SdError('INVALID', `${given} names a device; name one of its locations: sd://${device.slug}/<location>/...`);
  const location = getLocation(library.db, device.id, p.location);
  if (!location) throw new SdError('NOT_FOUND', `device '${device.slug}' has no location '${p.location}'; 'sd location ls' lists them`);
  const rel = p.path.join('/');
  return { given, abs: rel === '' ? location.rootPath : path.join(location.rootPath, ...p.path), location, rel, sdpath: entrySdPath(device, location, p.path) };
}

function requireLocal(device: Device, given: string): void {
  if (!device.isLocal) {
    throw new SdError('NOT_SUPPORTED', `${given} is on device '${device.name}'; copying to or from another device needs the block protocol, which this version does not have yet`);
  }
}

function resolvePlain(library: Library, given: string, shownAs = given): LocalPath {
  const abs = realParent(path.resolve(given));
  const location = locationOfPath(library.db, library.device.id, abs);
  if (!location) return { given: shownAs, abs, sdpath: null };
  const relOs = path.relative(location.rootPath, abs);
  const parts = relOs === '' ? [] : relOs.split(path.sep);
  return { given: shownAs, abs, location, rel: parts.join('/'), sdpath: entrySdPath(library.device, location, parts) };
}

/** Resolves symlinks in the folders above a path (the nearest existing one), keeping the rest as written. */
function realParent(abs: string): string {
  if (abs === path.parse(abs).root) return abs;
  const tail: string[] = [path.basename(abs)];
  let dir = path.dirname(abs);
  for (;;) {
    try {
      return path.join(fs.realpathSync(dir), ...tail);
    } catch {
      const up = path.dirname(dir);
      if (up === dir) return abs;
      tail.unshift(path.basename(dir));
      dir = up;
    }
  }
}
