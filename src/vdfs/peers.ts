// Paired devices (peers) as the library records them: their keys, when they were paired
// or revoked, and the presence a running node writes (online, last seen, round-trip time).
import { SdError } from '../errors.js';
import type { Db } from './db/database.js';
import { RESERVED_SLUGS, slugify } from './device.js';

export interface Peer {
  id: string;
  name: string;
  slug: string;
  /** Swarm (Noise) public key, hex: the device's identity on the network. */
  publicKey: string;
  /** Public key of the device's index log, hex. */
  logKey: string | null;
  pairedAt: number | null;
  revokedAt: number | null;
  /** Last time a running node of this library confirmed a live connection to it. */
  onlineAt: number | null;
  lastSeen: number | null;
  rttMs: number | null;
  /** Times it sent file bytes their owner does not vouch for (see replication/block-client.ts). */
  faults: number;
  lastFaultAt: number | null;
  lastFault: string | null;
  /** The paired device that introduced it into the group (device id); null: paired here with the words. */
  introducedBy: string | null;
  /** The device whose revocation was taken up here (device id); null when revoked here, or not revoked. */
  revokedBy: string | null;
}

interface PeerRow {
  id: string;
  name: string;
  slug: string;
  public_key: string;
  log_key: string | null;
  paired_at: number | null;
  revoked_at: number | null;
  online_at: number | null;
  last_seen: number | null;
  rtt_ms: number | null;
  faults: number;
  last_fault_at: number | null;
  last_fault: string | null;
  introduced_by: string | null;
  revoked_by: string | null;
}

function toPeer(r: PeerRow): Peer {
  return {
    id: r.id, name: r.name, slug: r.slug, publicKey: r.public_key, logKey: r.log_key, pairedAt: r.paired_at,
    revokedAt: r.revoked_at, onlineAt: r.online_at, lastSeen: r.last_seen, rttMs: r.rtt_ms,
    faults: r.faults, lastFaultAt: r.last_fault_at, lastFault: r.last_fault, introducedBy: r.introduced_by, revokedBy: r.revoked_by,
  };
}

const PEER_COLUMNS = 'id, name, slug, public_key, log_key, paired_at, revoked_at, online_at, last_seen, rtt_ms, faults, last_fault_at, last_fault, introduced_by, revoked_by';

export function listPeers(db: Db): Peer[] {
  return (db.prepare(`SELECT ${PEER_COLUMNS} FROM devices WHERE is_local = 0 AND public_key IS NOT NULL ORDER BY name`).all() as PeerRow[]).map(toPeer);
}

export function peerByKey(db: Db, publicKey: string): Peer | undefined {
  const row = db.prepare(`SELECT ${PEER_COLUMNS} FROM devices WHERE public_key = ? AND is_local = 0`).get(publicKey) as PeerRow | undefined;
  return row && toPeer(row);
}

/** A peer by name, slug or id; a clear error when none matches. */
export function requirePeer(db: Db, ref: string): Peer {
  const rows = db.prepare(`SELECT ${PEER_COLUMNS} FROM devices WHERE is_local = 0 AND public_key IS NOT NULL AND (name = ? OR slug = ? OR id = ?)`).all(ref, ref, ref) as PeerRow[];
  if (rows.length === 0) throw new SdError('NOT_FOUND', `no paired device named '${ref}'; 'sd devices' lists them`);
  if (rows.length > 1) throw new SdError('USAGE', `'${ref}' names more than one device; use its slug or id from 'sd devices'`);
  return toPeer(rows[0]!);
}

/** A slug for a peer's name not used by another device here: name, name-2, name-3, ... */
function freeSlug(db: Db, name: string): string {
  let base = slugify(name) || 'device';
  if (RESERVED_SLUGS.has(base)) base = `${base}-device`;
  const taken = db.prepare('SELECT 1 FROM devices WHERE slug = ?');
  for (let n = 1; ; n++) {
    const slug = n === 1 ? base : `${base}-${n}`;
    if (!taken.get(slug)) return slug;
  }
}

export interface PairedDeviceInfo {
  id: string;
  name: string;
  publicKey: string;
  logKey: string;
}

/** Who vouched for a device introduced into the group: that paired device's id and its signature. */
export interface Introduction {
  by: string;
  signature: Buffer;
}

/**
 * Records a device just paired, with the words (no `introduction`) or introduced by a paired
 * device. A device paired before keeps its row (and slug) and gets its current name and log
 * key; pairing with the words makes it a direct pairing. A revoked one is refused for good.
 */
