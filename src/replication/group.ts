// The group: paired devices introduce each other, so pairing a device with any one member
// brings it into the whole group, and a revocation made on one member reaches all of them.
//
// On every device connection each side sends its membership: each device it is paired with
// (an introduction) and each device it refuses (a revocation), every record signed by the
// sender's device key, sent again whole whenever it changes. A device takes up records only
// from a connection of a paired, non-revoked device (the swarm's firewall lets no one else
// in) whose signature they carry; so a device gets in only through a chain of devices that
// were each paired with the words or introduced by a member. A revoked device stays revoked:
// no introduction brings it back, and a revocation is taken up as it comes (revocations win
// over introductions in any order). Members that are offline get both when they next connect
// to any member that knows. (Syncthing's "introducer" is the same idea, set per device there;
// here every member introduces, as a user pairs only their own devices.)
import crypto from 'node:crypto';
import hypercoreCrypto from 'hypercore-crypto';
import type Protomux from 'protomux';
import { SdError } from '../errors.js';
import { log } from '../log.js';
import type { Db } from '../vdfs/db/database.js';
import { listPeers, peerByKey, recordRevokedDevice, revokePeer, savePairedPeer, type Peer } from '../vdfs/peers.js';
import type { KeyPair } from './identity.js';
import { GROUP_PROTOCOL, groupMembership, type GroupMember, type GroupMembership, type GroupRevocation } from './messages.js';

