// Read-only views of the index for the CLI (and later the mount): an entry described
// with its SdPath and local path, a folder's listing, the devices and their locations.
import path from 'node:path';
import { ContentStore } from './content/store.js';
import type { Db } from './db/database.js';
import { listDevices, type Device } from './device.js';
import { EntryStore, type Entry } from './entries.js';
import { listLocations, type Location } from './locations.js';
import { entrySdPath } from './sdpath.js';

export interface EntryView {
  sdpath: string;
  path: string | null;
  name: string;
  kind: string;
  size: number;
  aggregateSize: number;
  mtime: string;
  inode: number;
  mode: string;
  contentId: string | null;
}

export function viewEntry(device: Device, location: Location, relPath: readonly string[], entry: Entry): EntryView {
  return {
    sdpath: entrySdPath(device, location, relPath),
    path: device.isLocal ? path.join(location.rootPath, ...relPath) : null,
    name: entry.parentId === null ? location.name : entry.name,
    kind: entry.kind,
    size: entry.kind === 'dir' ? entry.aggregateSize : entry.size,
    aggregateSize: entry.aggregateSize,
    mtime: new Date(entry.mtime).toISOString(),
    inode: entry.inode,
    mode: (entry.mode & 0o7777).toString(8).padStart(4, '0'),
    contentId: entry.contentId,
  };
}

export interface EntryDetails extends EntryView {
  fullHash: string | null;
  /** Entries in this library holding the same content. */
  copies: number;
  children?: number;
}

export function entryDetails(db: Db, device: Device, location: Location, relPath: readonly string[], entry: Entry): EntryDetails {
  const store = new EntryStore(db);
  const content = entry.contentId ? new ContentStore(db).get(entry.contentId) : undefined;
  return {
    ...viewEntry(device, location, relPath, entry),
    fullHash: content?.fullHash ?? null,
    copies: entry.contentId ? store.withContent(entry.contentId).length : 0,
    ...(entry.kind === 'dir' ? { children: store.children(entry.id).length } : {}),
  };
}

/** Describes entries found by query (search, dupes, content), wherever they live. */
export class EntryViewer {
  private readonly store: EntryStore;
  private readonly devices = new Map<string, Device>();
  private readonly locations = new Map<number, Location>();

  constructor(private readonly db: Db) {
    this.store = new EntryStore(db);
    for (const d of listDevices(db)) this.devices.set(d.id, d);
    for (const l of listLocations(db)) this.locations.set(l.id, l);
  }

  view(entry: Entry): EntryView | undefined {
    const device = this.devices.get(entry.deviceId);
    const location = this.locations.get(entry.locationId);
    if (!device || !location) return undefined;
    const rel = this.store.relativePath(entry.id);
    return viewEntry(device, location, rel === '' ? [] : rel.split('/'), entry);
  }

  views(entries: readonly Entry[]): EntryView[] {
    return entries.flatMap((e) => this.view(e) ?? []);
  }
}
