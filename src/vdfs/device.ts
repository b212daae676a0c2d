// This device's identity: a stable id, a human name and the slug used in SdPaths and
// under /sd. The device key seed lives beside the database, readable only by its owner.
import fs from 'node:fs';
import path from 'node:path';
import { SdError } from '../errors.js';
import type { Db } from './db/database.js';

export interface Device {
  id: string;
  name: string;
  slug: string;
  isLocal: boolean;
  createdAt: number;
  lastSeen: number | null;
}

/** Slug of a device name: lowercased, every run of non-alphanumerics one '-'. */
export function slugify(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
}

/** Slugs that name something else in an SdPath or under /sd. */
export const RESERVED_SLUGS = new Set(['content', 'tags', 'search', 'guardian']);

export function validateDeviceName(name: string): string {
  const slug = slugify(name);
  if (!slug) throw new SdError('USAGE', `device name '${name}' has no letters or digits; choose another with --name`);
  if (RESERVED_SLUGS.has(slug)) throw new SdError('USAGE', `device name '${name}' is reserved in sd:// paths; choose another with --name`);
  return slug;
}

interface DeviceRow {
  id: string;
  name: string;
  slug: string;
  is_local: number;
  created_at: number;
  last_seen: number | null;
}

function toDevice(row: DeviceRow): Device {
  return { id: row.id, name: row.name, slug: row.slug, isLocal: row.is_local === 1, createdAt: row.created_at, lastSeen: row.last_seen };
}

export function createLocalDevice(db: Db, name: string, libraryDir: string): Device {
  const slug = validateDeviceName(name);
  // Web Crypto's global rather than node:crypto, whose import cost every command 3–10 ms of
  // its start-up (measured) for what only sd init uses.
  const id = globalThis.crypto.randomUUID();
  const now = Date.now();
  // The seed of the device's Ed25519 key pair (used by the swarm); never leaves this machine.
  const seed = Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(32)));
  fs.writeFileSync(path.join(libraryDir, 'device.key'), seed.toString('hex') + '\n', { mode: 0o600 });
  db.prepare('INSERT INTO devices (id, name, slug, is_local, created_at) VALUES (?, ?, ?, 1, ?)').run(id, name, slug, now);
  return { id, name, slug, isLocal: true, createdAt: now, lastSeen: null };
}

export function localDevice(db: Db): Device | undefined {
  const row = db.prepare('SELECT * FROM devices WHERE is_local = 1').get() as DeviceRow | undefined;
  return row && toDevice(row);
}

export function listDevices(db: Db): Device[] {
  return (db.prepare('SELECT * FROM devices ORDER BY is_local DESC, name').all() as DeviceRow[]).map(toDevice);
}

export function deviceBySlug(db: Db, slug: string): Device | undefined {
  const row = db.prepare('SELECT * FROM devices WHERE slug = ?').get(slug) as DeviceRow | undefined;
  return row && toDevice(row);
}

/** Records a peer device (as pairing does) so its mirrored index has an owner. */
export function addPeerDevice(db: Db, peer: { id: string; name: string; publicKey?: string }): Device {
  const slug = validateDeviceName(peer.name);
  const now = Date.now();
  db.prepare('INSERT INTO devices (id, name, slug, public_key, is_local, created_at) VALUES (?, ?, ?, ?, 0, ?)').run(peer.id, peer.name, slug, peer.publicKey ?? null, now);
  return { id: peer.id, name: peer.name, slug, isLocal: false, createdAt: now, lastSeen: null };
}

export function deviceById(db: Db, id: string): Device | undefined {
  const row = db.prepare('SELECT * FROM devices WHERE id = ?').get(id) as DeviceRow | undefined;
  return row && toDevice(row);
}