function hash(label: string, ...parts: Buffer[]): Buffer {
  const h = crypto.createHash('sha256').update(label);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** What the introducer signs: its own key (so a record cannot be passed off as another's) and every field. */
function memberStatement(introducer: Buffer, m: Omit<GroupMember, 'signature'>): Buffer {
  return hash('sdfs group member\0', introducer, m.swarmKey, m.logKey, Buffer.from(m.deviceId), Buffer.from([0]), Buffer.from(m.name));
}

function revocationStatement(revoker: Buffer, r: Omit<GroupRevocation, 'signature'>): Buffer {
  return hash('sdfs group revoked\0', revoker, r.swarmKey, Buffer.from(r.deviceId), Buffer.from([0]), Buffer.from(r.name));
}

/** This device's membership, each record signed with its swarm key pair. */
export function membershipOf(db: Db, keys: KeyPair): GroupMembership {
  const peers = listPeers(db);
  const members = peers
    .filter((p) => p.revokedAt === null && p.logKey !== null && p.pairedAt !== null)
    .map((p) => {
      const m = { deviceId: p.id, name: p.name, swarmKey: Buffer.from(p.publicKey, 'hex'), logKey: Buffer.from(p.logKey!, 'hex') };
      return { ...m, signature: hypercoreCrypto.sign(memberStatement(keys.publicKey, m), keys.secretKey) };
    });
  const revoked = peers
    .filter((p) => p.revokedAt !== null)
    .map((p) => {
      const r = { deviceId: p.id, name: p.name, swarmKey: Buffer.from(p.publicKey, 'hex') };
      return { ...r, signature: hypercoreCrypto.sign(revocationStatement(keys.publicKey, r), keys.secretKey) };
    });
  return { members, revoked };
}

/** What a membership changed here, and what it held that was not taken up (and why). */
export interface GroupChanges {
  added: Peer[];
  revoked: string[];
  refused: string[];
}

/**
 * Takes up a membership sent by `from` over its authenticated connection: its revocations
 * first, then its introductions. `self` is this device (never introduced to or revoked on
 * itself). Every record must carry `from`'s signature; `from` must still be paired here.
 */
export function applyMembership(db: Db, from: Peer, membership: GroupMembership, self: { id: string; publicKey: string }, now = Date.now()): GroupChanges {
  const changes: GroupChanges = { added: [], revoked: [], refused: [] };
  const sender = peerByKey(db, from.publicKey);
  if (!sender || sender.revokedAt !== null) {
    changes.refused.push(`the membership of '${from.name}', which is not a paired device here`);
    return changes;
  }
  const senderKey = Buffer.from(sender.publicKey, 'hex');
  const aboutOthers = (deviceId: string, key: string) => deviceId !== self.id && key !== self.publicKey && key !== sender.publicKey;

  for (const r of membership.revoked) {
    const key = r.swarmKey.toString('hex');
    if (!aboutOthers(r.deviceId, key)) continue;
    if (!hypercoreCrypto.verify(revocationStatement(senderKey, r), r.signature, senderKey)) {
      changes.refused.push(`a revocation of '${r.name}' not signed by '${sender.name}'`);
      continue;
    }
    const known = peerByKey(db, key);
    if (known && known.revokedAt !== null) continue;
    if (known) revokePeer(db, known, now, sender.id);
    else if (!recordRevokedDevice(db, { id: r.deviceId, name: r.name, publicKey: key }, sender.id, now)) {
      changes.refused.push(`a revocation of '${r.name}', whose id belongs to another device here`);
      continue;
    }
    changes.revoked.push(r.name);
  }

  for (const m of membership.members) {
    const key = m.swarmKey.toString('hex');
    if (!aboutOthers(m.deviceId, key)) continue;
    if (!hypercoreCrypto.verify(memberStatement(senderKey, m), m.signature, senderKey)) {
      changes.refused.push(`an introduction of '${m.name}' not signed by '${sender.name}'`);
      continue;
    }
    const known = peerByKey(db, key);
    if (known?.revokedAt) {
      changes.refused.push(`an introduction of '${m.name}', revoked here`);
      continue;
    }
    if (known) continue;
    try {
      const info = { id: m.deviceId, name: m.name, publicKey: key, logKey: m.logKey.toString('hex') };
      changes.added.push(savePairedPeer(db, info, now, { by: sender.id, signature: m.signature }));
    } catch (err) {
      if (!(err instanceof SdError)) throw err;
      changes.refused.push(`an introduction of '${m.name}': ${err.message}`);
    }
  }
  return changes;
}

/**
 * The group channel on every device connection: this device's membership goes out when both
 * sides opened it and again on every change; the other's is taken up as it comes.
 */
export class Group {
  private readonly channels = new Map<string, (m: GroupMembership) => void>();
  private lastDigest = '';

  /** `changed` runs after a membership added or revoked devices here (the swarm lets them in or drops them). */
  constructor(private readonly db: Db, private readonly self: { id: string; keys: KeyPair }, private readonly changed: () => void) {}

  attach(mux: Protomux, peer: Peer): void {
    let send: ((m: GroupMembership) => void) | undefined;
    const channel = mux.createChannel({
      protocol: GROUP_PROTOCOL,
      // Sent once both sides opened: the other side's channel is there to take it.
      onopen: () => {
        if (send) send(this.membership());
      },
      onclose: () => {
        if (this.channels.get(peer.id) === send) this.channels.delete(peer.id);
      },
    });
    if (!channel) return log.warn({ op: 'group', device: peer.slug }, 'a group channel is already open on this connection');
    const message = channel.addMessage({ encoding: groupMembership, onmessage: (m) => this.receive(peer, m) });
    send = (m) => void message.send(m);
    this.channels.set(peer.id, send);
    channel.open();
  }

  /** Sends the membership to every connected device when it changed since last sent (pairings, revocations). */
  announceIfChanged(): void {
    const digest = this.digest();
    if (digest === this.lastDigest) return;
    this.lastDigest = digest;
    const membership = this.membership();
    for (const send of this.channels.values()) send(membership);
  }

  private membership(): GroupMembership {
    return membershipOf(this.db, this.self.keys);
  }

  /** Which devices are members and which revoked: what the membership says, without signing it. */
  private digest(): string {
    return listPeers(this.db)
      .map((p) => `${p.publicKey}:${p.revokedAt === null ? 'm' : 'r'}:${p.name}:${p.logKey ?? ''}`)
      .sort()
      .join(',');
  }

  private receive(from: Peer, membership: GroupMembership): void {
    let changes: GroupChanges;
    try {
      changes = applyMembership(this.db, from, membership, { id: this.self.id, publicKey: this.self.keys.publicKey.toString('hex') });
    } catch (err) {
      return log.warn({ op: 'group', from: from.slug, err: String(err) }, 'cannot take up the group membership of this device; it is sent again on the next connection');
    }
    for (const p of changes.added) log.info({ op: 'group', device: p.slug, by: from.slug }, 'device introduced into the group');
    for (const name of changes.revoked) log.info({ op: 'group', device: name, by: from.slug }, 'device revoked in the group');
    for (const why of changes.refused) log.warn({ op: 'group', from: from.slug, refused: why }, 'refused part of a group membership');
    if (changes.added.length > 0 || changes.revoked.length > 0) {
      this.changed();
      // What changed here goes on to the other connected members (they may not know yet).
      this.announceIfChanged();
    }
  }
}
