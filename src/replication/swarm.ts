// The device swarm: Hyperswarm on the device's own key pair, a firewall that lets through
// only paired, non-revoked devices, presence and round-trip time per connected device.
import { EventEmitter } from 'node:events';
import DHT from 'hyperdht';
import Hyperswarm, { type SwarmConnection } from 'hyperswarm';
import type { DhtKeyPair, DhtServer } from 'hyperdht';
import Protomux from 'protomux';
import { config } from '../config.js';
import { SdError } from '../errors.js';
import { log } from '../log.js';
import type { Library } from '../vdfs/library.js';
import { clearPresence, listPeers, markPeerOffline, markPeerOnline, peerByKey, type Peer } from '../vdfs/peers.js';
import { deviceKeys } from './identity.js';
import { PING_PROTOCOL, ping, pong } from './messages.js';

export interface BootstrapNode {
  host: string;
  port: number;
}

/**
 * `host:port,host:port` (from --bootstrap, else SD_BOOTSTRAP) as DHT bootstrap nodes;
 * undefined when neither is given (the public DHT).
 */
export function parseBootstrap(text: string | undefined = process.env.SD_BOOTSTRAP): BootstrapNode[] | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  return text.split(',').map((part) => {
    const m = /^\s*\[?([^\s\[\]]+?)\]?:(\d{1,5})\s*$/.exec(part);
    const port = m ? Number(m[2]) : NaN;
    if (!m || !(port > 0 && port < 65536)) {
      throw new SdError('USAGE', `bootstrap node '${part.trim()}' is not host:port (e.g. --bootstrap 127.0.0.1:49737,dht.example.org:49737)`);
    }
    return { host: m[1] === 'localhost' ? '127.0.0.1' : m[1]!, port };
  });
}

function isLoopback(host: string): boolean {
  return host.startsWith('127.') || host === '::1';
}

/**
 * A DHT node for this process. On a loopback-only bootstrap (a local testnet) it binds
 * 127.0.0.1, as hyperdht's testnet nodes do, and says it is not firewalled (every node of
 * the testnet reaches it there); otherwise every interface, firewall state found out.
 *
 * Why not firewalled: on a testnet of a few nodes the NAT analysis never settles, so both
 * ends count as firewalled and a dial takes hyperdht's same-host path, which races a LAN
 * ping against holepunching. The ping wins and the dialling side opens at once, while the
 * server's holepuncher, finding its analysis unstable, aborts and destroys the raw stream
 * the dialler's first packets were meant for: a connection open on one side only (measured:
 * most first dials between two processes, each dropped after peerOpenMs). An open node is
 * dialled directly, with no puncher to abort (6 of 6 first dials connected both sides).
 */
export function createDht(bootstrap: BootstrapNode[] | undefined): DHT {
  if (!bootstrap) return new DHT({ ephemeral: true });
  const local = bootstrap.every((b) => isLoopback(b.host));
  return new DHT({ ephemeral: true, bootstrap, ...(local ? { host: '127.0.0.1', firewalled: false } : {}) });
}

/**
 * Leaves the DHT politely (unannounce) when it answers within `graceMs`, else at once:
 * on an unreachable DHT the polite way takes about 9 s, and announcements expire anyway.
 */
export async function destroySwarm(swarm: Hyperswarm, graceMs = config.swarmStopGraceMs): Promise<void> {
  await leaveDht(swarm.destroy(), swarm.dht, graceMs);
}

/** Waits up to `graceMs` for a polite close, then destroys the DHT node at once. */
async function leaveDht(polite: Promise<unknown>, dht: DHT, graceMs: number): Promise<void> {
  const done = polite.then(() => true, () => false);
  if (await within(done, graceMs)) return;
  await dht.destroy({ force: true }).catch(() => undefined);
  // A swarm with a topic lookup in flight may never finish its own destroy once its DHT is
  // gone (seen in tests: the process then never exited); its sockets are closed by now.
  if (!(await within(done, graceMs))) log.debug({ op: 'swarm' }, 'the swarm did not finish stopping; its DHT is closed');
}