export function savePairedPeer(db: Db, info: PairedDeviceInfo, now = Date.now(), introduction?: Introduction): Peer {
  return db.transaction(() => {
    const byKey = peerByKey(db, info.publicKey);
    if (byKey?.revokedAt) {
      throw new SdError('NOT_PERMITTED', `device '${byKey.name}' was revoked on ${new Date(byKey.revokedAt).toISOString()}; a revoked device cannot pair again`);
    }
    const byId = db.prepare('SELECT public_key, is_local FROM devices WHERE id = ?').get(info.id) as { public_key: string | null; is_local: number } | undefined;
    if (byId && (byId.is_local === 1 || byId.public_key !== info.publicKey)) {
      throw new SdError('NOT_PERMITTED', `the other device claims id ${info.id}, which belongs to another device here; pairing refused`);
    }
    const by = introduction?.by ?? null;
    const signature = introduction?.signature ?? null;
    if (byKey) {
      db.prepare('UPDATE devices SET name = ?, log_key = ?, paired_at = ?, introduced_by = ?, introduction = ? WHERE id = ?').run(info.name, info.logKey, now, by, signature, byKey.id);
    } else {
      db.prepare('INSERT INTO devices (id, name, slug, public_key, log_key, is_local, created_at, paired_at, introduced_by, introduction) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)')
        .run(info.id, info.name, freeSlug(db, info.name), info.publicKey, info.logKey, now, now, by, signature);
    }
    return peerByKey(db, info.publicKey)!;
  }).immediate();
}

/**
 * Cuts a device off for good: the firewall refuses its key from now on. `by`: the paired
 * device whose revocation this is (it spread through the group); none when revoked here.
 */
export function revokePeer(db: Db, peer: Peer, now = Date.now(), by: string | null = null): Peer {
  db.prepare('UPDATE devices SET revoked_by = CASE WHEN revoked_at IS NULL THEN ? ELSE revoked_by END, revoked_at = coalesce(revoked_at, ?), online_at = NULL WHERE id = ?').run(by, now, peer.id);
  return peerByKey(db, peer.publicKey)!;
}

/**
 * Records a device never paired here as revoked (a paired device's revocation named it), so
 * that no later introduction lets it in. False when its id belongs to another device here.
 */
export function recordRevokedDevice(db: Db, info: { id: string; name: string; publicKey: string }, by: string, now = Date.now()): boolean {
  return db.transaction(() => {
    const taken = db.prepare('SELECT 1 FROM devices WHERE id = ?').get(info.id);
    if (taken) return false;
    db.prepare('INSERT INTO devices (id, name, slug, public_key, is_local, created_at, revoked_at, revoked_by) VALUES (?, ?, ?, ?, 0, ?, ?, ?)')
      .run(info.id, info.name, freeSlug(db, info.name), info.publicKey, now, now, by);
    return true;
  }).immediate();
}

/** A device sent file bytes their owner does not vouch for: counted, with why (shown by 'sd devices'). */
export function recordPeerFault(db: Db, id: string, reason: string, now = Date.now()): void {
  db.prepare('UPDATE devices SET faults = faults + 1, last_fault_at = ?, last_fault = ? WHERE id = ?').run(now, reason.slice(0, 500), id);
}

/** A running node saw the peer alive just now (rtt when measured). */
export function markPeerOnline(db: Db, id: string, rttMs: number | null, now = Date.now()): void {
  db.prepare('UPDATE devices SET online_at = ?, last_seen = ?, rtt_ms = coalesce(?, rtt_ms) WHERE id = ?').run(now, now, rttMs, id);
}

export function markPeerOffline(db: Db, id: string, now = Date.now()): void {
  db.prepare('UPDATE devices SET online_at = NULL, last_seen = ? WHERE id = ? AND online_at IS NOT NULL').run(now, id);
}

/** At a node's start and stop: nobody is known to be online. */
export function clearPresence(db: Db): void {
  db.prepare('UPDATE devices SET online_at = NULL WHERE online_at IS NOT NULL').run();
}

/** Whether a peer counts as online: a running node confirmed it within `staleMs`. */
export function isOnline(peer: Peer, staleMs: number, now = Date.now()): boolean {
  return peer.revokedAt === null && peer.onlineAt !== null && now - peer.onlineAt < staleMs;
}
