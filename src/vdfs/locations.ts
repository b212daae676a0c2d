// Locations: the real folders a library indexes. Adding one checks the folder is
// readable and neither the same as, inside, nor around another location.
import fs from 'node:fs';
import path from 'node:path';
import { SdError, systemCode } from '../errors.js';
import type { Db } from './db/database.js';
import type { EntryStore } from './entries.js';

export type IndexMode = 'shallow' | 'content' | 'deep';
export const INDEX_MODES: readonly IndexMode[] = ['shallow', 'content', 'deep'];

export interface Location {
  id: number;
  deviceId: string;
  name: string;
  rootPath: string;
  indexMode: IndexMode;
  includeHidden: boolean;
  ignoreRules: string[];
  rootEntryId: number | null;
  createdAt: number;
  lastIndexedAt: number | null;
}

interface LocationRow {
  id: number;
  device_id: string;
  name: string;
  root_path: string;
  index_mode: IndexMode;
  include_hidden: number;
  ignore_rules: string;
  root_entry_id: number | null;
  created_at: number;
  last_indexed_at: number | null;
}

function toLocation(row: LocationRow): Location {
  return {
    id: row.id,
    deviceId: row.device_id,
    name: row.name,
    rootPath: row.root_path,
    indexMode: row.index_mode,
    includeHidden: row.include_hidden === 1,
    ignoreRules: JSON.parse(row.ignore_rules) as string[],
    rootEntryId: row.root_entry_id,
    createdAt: row.created_at,
    lastIndexedAt: row.last_indexed_at,
  };
}

export interface AddLocationInput {
  path: string;
  name?: string;
  mode?: IndexMode;
  includeHidden?: boolean;
  ignoreRules?: string[];
}

