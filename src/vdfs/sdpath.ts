// SdPath: the address of a file on any device, `sd://<device>/<location>/<path>`, or of
// any copy of some content, `sd://content/<id>`. Parse and format round-trip; names are
// percent-encoded only where they must be ('%', control characters). '..' and '.' are
// refused, so an SdPath never names anything outside its location.
import fs from 'node:fs';
import path from 'node:path';
import { SdError } from '../errors.js';
import type { Db } from './db/database.js';
import { deviceBySlug, type Device } from './device.js';
import { EntryStore, type Entry } from './entries.js';
import { getLocation, locationOfPath, type Location } from './locations.js';

export const SCHEME = 'sd://';

export type SdPath =
  | { kind: 'root' }
  | { kind: 'entry'; device: string; location?: string; path: string[] }
  | { kind: 'content'; contentId: string };

export function isSdPath(text: string): boolean {
  return text.startsWith(SCHEME);
}

export function parseSdPath(text: string): SdPath {
  if (!isSdPath(text)) throw new SdError('INVALID_PATH', `'${text}' is not an SdPath (sd://<device>/<location>/<path> or sd://content/<id>)`);
  const segments = text.slice(SCHEME.length).split('/').filter((s) => s !== '').map((s) => decodeSegment(s, text));
  for (const s of segments) {
    if (s === '.' || s === '..') throw new SdError('INVALID_PATH', `'${text}' contains '${s}'; SdPaths name entries inside a location only`);
  }
  if (segments.length === 0) return { kind: 'root' };
  const [device, location, ...rest] = segments as [string, ...string[]];
  if (device === 'content') {
    if (location === undefined || rest.length > 0 || !/^[0-9a-f]{16}$/.test(location)) {
      throw new SdError('INVALID_PATH', `'${text}' is not a content path; it takes the form sd://content/<16 hex chars>`);
    }
    return { kind: 'content', contentId: location };
  }
  return location === undefined ? { kind: 'entry', device, path: [] } : { kind: 'entry', device, location, path: rest };
}

export function formatSdPath(p: SdPath): string {
  if (p.kind === 'root') return SCHEME;
  if (p.kind === 'content') return `${SCHEME}content/${p.contentId}`;
  const parts = [p.device, ...(p.location === undefined ? [] : [p.location, ...p.path])];
  return SCHEME + parts.map(encodeSegment).join('/');
}

function encodeSegment(s: string): string {
  return s.replace(/[%\u0000-\u001f\u007f]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

function decodeSegment(s: string, whole: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    throw new SdError('INVALID_PATH', `'${whole}' has a broken %-escape in '${s}'; write '%' as %25`);
  }
}

/** What an SdPath names in this library. */
export type Resolved =
  | { kind: 'root' }
  | { kind: 'device'; device: Device }
  | { kind: 'entry'; device: Device; location: Location; entry: Entry; relPath: string[] }
  | { kind: 'content'; contentId: string; entries: Entry[] };

/** Resolves an SdPath, or a plain local path inside a location, to what it names. */
export function resolvePath(db: Db, text: string): Resolved {
  return isSdPath(text) ? resolveSdPath(db, parseSdPath(text), text) : resolveLocalPath(db, text);
}

function resolveSdPath(db: Db, p: SdPath, text: string): Resolved {
  if (p.kind === 'root') return { kind: 'root' };
  if (p.kind === 'content') {
    const entries = new EntryStore(db).withContent(p.contentId);
    if (entries.length === 0) throw new SdError('NOT_FOUND', `no copy of content ${p.contentId} is known`);
    return { kind: 'content', contentId: p.contentId, entries };
  }
  const device = deviceBySlug(db, p.device);
  if (!device) throw new SdError('NOT_FOUND', `no device '${p.device}' in this library; 'sd ls sd://' lists devices`);
  if (p.location === undefined) return { kind: 'device', device };
  const location = getLocation(db, device.id, p.location);
  if (!location || location.rootEntryId === null) throw new SdError('NOT_FOUND', `device '${p.device}' has no location '${p.location}'`);
  const store = new EntryStore(db);
  const entry = store.resolve(location.rootEntryId, p.path);
  if (!entry) throw new SdError('NOT_FOUND', `${text} is not in the index (not there, ignored, or not indexed yet: 'sd index')`);
  return { kind: 'entry', device, location, entry, relPath: p.path };
}

function resolveLocalPath(db: Db, given: string): Resolved {
  const abs = path.resolve(given);
  let real: string;
  try {
    // The folder part is resolved; a symlink as the last part is named, not followed.
    real = path.join(fs.realpathSync(path.dirname(abs)), path.basename(abs));
    if (abs === '/' || path.basename(abs) === '') real = fs.realpathSync(abs);
  } catch {
    throw new SdError('NOT_FOUND', `${given} does not exist`);
  }
  const deviceRow = db.prepare('SELECT slug FROM devices WHERE is_local = 1').pluck().get() as string;
  const device = deviceBySlug(db, deviceRow)!;
  const location = locationOfPath(db, device.id, real) ?? locationOfPath(db, device.id, fs.existsSync(abs) ? fs.realpathSync(abs) : real);
  if (!location || location.rootEntryId === null) throw new SdError('NOT_FOUND', `${given} is not inside any location; 'sd location add' one first`);
  const rel = path.relative(location.rootPath, real);
  const names = rel === '' ? [] : rel.split(path.sep);
  const entry = new EntryStore(db).resolve(location.rootEntryId, names);
  if (!entry) throw new SdError('NOT_FOUND', `${given} is not in the index (ignored, or not indexed yet: 'sd index')`);
  return { kind: 'entry', device, location, entry, relPath: names };
}

/** The SdPath of an entry of a location of a device. */
export function entrySdPath(device: Device, location: Location, relPath: readonly string[]): string {
  return formatSdPath({ kind: 'entry', device: device.slug, location: location.name, path: [...relPath] });
}
