// sd devices / sd devices revoke: the paired devices, online or not, and cutting one off.
import { config } from '../../config.js';
import { isOnline, listPeers, requirePeer, revokePeer, type Peer } from '../../vdfs/peers.js';
import { UsageError, type Command } from '../command.js';
import { formatTime, table } from '../format.js';

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** `names`: every paired device's name by id, to say who introduced or revoked a device. */
function deviceJson(p: Peer, now: number, names: ReadonlyMap<string, string> = new Map()) {
  const nameOf = (id: string | null) => (id === null ? null : names.get(id) ?? id);
  return {
    name: p.name,
    id: p.id,
    slug: p.slug,
    online: isOnline(p, config.peerOnlineStaleMs, now),
    last_seen: iso(p.lastSeen),
    rtt_ms: p.rttMs,
    paired_at: iso(p.pairedAt),
    revoked: p.revokedAt !== null,
    revoked_at: iso(p.revokedAt),
    introduced_by: nameOf(p.introducedBy),
    revoked_by: nameOf(p.revokedBy),
    public_key: p.publicKey,
    faults: p.faults,
    last_fault_at: iso(p.lastFaultAt),
    last_fault: p.lastFault,
  };
}

const revoke: Command = {
  name: 'revoke',
  summary: 'cut a paired device off for good',
  usage: `Usage: sd devices revoke NAME

Refuses the device (by name, slug or id) from now on: a running 'sd mount' drops its
connection within a second, and it can never pair again with the same device key. The
revocation spreads to every device of the group as each connects to one that knows.`,
  run(ctx) {
    const [name, ...extra] = ctx.positionals;
    if (name === undefined || extra.length > 0) throw new UsageError('sd devices revoke takes one device NAME');
    const db = ctx.library().db;
    const peer = revokePeer(db, requirePeer(db, name));
    ctx.out.result({ revoked: deviceJson(peer, Date.now()) }, () => `Revoked '${peer.name}' (${peer.slug}); it is refused from now on`);
  },
};

export const devicesCommand: Command = {
  name: 'devices',
  usage: `Usage: sd devices | sd devices revoke NAME

Lists the paired devices: name, id, whether a running 'sd mount' here is connected to it
(online), when it was last seen, the measured round-trip time, VIA: 'words' when paired
here with 'sd pair', else the group member that introduced it; and FAULTS: how many times
it sent file bytes that the file's owner does not vouch for (a damaged or lying copy; the
read took them from another copy instead; --json has the last one and why). Without a
running mount every device shows offline, with the last time one saw it.`,
  subcommands: [revoke],
  run(ctx) {
    if (ctx.positionals.length > 0) throw new UsageError(`unknown subcommand '${ctx.positionals[0]}' of 'sd devices'; try 'sd devices --help'`);
    const now = Date.now();
    const peers = listPeers(ctx.library().db);
    const names = new Map(peers.map((p) => [p.id, p.name]));
    const rows = peers.map((p) => deviceJson(p, now, names));
    ctx.out.result(rows, () =>
      rows.length === 0
        ? ["No paired devices yet; run 'sd pair' here and 'sd pair join WORDS' on the other device"]
        : table(
            [
              ['NAME', 'ID', 'STATUS', 'LAST SEEN', 'RTT', 'VIA', 'FAULTS'],
              ...rows.map((r) => [
                r.name,
                r.id,
                r.revoked ? (r.revoked_by ? `revoked by ${r.revoked_by}` : 'revoked') : r.online ? 'online' : 'offline',
                formatTime(r.last_seen ? Date.parse(r.last_seen) : null),
                r.rtt_ms === null ? '-' : `${r.rtt_ms.toFixed(1)} ms`,
                r.paired_at === null ? '-' : r.introduced_by ?? 'words',
                String(r.faults),
              ]),
            ],
            new Set([4, 6]),
          ),
    );
  },
};