/** Whether the promise settles true within ms. */
async function within(p: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([p, new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  clearTimeout(timer);
  return result;
}

/** An authenticated connection to a paired device; replication attaches its channels to `mux`. */
export interface DeviceConnection {
  peer: Peer;
  conn: SwarmConnection;
  mux: Protomux;
}

interface Live extends DeviceConnection {
  timer: NodeJS.Timeout;
  rttMs: number | null;
}

export interface DeviceSwarmOptions {
  bootstrap?: BootstrapNode[];
  /** A DHT node to use instead of one built from `bootstrap` (tests on an in-process testnet). */
  dht?: DHT;
}

/** A device this side dials: when to try next and how many tries failed in a row. */
interface Dial {
  /** Dials in flight (not yet open). */
  pending: Set<SwarmConnection>;
  /** When the newest of them started. */
  startedAt: number;
  failures: number;
  nextAt: number;
}

/**
 * This device on the network: a DHT server on the device's own key pair that lets through
 * only paired, non-revoked devices, a dialer for the paired devices this side calls, presence
 * and round-trip time per connected device. Emits 'connection' (DeviceConnection) once a
 * paired device is connected and 'disconnect' (Peer) when that connection ends.
 *
 * Hyperswarm's explicit peers (joinPeer) are not used: after four failed dials Hyperswarm
 * parks a peer for ten minutes and ignores joinPeer meanwhile, so a device that restarted
 * while the other kept dialling stayed unreachable (seen in CI). Dialling a known key needs
 * no topic, so the dialer calls dht.connect itself, at most every `peerRejoinMs` while offline.
 */
export class DeviceSwarm extends EventEmitter {
  private dht: DHT | undefined;
  private server: DhtServer | undefined;
  /** Hex swarm keys of paired, non-revoked devices: all the firewall lets through. */
  private allowed = new Map<string, Peer>();
  /** Open connections per device, newest last (the one used). */
  private live = new Map<string, Live[]>();
  /** The devices this side dials (see `dials`), by hex key. */
  private dialing = new Map<string, Dial>();
  /** Keys refused once, so a device that keeps calling is logged once. */
  private refusedLogged = new Set<string>();
  private refreshTimer: NodeJS.Timeout | undefined;
  private dialTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private ownKeys: DhtKeyPair | undefined;

  constructor(private readonly library: Library, private readonly options: DeviceSwarmOptions = {}) {
    super();
  }

  /** This device's swarm key pair, read from device.key once (every dial uses it). */
  get keyPair(): DhtKeyPair {
    this.ownKeys ??= deviceKeys(this.library.dir).swarm;
    return this.ownKeys;
  }

  get publicKey(): Buffer {
    return this.keyPair.publicKey;
  }

  /** Announces this device and looks for every paired device; never waits for the network. */
  start(): void {
    const keyPair = this.keyPair;
    clearPresence(this.library.db);
    const dht = this.options.dht ?? createDht(this.options.bootstrap);
    this.dht = dht;
    this.server = dht.createServer({ firewall: (remoteKey) => this.refuses(remoteKey) }, (conn) => this.onConnection(conn));
    // The announce may take long (or never finish offline); hyperdht's announcer retries.
    this.server.listen(keyPair).catch((err: unknown) => log.warn({ op: 'swarm', err: String(err) }, 'announcing this device failed'));
    this.refresh();
    this.refreshTimer = setInterval(() => this.refresh(), config.peerRefreshMs);
    this.dialTimer = setInterval(() => this.dialDue(), config.peerDialTickMs);
    log.info({ op: 'swarm', key: keyPair.publicKey.toString('hex'), peers: this.allowed.size }, 'swarm started');
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.refreshTimer);
    clearInterval(this.dialTimer);
    for (const d of this.dialing.values()) for (const conn of d.pending) conn.destroy();
    for (const list of this.live.values()) for (const l of list) clearInterval(l.timer);
    const dht = this.dht;
    if (dht) {
      const server = this.server;
      // Unannounce when the DHT answers in time; then the node goes, closing every connection.
      await leaveDht((server ? server.close() : Promise.resolve()).then(() => dht.destroy()), dht, config.swarmStopGraceMs);
    }
    this.live.clear();
    clearPresence(this.library.db);
  }

  online(deviceId: string): boolean {
    return this.live.has(deviceId);
  }

  /** The last measured round-trip time to a connected device, in ms. */
  rttMs(deviceId: string): number | null {
    return this.current(deviceId)?.rttMs ?? null;
  }

  connections(): DeviceConnection[] {
    return [...this.live.values()].flatMap((list) => list.slice(-1)).map(({ peer, conn, mux }) => ({ peer, conn, mux }));
  }

  /**
   * Of two paired devices the one with the smaller key dials at once; the other dials only
   * when no connection came for peerDialFallbackMs (measured: a dial from a mount process to
   * a device in another process sometimes opened on its side only, again and again, while
   * the other direction connected in ~40 ms; on a testnet that was hyperdht's same-host race,
   * see createDht, and the fallback stays for networks where one direction still fails).
   * Two connections at once are fine: each
   * carries every channel, and the newest is the one used.
   */
  dials(remoteKeyHex: string): boolean {
    return this.publicKey.toString('hex') < remoteKeyHex;
  }

  /** When to dial a device that is not connected: now, or after the fallback wait when the other side dials first. */
  private firstDialAt(keyHex: string): number {
    return this.dials(keyHex) ? 0 : performance.now() + config.peerDialFallbackMs;
  }

  private current(deviceId: string): Live | undefined {
    return this.live.get(deviceId)?.at(-1);
  }

  /** The server's firewall: true refuses. */
  private refuses(remoteKey: Buffer): boolean {
    const key = Buffer.from(remoteKey).toString('hex');
    if (this.allowed.has(key)) return false;
    if (!this.refusedLogged.has(key)) {
      this.refusedLogged.add(key);
      log.info({ op: 'swarm', refused: key }, 'refused a device that is not paired');
    }
    return true;
  }

  /**
   * Re-reads the paired devices: pairings made by another process (sd pair) are let in and
   * dialled; revoked ones are refused and their connections closed.
   */
  refresh(): void {
    if (!this.dht || this.stopped) return;
    let peers: Peer[];
    try {
      peers = listPeers(this.library.db);
    } catch (err) {
      return log.warn({ op: 'swarm', err: String(err) }, 'cannot read the paired devices; keeping the last list');
    }
    const next = new Map(peers.filter((p) => p.revokedAt === null).map((p) => [p.publicKey, p]));
    const previous = this.allowed;
    this.allowed = next;
    for (const [key, peer] of next) {
      if (previous.has(key)) continue;
      this.refusedLogged.delete(key);
      this.dialing.set(key, { pending: new Set(), startedAt: 0, failures: 0, nextAt: this.firstDialAt(key) });
      log.info({ op: 'swarm', device: peer.slug }, 'looking for paired device');
    }
    for (const [key, peer] of previous) {
      if (next.has(key)) continue;
      for (const conn of this.dialing.get(key)?.pending ?? []) conn.destroy();
      this.dialing.delete(key);
      for (const l of this.live.get(peer.id) ?? []) l.conn.destroy(new Error(`device ${peer.slug} was revoked`));
      log.info({ op: 'swarm', device: peer.slug }, 'device revoked: refused from now on');
    }
    this.dialDue();
  }

  /**
   * Dials every device this side calls that is not connected, when due. A dial can take
   * long to fail: its lookup waits on DHT nodes that went away (seen: 20+ s on a testnet
   * whose earlier nodes were closed), while the device may have come up meanwhile. So a
   * dial still pending after peerDialOverlapMs gets a fresh one beside it (up to
   * peerDialsMax); the first to open wins and the others are dropped.
   */
  private dialDue(): void {
    const dht = this.dht;
    if (!dht || this.stopped) return;
    const now = performance.now();
    for (const [key, d] of this.dialing) {
      const peer = this.allowed.get(key);
      if (!peer || this.live.has(peer.id)) continue;
      if (d.pending.size === 0 ? now < d.nextAt : d.pending.size >= config.peerDialsMax || now - d.startedAt < config.peerDialOverlapMs) continue;
      const conn = dht.connect(Buffer.from(key, 'hex'), { keyPair: this.keyPair });
      d.pending.add(conn);
      d.startedAt = now;
      let opened = false;
      conn.on('error', (err: Error) => log.debug({ op: 'swarm', device: peer.slug, err: err.message }, 'dial failed'));
      conn.once('open', () => {
        opened = true;
        d.pending.delete(conn);
        d.failures = 0;
        for (const other of d.pending) other.destroy();
        d.pending.clear();
        this.onConnection(conn);
      });
      conn.once('close', () => {
        if (opened) {
          // A dropped connection is dialled again at once (by the side that dials first).
          d.nextAt = this.firstDialAt(key);
          setImmediate(() => this.dialDue());
          return;
        }
        d.pending.delete(conn);
        // A failed dial backs off 1, 2, 4 s up to peerRejoinMs (a device that is off is
        // asked for on the DHT that often).
        d.failures++;
        d.nextAt = performance.now() + Math.min(1000 * 2 ** (d.failures - 1), config.peerRejoinMs);
      });
    }
  }

  private onConnection(conn: SwarmConnection): void {
    const key = conn.remotePublicKey.toString('hex');
    log.debug({ op: 'swarm', remote: key, initiator: conn.isInitiator }, 'connection');
    // Errors end this connection, never the node.
    conn.on('error', (err: Error) => log.debug({ op: 'swarm', remote: key, err: err.message }, 'connection error'));
    const peer = this.allowed.get(key) && peerByKey(this.library.db, key);
    if (!peer || peer.revokedAt !== null) {
      conn.destroy();
      return;
    }
    const mux = Protomux.from(conn);
    const l: Live = { peer, conn, mux, rttMs: null, timer: setInterval(() => sendPing(), config.peerPingIntervalMs) };
    let seq = 0;
    let sentAt = 0;
    // A connection that stops answering pings is dead even if no close came (a peer that
    // vanished, or a dial whose far side never opened): drop it, so a fresh one is made.
    let answeredAt = performance.now();
    // A connection the other side never takes up (it opens no channel) is dropped soon.
    let remoteOpened = false;
    const openTimer = setTimeout(() => {
      if (remoteOpened) return;
      log.info({ op: 'swarm', device: peer.slug }, 'the device did not take up the connection: dropping it');
      conn.destroy(new Error(`device ${peer.slug} did not take up the connection`));
    }, config.peerOpenMs);
    const channel = mux.createChannel({ protocol: PING_PROTOCOL, onopen: () => void (remoteOpened = true) });
    if (!channel) {
      clearTimeout(openTimer);
      clearInterval(l.timer);
      conn.destroy();
      return;
    }
    const pingMessage = channel.addMessage({ encoding: ping, onmessage: (n) => void pongMessage.send(n) });
    const pongMessage = channel.addMessage({
      encoding: pong,
      onmessage: (n) => {
        if (n !== seq) return;
        answeredAt = performance.now();
        l.rttMs = Math.round((performance.now() - sentAt) * 100) / 100;
        this.record(() => markPeerOnline(this.library.db, peer.id, l.rttMs));
      },
    });
    channel.open();
    const sendPing = () => {
      if (performance.now() - answeredAt > config.peerDeadMs) {
        log.info({ op: 'swarm', device: peer.slug }, 'no answer to pings: dropping the connection');
        conn.destroy(new Error(`device ${peer.slug} stopped answering`));
        return;
      }
      seq = (seq + 1) % 0x7fffffff;
      sentAt = performance.now();
      pingMessage.send(seq);
    };
    const list = this.live.get(peer.id) ?? [];
    list.push(l);
    this.live.set(peer.id, list);
    this.record(() => markPeerOnline(this.library.db, peer.id, null));
    sendPing();
    conn.on('close', () => {
      clearInterval(l.timer);
      clearTimeout(openTimer);
      const remaining = (this.live.get(peer.id) ?? []).filter((x) => x !== l);
      if (remaining.length > 0) {
        this.live.set(peer.id, remaining);
        return;
      }
      this.live.delete(peer.id);
      if (!this.stopped) this.record(() => markPeerOffline(this.library.db, peer.id));
      log.info({ op: 'swarm', device: peer.slug }, 'device disconnected');
      this.emit('disconnect', peer);
    });
    log.info({ op: 'swarm', device: peer.slug, initiator: conn.isInitiator }, 'device connected');
    this.emit('connection', { peer, conn, mux } satisfies DeviceConnection);
  }

  /** Presence is best effort: a busy library must not take a connection down. */
  private record(write: () => void): void {
    try {
      write();
    } catch (err) {
      log.warn({ op: 'swarm', err: String(err) }, 'cannot record device presence');
    }
  }
}
