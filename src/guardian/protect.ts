// sd guardian protect's plan: for every content with fewer copies than its policy wants,
// which devices (this one included) get a new copy and where. A target is a trusted device seen within
// the stale limit that holds no copy of the content yet (one holding an unverified copy is
// not sent another: a scrub there verifies it); its location is the one --to names, else
// the one the file's policy stores copies in, else the one with the most free space that
// device last reported. The copy goes under a readable layout,
// <location>[/<store folder>]/<source device>/<source location>/<path>. Each planned copy
// becomes a job that the running mount delivers (queued while the target is offline); the
// target fetches the bytes from any device holding them and checks their full BLAKE3
// (this device, as a target, by a fetch job its running mount runs).
import path from 'node:path';
import { SdError } from '../errors.js';
import { CopyChecks, isCurrent } from '../vdfs/content/copy-checks.js';
import { ContentStore } from '../vdfs/content/store.js';
import type { Db } from '../vdfs/db/database.js';
import { listDevices } from '../vdfs/device.js';
import { EntryStore, type Entry } from '../vdfs/entries.js';
import { listLocations, type Location } from '../vdfs/locations.js';
import { entrySdPath } from '../vdfs/sdpath.js';
import { Guardian, type GuardianOptions } from './guardian.js';
import { spaceByLocation } from './space.js';

export interface ProtectOptions extends GuardianOptions {
  /** Only onto this device (and this location of it, when given). */
  to?: { deviceId: string; location?: string };
  /** Plan at most this many bytes of copies (the most at risk first). */
  maxBytes?: number;
}

export interface ProtectCopy {
  contentId: string;
  fullHash: string;
  size: number;
  mode: number;
  mtimeMs: number;
  /** A file holding the content (SdPath), for the user. */
  from: string;
  to: { deviceId: string; device: string; location: string; path: string; sdPath: string };
}

export interface ProtectTarget {
  device: string;
  location: string;
  files: number;
  bytes: number;
  /** Free bytes the device last reported for that location (null: never reported). */
  free: number | null;
}

export interface ProtectPlan {
  copies: ProtectCopy[];
  bytes: number;
  targets: ProtectTarget[];
  /** Contents at risk that this plan cannot help, and why (one line each). */
  problems: string[];
  /** Contents left out by --max-bytes. */
  deferred: { contents: number; bytes: number };
  /** Contents at risk when planned. */
  atRisk: number;
}

interface Candidate {
  deviceId: string;
  slug: string;
  location: Location;
  /** Free bytes left after what this plan puts there already (null: unknown). */
  free: number | null;
}

