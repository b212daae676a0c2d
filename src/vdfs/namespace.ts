// The library as the mount sees it: devices by slug, their locations by name, entries by
// path and local copies by content id. Small tables are cached briefly in memory so
// the FUSE thread answers most lookups without SQL; entry lookups are indexed queries.
import path from 'node:path';
import { ContentStore } from './content/store.js';
import type { Db } from './db/database.js';
import { listDevices, type Device } from './device.js';
import { EntryStore, type Entry } from './entries.js';
import { listLocations, type Location } from './locations.js';
import { entrySdPath } from './sdpath.js';
import { MetaStore } from './metadata.js';
import { TagStore, parseTagList } from './tags.js';

const TABLE_TTL_MS = 1000;
/** A tag folder lists at most this many entries (a listing, not an export). */
const TAG_LINKS_MAX = 10_000;

export class Namespace {
  private readonly store: EntryStore;
  private readonly contents: ContentStore;
  private readonly tags: TagStore;
  private readonly metas: MetaStore;
  private readonly linkTargetOf;
  private cachedAt = 0;
  private devicesBySlug = new Map<string, Device>();
  private locationsByDevice = new Map<string, Map<string, Location>>();

  constructor(readonly db: Db) {
    this.store = new EntryStore(db);
    this.contents = new ContentStore(db);
    const local = db.prepare('SELECT id FROM devices WHERE is_local = 1').pluck().get() as string;
    this.tags = new TagStore(db, local);
    this.metas = new MetaStore(db, local);
    this.linkTargetOf = db.prepare('SELECT target FROM link_targets WHERE entry_id = ?').pluck();
  }

  /** Forget cached devices and locations (after a location is added or removed). */
  invalidate(): void {
    this.cachedAt = 0;
  }

  private refresh(): void {
    const now = Date.now();
    if (now - this.cachedAt < TABLE_TTL_MS) return;
    this.cachedAt = now;
    this.devicesBySlug = new Map(listDevices(this.db).map((d) => [d.slug, d]));
    this.locationsByDevice = new Map();
    for (const l of listLocations(this.db)) {
      let byName = this.locationsByDevice.get(l.deviceId);
      if (!byName) this.locationsByDevice.set(l.deviceId, (byName = new Map()));
      byName.set(l.name, l);
    }
  }

  devices(): Device[] {
    this.refresh();
    return [...this.devicesBySlug.values()];
  }

  device(slug: string): Device | undefined {
    this.refresh();
    return this.devicesBySlug.get(slug);
  }

  locations(device: Device): Location[] {
    this.refresh();
    return [...(this.locationsByDevice.get(device.id)?.values() ?? [])];
  }

  location(device: Device, name: string): Location | undefined {
    this.refresh();
    return this.locationsByDevice.get(device.id)?.get(name);
  }

  entry(location: Location, rel: readonly string[]): Entry | undefined {
    return location.rootEntryId === null ? undefined : this.store.resolve(location.rootEntryId, rel);
  }

  tagNames(): string[] {
    return this.tags.list().map((t) => t.tag);
  }

  tagsOf(entry: Entry): string[] {
    return this.tags.tagsOf(entry.id);
  }

  /** An entry's user metadata by key. */
  metaOf(entry: Entry): Record<string, string> {
    return this.metas.of(entry);
  }

  /** Sets (or with null removes) one metadata key (user.sd.meta.<key>); a bad key or value throws USAGE. */
  setMeta(entry: Entry, key: string, value: string | null): void {
    this.metas.set(entry, key, value);
  }

  /** Sets an entry's tags from a comma list (user.sd.tags); a bad tag name throws USAGE. */
  setTags(entry: Entry, list: string): void {
    this.tags.set(entry, parseTagList(list));
  }

  /** The entries carrying a tag, as linksTo names them. */
  taggedLinks(tag: string): Map<string, string> {
    return this.linksTo(this.tags.entriesWith(tag, TAG_LINKS_MAX));
  }

  /**
   * Entries as link name -> path below the mount root (device/location/rel), for folders
   * of links into the tree (/.tags/<tag>, /.guardian/at-risk). Two entries with one name
   * are told apart by their id.
   */
  linksTo(entryIds: readonly number[]): Map<string, string> {
    this.refresh();
    const locations = new Map<number, Location>();
    for (const byName of this.locationsByDevice.values()) for (const l of byName.values()) locations.set(l.id, l);
    const slugs = new Map([...this.devicesBySlug.values()].map((d) => [d.id, d.slug]));
    const links = new Map<string, string>();
    for (const id of entryIds) {
      const entry = this.store.get(id);
      const location = entry && locations.get(entry.locationId);
      const slug = entry && slugs.get(entry.deviceId);
      if (!entry || !location || !slug) continue;
      const rel = this.store.relativePath(entry.id);
      const name = entry.parentId === null ? location.name : entry.name;
      links.set(links.has(name) ? `${name} (${entry.id})` : name, [slug, location.name, ...(rel ? [rel] : [])].join('/'));
    }
    return links;
  }

  /** A peer's symlink target as its log reported it (undefined: not known yet). */
  linkTarget(entry: Entry): string | undefined {
    return (this.linkTargetOf.get(entry.id) as string | undefined) ?? undefined;
  }

  /** The entries in a folder of the index (a peer's folder, for the mount), in one query. */
  children(folder: Entry): Entry[] {
    return this.store.childrenOf(folder);
  }

  sdPath(device: Device, location: Location, rel: readonly string[]): string {
    return entrySdPath(device, location, rel);
  }

  fullHash(contentId: string): string | null {
    return this.contents.get(contentId)?.fullHash ?? null;
  }

  /** A local file holding this content, as a real path, if this device has one. */
  localCopy(contentId: string, localDeviceId: string): string | undefined {
    for (const entry of this.store.withContent(contentId)) {
      const real = entry.deviceId === localDeviceId ? this.realPath(entry) : undefined;
      if (real) return real;
    }
    return undefined;
  }

  /** Where an entry of this device is on disk (undefined when its location is gone). */
  realPath(entry: Entry): string | undefined {
    this.refresh();
    const location = [...(this.locationsByDevice.get(entry.deviceId)?.values() ?? [])].find((l) => l.id === entry.locationId);
    return location && path.join(location.rootPath, this.store.relativePath(entry.id));
  }

  /** Content ids this device holds a copy of (for listing /sd/.content). */
  localContentIds(localDeviceId: string, limit: number): string[] {
    return this.db
      .prepare('SELECT DISTINCT content_id FROM entries WHERE device_id = ? AND content_id IS NOT NULL LIMIT ?')
      .pluck()
      .all(localDeviceId, limit) as string[];
  }
}