/** A location name is one path segment that can stand in an SdPath. */
export function validateLocationName(name: string): void {
  if (!name || name === '.' || name === '..' || name.includes('/') || name.startsWith('.') || /[\u0000-\u001f]/.test(name)) {
    throw new SdError('USAGE', `location name '${name}' is not usable: it must be one path segment, not start with '.', and hold no control characters`);
  }
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export function listLocations(db: Db, deviceId?: string): Location[] {
  const rows = deviceId
    ? db.prepare('SELECT * FROM locations WHERE device_id = ? ORDER BY name').all(deviceId)
    : db.prepare('SELECT * FROM locations ORDER BY device_id, name').all();
  return (rows as LocationRow[]).map(toLocation);
}

export function getLocation(db: Db, deviceId: string, nameOrId: string): Location | undefined {
  // A name wins over an id: a location may well be named '1'.
  const row = (db.prepare('SELECT * FROM locations WHERE device_id = ? AND name = ?').get(deviceId, nameOrId) ??
    db.prepare('SELECT * FROM locations WHERE device_id = ? AND CAST(id AS TEXT) = ?').get(deviceId, nameOrId)) as LocationRow | undefined;
  return row && toLocation(row);
}

export function requireLocation(db: Db, deviceId: string, nameOrId: string): Location {
  const location = getLocation(db, deviceId, nameOrId);
  if (!location) throw new SdError('NOT_FOUND', `no location named '${nameOrId}'; 'sd location ls' lists them`);
  return location;
}

/** The local location whose root holds this absolute real path, if any. */
export function locationOfPath(db: Db, deviceId: string, realPath: string): Location | undefined {
  return listLocations(db, deviceId).find((l) => isInside(realPath, l.rootPath));
}

export function addLocation(db: Db, entries: EntryStore, deviceId: string, input: AddLocationInput): Location {
  const given = path.resolve(input.path);
  let root: string;
  try {
    root = fs.realpathSync(given);
    const st = fs.statSync(root);
    if (!st.isDirectory()) throw new SdError('NOT_A_DIRECTORY', `${given} is not a directory; a location must be a folder`);
    fs.accessSync(root, fs.constants.R_OK | fs.constants.X_OK);
    fs.readdirSync(root);
  } catch (err) {
    if (err instanceof SdError) throw err;
    const code = systemCode(err);
    if (code === 'ENOENT') throw new SdError('NOT_FOUND', `${given} does not exist; create it or check the path`);
    throw new SdError('PERMISSION', `${given} is not readable: ${code ?? String(err)}`);
  }
  const name = input.name ?? path.basename(root);
  validateLocationName(name);
  for (const other of listLocations(db, deviceId)) {
    if (other.rootPath === root) throw new SdError('EXISTS', `${root} is already the location '${other.name}'`);
    if (isInside(root, other.rootPath)) throw new SdError('LOCATION_OVERLAP', `${root} is inside the location '${other.name}' (${other.rootPath}); it is indexed there already`);
    if (isInside(other.rootPath, root)) throw new SdError('LOCATION_OVERLAP', `${root} contains the location '${other.name}' (${other.rootPath}); remove that one first`);
    if (other.name === name) throw new SdError('EXISTS', `a location named '${name}' exists already (${other.rootPath}); pick another with --name`);
  }
  const st = fs.lstatSync(root);
  const now = Date.now();
  return db.transaction(() => {
    const info = db.prepare(`INSERT INTO locations (device_id, name, root_path, index_mode, include_hidden, ignore_rules, created_at)
                             VALUES (?, ?, ?, ?, ?, ?, ?)`)
      .run(deviceId, name, root, input.mode ?? 'content', input.includeHidden === false ? 0 : 1, JSON.stringify(input.ignoreRules ?? []), now);
    const id = Number(info.lastInsertRowid);
    // Queued for the device's log before its root entry, which a peer hangs under it.
    db.prepare(`INSERT INTO index_outbox (op, id, extra) VALUES ('location', ?, ?)`)
      .run(id, JSON.stringify({ name, rootPath: root, indexMode: input.mode ?? 'content' }));
    const rootEntryId = entries.insert(deviceId, id, null, { name: '', kind: 'dir', size: 0, mtime: 0, inode: st.ino, mode: st.mode });
    db.prepare('UPDATE locations SET root_entry_id = ? WHERE id = ?').run(rootEntryId, id);
    return requireLocation(db, deviceId, String(id));
  })();
}

/**
 * Forgets a location and everything indexed under it; the folder itself is untouched. Takes
 * the write lock before it counts the entries (another writer of the library is waited for).
 */
export function removeLocation(db: Db, entries: EntryStore, location: Location): number {
  return db.transaction(() => {
    const removed = location.rootEntryId === null ? 0 : entries.deleteSubtree(location.rootEntryId);
    db.prepare('DELETE FROM locations WHERE id = ?').run(location.id);
    if (location.deviceId === localDeviceIdOf(db)) db.prepare(`INSERT INTO index_outbox (op, id) VALUES ('unlocation', ?)`).run(location.id);
    return removed;
  }).immediate();
}

function localDeviceIdOf(db: Db): string | undefined {
  return db.prepare('SELECT id FROM devices WHERE is_local = 1').pluck().get() as string | undefined;
}

export function markIndexed(db: Db, locationId: number, at: number): void {
  db.prepare('UPDATE locations SET last_indexed_at = ? WHERE id = ?').run(at, locationId);
}

// ---------------------------------------------------------------- a peer's locations (the mirror)

/** The mirrored location holding a peer's location id. */
export function locationByRemoteId(db: Db, deviceId: string, remoteId: number): Location | undefined {
  const row = db.prepare('SELECT * FROM locations WHERE device_id = ? AND remote_id = ?').get(deviceId, remoteId) as LocationRow | undefined;
  return row && toLocation(row);
}

/** Adds or updates a peer's location as its log reports it (the root path is the peer's). */
export function upsertMirroredLocation(db: Db, deviceId: string, remoteId: number, l: { name: string; rootPath: string; indexMode: string }): Location {
  const existing = locationByRemoteId(db, deviceId, remoteId);
  if (existing) {
    db.prepare('UPDATE locations SET name = ?, root_path = ?, index_mode = ? WHERE id = ?').run(l.name, l.rootPath, l.indexMode, existing.id);
    return { ...existing, name: l.name, rootPath: l.rootPath, indexMode: l.indexMode as IndexMode };
  }
  const info = db.prepare(`INSERT INTO locations (device_id, name, root_path, index_mode, created_at, remote_id) VALUES (?, ?, ?, ?, ?, ?)`)
    .run(deviceId, l.name, l.rootPath, l.indexMode, Date.now(), remoteId);
  return toLocation(db.prepare('SELECT * FROM locations WHERE id = ?').get(info.lastInsertRowid) as LocationRow);
}

export function setLocationRoot(db: Db, locationId: number, rootEntryId: number | null): void {
  db.prepare('UPDATE locations SET root_entry_id = ? WHERE id = ?').run(rootEntryId, locationId);
}