export function planProtect(db: Db, localDeviceId: string, options: ProtectOptions = {}): ProtectPlan {
  const guardian = new Guardian(db, localDeviceId);
  const entries = new EntryStore(db);
  const checks = new CopyChecks(db);
  const stale = new Set(guardian.staleDevices(options));
  const excluded = new Set([...guardian.settings.untrusted(), ...stale]);
  const devices = (db.prepare('SELECT id, slug FROM devices WHERE revoked_at IS NULL ORDER BY slug').all() as Array<{ id: string; slug: string }>).filter(
    (d) => !excluded.has(d.id) && (!options.to || d.id === options.to.deviceId),
  );
  if (options.to && devices.length === 0) throw new SdError('USAGE', 'the device --to names is untrusted or was not seen within --stale days: its copies would not count');
  const allLocations = listLocations(db);
  const locationById = new Map(allLocations.map((l) => [l.id, l]));
  const deviceById = new Map(listDevices(db).map((d) => [d.id, d]));
  const slug = (id: string) => deviceById.get(id)?.slug ?? id;
  const sdPath = (e: Entry) => entrySdPath(deviceById.get(e.deviceId)!, locationById.get(e.locationId)!, entries.relativePath(e.id).split('/').filter(Boolean));
  const space = spaceByLocation(db);
  // Every usable location of every target device, most free space first (unknown last).
  const candidates = new Map<string, Candidate[]>();
  for (const d of devices) {
    const own = allLocations.filter((l) => l.deviceId === d.id && (!options.to?.location || l.name === options.to.location));
    if (options.to?.location && own.length === 0) throw new SdError('NOT_FOUND', `${d.slug} has no location '${options.to.location}'; 'sd location ls' lists them`);
    const list = own.map((location) => ({ deviceId: d.id, slug: d.slug, location, free: space.get(location.id)?.free ?? null }));
    candidates.set(d.id, list.sort(byFreeSpace));
  }

  const { items } = guardian.atRisk({ ...options, limit: Number.MAX_SAFE_INTEGER, pathsPerContent: 0 });
  const plan: ProtectPlan = { copies: [], bytes: 0, targets: [], problems: [], deferred: { contents: 0, bytes: 0 }, atRisk: items.length };
  const contents = new ContentStore(db);
  const filesOf = db.prepare("SELECT id FROM entries WHERE content_id = ? AND kind = 'file' ORDER BY device_id = ? DESC, id").pluck();
  for (const item of items) {
    const fullHash = contents.get(item.contentId)?.fullHash;
    const files = (filesOf.all(item.contentId, localDeviceId) as number[]).map((id) => entries.get(id)!).filter(Boolean);
    const holders = new Set(files.map((f) => f.deviceId));
    // A file with a sound, current check names the copy (its bytes come from any holder, checked on arrival).
    const source =
      files.find((f) => {
        const check = checks.get(f.id);
        return isCurrent(check, f) && !check.corrupt;
      }) ?? files[0];
    if (!source) continue;
    if (!fullHash) {
      plan.problems.push(`${sdPath(source)}: no copy of it is verified (no full BLAKE3 known), so a copy could not be checked; 'sd guardian scrub' on ${slug(source.deviceId)} verifies it`);
      continue;
    }
    if ([...holders].every((id) => stale.has(id))) {
      plan.problems.push(`${sdPath(source)}: only on devices not seen within --stale days (${[...holders].map(slug).join(', ')}): bring one back online, then protect again`);
      continue;
    }
    // Trusted, fresh devices holding a copy (verified or not) need no other copy.
    const fresh = [...holders].filter((id) => !excluded.has(id)).length;
    const needed = item.wanted - Math.max(item.counting, fresh);
    if (needed <= 0) {
      plan.problems.push(`${sdPath(source)}: its ${fresh - item.counting} unverified cop${fresh - item.counting === 1 ? 'y' : 'ies'} would do once verified: 'sd guardian scrub' on the device holding ${fresh - item.counting === 1 ? 'it' : 'them'}`);
      continue;
    }
    if (options.maxBytes !== undefined && plan.bytes + item.size * needed > options.maxBytes) {
      plan.deferred.contents++;
      plan.deferred.bytes += item.size * needed;
      continue;
    }
    const store = guardian.policyFor(source).store;
    const picked = pickTargets(candidates, holders, needed, item.size, store && !options.to ? store : undefined);
    if (picked.length === 0) {
      plan.problems.push(`${sdPath(source)} (${item.size} bytes): no trusted, online-recently device without a copy has room for it${options.to ? ' (--to)' : ''}`);
      continue;
    }
    if (picked.length < needed) plan.problems.push(`${sdPath(source)}: only ${picked.length} of the ${needed} more copies it wants have a device to go to`);
    const sourceLocation = locationById.get(source.locationId)!;
    const rel = entries.relativePath(source.id).split('/').filter(Boolean);
    for (const { target, folder } of picked) {
      const relTo = path.posix.join(folder, slug(source.deviceId), sourceLocation.name, ...rel);
      plan.copies.push({
        contentId: item.contentId,
        fullHash,
        size: item.size,
        mode: source.mode & 0o7777,
        mtimeMs: Math.round(source.mtime),
        from: sdPath(source),
        to: { deviceId: target.deviceId, device: target.slug, location: target.location.name, path: relTo, sdPath: `sd://${target.slug}/${target.location.name}/${relTo}` },
      });
      plan.bytes += item.size;
      const t = plan.targets.find((x) => x.device === target.slug && x.location === target.location.name);
      if (t) {
        t.files++;
        t.bytes += item.size;
      } else plan.targets.push({ device: target.slug, location: target.location.name, files: 1, bytes: item.size, free: space.get(target.location.id)?.free ?? null });
    }
  }
  return plan;
}

function byFreeSpace(a: Candidate, b: Candidate): number {
  return (b.free ?? -1) - (a.free ?? -1) || a.location.name.localeCompare(b.location.name);
}

/**
 * Up to `needed` distinct devices not holding the content, each with the location the
 * copy goes to: the policy's store first (when it names a usable device), then the
 * devices whose best location has the most free space. Planned bytes are taken off.
 */
function pickTargets(candidates: Map<string, Candidate[]>, holders: Set<string>, needed: number, size: number, store: { deviceId: string; location: string; path: string } | undefined): Array<{ target: Candidate; folder: string }> {
  const picked: Array<{ target: Candidate; folder: string }> = [];
  const fits = (c: Candidate) => c.free === null || c.free >= size;
  if (store && !holders.has(store.deviceId)) {
    const c = candidates.get(store.deviceId)?.find((x) => x.location.name === store.location);
    if (c && fits(c)) picked.push({ target: c, folder: store.path });
  }
  const rest = [...candidates.entries()]
    .filter(([id]) => !holders.has(id) && !picked.some((p) => p.target.deviceId === id))
    .map(([, list]) => list.find(fits))
    .filter((c): c is Candidate => c !== undefined)
    .sort(byFreeSpace);
  for (const c of rest) {
    if (picked.length >= needed) break;
    picked.push({ target: c, folder: '' });
  }
  for (const p of picked) {
    if (p.target.free !== null) p.target.free -= size;
    const list = candidates.get(p.target.deviceId)!;
    list.sort(byFreeSpace);
  }
  return picked.slice(0, needed);
}
