// Replication in a running node: the swarm's authenticated device connections carry the
// corestore (this device's index log out, peers' logs in, applied by their mirrors) and
// the block channel (file bytes both ways). The mount asks it for remote files.
import type DHT from 'hyperdht';
import type Protomux from 'protomux';
import { config } from '../config.js';
import { log } from '../log.js';
import type { LogSnapshot } from './device-log.js';
import { peersHolding } from '../vdfs/actions/repair.js';
import type { Device } from '../vdfs/device.js';
import type { Entry } from '../vdfs/entries.js';
import { EntryStore } from '../vdfs/entries.js';
import { CopyChecks } from '../vdfs/content/copy-checks.js';
import type { Library } from '../vdfs/library.js';
import type { Location } from '../vdfs/locations.js';
import { Namespace } from '../vdfs/namespace.js';
import { listPeers, recordPeerFault, type Peer } from '../vdfs/peers.js';
import type { BlockSource, RemoteFileRef } from './block-client.js';
import { BlockService } from './blocks.js';
import { Group } from './group.js';
import { startIndexSync, type IndexSync } from './index-sync.js';
import type { MirrorProgress } from './mirror.js';
import type { PrefetchMode, RemoteFile } from './remote-file.js';
import { ActionChannel, Applier, Delivery, type ActionRunner } from './remote-actions.js';
import { DirectLane } from './lane.js';
import { LANE_PROTOCOL, laneOffer, type LaneOffer } from './messages.js';
import { DeviceSwarm, type BootstrapNode, type DeviceConnection } from './swarm.js';
import { VouchStore, type RangeVouch } from './vouches.js';

export interface ReplicationOptions {
  bootstrap?: BootstrapNode[];
  /** A DHT node to use (tests on an in-process testnet). */
  dht?: DHT;
  cacheMaxBytes?: number;
  /** Background fetch of other devices' files read sequentially (config.prefetch). */
  prefetch?: PrefetchMode;
  /** Backfill progress of a peer's index (the CLI draws a bar with it). */
  onMirrorProgress?: (deviceId: string, p: MirrorProgress) => void;
  /** This device's new log got its snapshot of the index (after start, in the background). */
  onLogSnapshot?: (s: LogSnapshot) => void;
  /** What a new log's snapshot waits for (see IndexSyncOptions.snapshotAfter). */
  logSnapshotAfter?: Promise<unknown>;
  /** A peer's changes were applied to its mirror (caches of its tree are stale). */
  onMirrored?: (deviceId: string) => void;
  /** Runs paired devices' changes to this device's tree (the node's ActionManager); without it they are refused. */
  runner?: ActionRunner;
}

/**
 * How long the index's word on where a content's copies are is reused: sources are asked
 * for every block, and the lookup (every entry with that content, this device's copy
 * checked for rot) cost 0.1 s of a 512 MiB read. A copy indexed since shows a second late.
 */
const COPIES_KEPT_MS = 1000;

interface Copies {
  localPath: string | undefined;
  /** Other devices holding the content (the owner among them: it is asked by path instead). */
  holders: string[];
}

/** fn's value, computed again once it is older than ms. */
function recent<T>(ms: number, fn: () => T): () => T {
  let value: T;
  let at = Number.NEGATIVE_INFINITY;
  return () => {
    const now = performance.now();
    if (now - at >= ms) {
      value = fn();
      at = now;
    }
    return value;
  };
}

export class Replication {
  private readonly entries: EntryStore;
  private readonly checks: CopyChecks;
  private readonly ns: Namespace;
  private refreshTimer: NodeJS.Timeout | undefined;
  private swarmStarted = false;
  /** Peers whose mirror is being opened. */
  private readonly opening = new Set<string>();
  private stopped = false;
  /** Open action channels by device id. */
  private readonly actionChannels = new Map<string, ActionChannel>();
  private readonly applier: Applier | undefined;
  readonly delivery: Delivery;
  /** Direct TCP connections to paired devices for file blocks (undefined when SD_LANE=off). */
  private lane: DirectLane | undefined;
  /** Paired devices introducing each other (and spreading revocations) on every connection. */
  private readonly group: Group;

  private constructor(
    private readonly library: Library,
    private readonly sync: IndexSync,
    readonly swarm: DeviceSwarm,
    readonly blocks: BlockService,
    private readonly options: ReplicationOptions,
  ) {
    this.entries = new EntryStore(library.db);
    this.checks = new CopyChecks(library.db);
    this.ns = new Namespace(library.db);
    // Devices introduced or revoked by a member are let in or dropped now, not at the next tick.
    this.group = new Group(library.db, { id: library.device.id, keys: swarm.keyPair }, () => {
      swarm.refresh();
      this.refresh();
    });
    const logLength = async () => {
      await sync.ownLog.pump();
      return sync.ownLog.core.length;
    };
    this.applier = options.runner && new Applier(library, options.runner, blocks, logLength);
    this.delivery = new Delivery(
      library,
      (deviceId) => {
        const channel = this.actionChannels.get(deviceId);
        return channel && !channel.closed ? channel : undefined;
      },
      async (deviceId, length) => {
        await this.sync.mirrors.get(deviceId)?.catchUp(length, config.remoteMirrorWaitMs);
      },
      (deviceId) => options.onMirrored?.(deviceId),
    );
  }

  static async start(library: Library, options: ReplicationOptions = {}): Promise<Replication> {
    const sync = await startIndexSync(library, { onMirrored: options.onMirrored, onProgress: options.onMirrorProgress, onSnapshot: options.onLogSnapshot, snapshotAfter: options.logSnapshotAfter });
    const blocks = await BlockService.open(library, {
      cacheMaxBytes: options.cacheMaxBytes ?? config.cacheMaxBytes,
      prefetch: options.prefetch,
      // Channels are attached by device id: the faulty device is counted for 'sd devices'.
      onFault: (peer, reason) => {
        try {
          recordPeerFault(library.db, peer, reason);
        } catch (err) {
          log.warn({ op: 'block-fault', peer, err: String(err) }, 'could not record a faulty device');
        }
      },
    });
    const swarm = new DeviceSwarm(library, { bootstrap: options.bootstrap, dht: options.dht });
    const replication = new Replication(library, sync, swarm, blocks, options);
    swarm.on('connection', (c: DeviceConnection) => replication.onConnection(c));
    if (config.laneEnabled) await replication.startLane();
    replication.refresh();
    replication.delivery.start();
    replication.refreshTimer = setInterval(() => replication.refresh(), config.peerRefreshMs);
    return replication;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.refreshTimer);
    this.delivery.stop();
    this.lane?.close();
    await this.swarm.stop();
    await this.blocks.close();
    // The writers have stopped: their last changes still reach the log (a snapshot still
    // being written stops; the next start writes it again).
    this.sync.ownLog.interruptSnapshot();
    await this.sync.ownLog.pump().catch((e: unknown) => log.warn({ op: 'index-sync', err: String(e) }, 'last changes stay queued for the next start'));
    await this.sync.close();
  }

  /**
   * Picks up pairings made since (also by another process, `sd pair`, or introduced by a
   * member): the swarm starts with the first paired device (or at once with --bootstrap), a
   * mirror per device, and connected members hear of the change.
   */
  private refresh(): void {
    if (this.stopped) return;
    let peers: Peer[];
    try {
      peers = listPeers(this.library.db).filter((p) => p.revokedAt === null);
    } catch (err) {
      return log.warn({ op: 'replication', err: String(err) }, 'cannot read the paired devices; trying again');
    }
    if (!this.swarmStarted && (peers.length > 0 || this.options.bootstrap !== undefined)) {
      this.swarmStarted = true;
      this.swarm.start();
    }
    this.openMirrors(peers);
    this.group.announceIfChanged();
  }

  /** A mirror for every paired device whose log key is known. */
  private openMirrors(peers: readonly Peer[]): void {
    for (const peer of peers) {
      if (!peer.logKey || this.opening.has(peer.id) || this.sync.mirrors.has(peer.id)) continue;
      this.opening.add(peer.id);
      this.sync
        .mirror(peer.id, Buffer.from(peer.logKey, 'hex'))
        .then((mirror) => log.info({ op: 'mirror', device: peer.slug, applied: mirror.applied, online: this.swarm.online(peer.id) }, 'following the index log of this device'))
        .catch((err: unknown) => log.warn({ op: 'mirror', device: peer.slug, err: String(err) }, 'cannot mirror the index of this device'))
        .finally(() => this.opening.delete(peer.id));
    }
  }

  private onConnection({ peer, conn, mux }: DeviceConnection): void {
    this.refresh();
    this.sync.store.replicate(conn);
    log.info({ op: 'replication', device: peer.slug }, 'replicating index logs and serving blocks');
    this.blocks.attach(mux, peer.id);
    this.group.attach(mux, peer);
    this.attachActions(mux, peer);
    this.offerLane(mux, peer);
  }

  private async startLane(): Promise<void> {
    const lane = new DirectLane(
      (key) => listPeers(this.library.db).find((p) => p.publicKey === key && p.revokedAt === null),
      (peer, stream, dialled) => {
        this.blocks.attach(stream, peer.id, { lane: dialled ? 'dialled' : 'accepted' });
        // Revoked or gone: the lane goes with the swarm connection it was offered on.
        const connection = this.swarm.connections().find((c) => c.peer.id === peer.id);
        if (connection) connection.conn.once('close', () => stream.destroy());
        else stream.destroy();
      },
    );
    if (await lane.listen()) this.lane = lane;
  }

  /**
   * Each of the two tells the other where to dial it, with a credential for that peer alone,
   * withdrawn when this connection closes, and dials the lane the other offers: a device
   * reads over the lane it dialled, where node lets the replies come through one reused
   * read buffer (see ReadRelay; an accepted TLS socket gets a new buffer for every record,
   * 32,768 for a 512 MiB read: perf showed the reader's GC threads busy ~0.9 s on such a
   * read), and serves the peer over the lane the peer dialled.
   */
  private offerLane(mux: Protomux, peer: Peer): void {
    let offered: LaneOffer | undefined;
    const channel = mux.createChannel({
      protocol: LANE_PROTOCOL,
      onclose: () => {
        if (offered) this.lane?.withdraw(offered);
      },
    });
    if (!channel) return;
    const message = channel.addMessage({
      encoding: laneOffer,
      onmessage: (offer) => {
        if (this.lane) void this.lane.connect(peer, offer);
      },
    });
    channel.open();
    offered = this.lane?.offer(peer);
    if (offered) message.send(offered);
  }

  /** The action channel on a new connection: this device's queued changes for the peer go out on it. */
  private attachActions(mux: Protomux, peer: Peer): void {
    let channel: ActionChannel;
    try {
      channel = new ActionChannel(mux, peer, (request, ch) =>
        this.applier
          ? this.applier.serve(request, ch)
          : Promise.resolve({ id: request.id, ok: false, message: `device ${this.library.device.name} takes changes only while its mount runs`, logLength: 0, final: false }),
      );
    } catch (err) {
      return log.warn({ op: 'actions', device: peer.slug, err: String(err) }, 'no action channel');
    }
    this.actionChannels.set(peer.id, channel);
    channel.onClose(() => {
      if (this.actionChannels.get(peer.id) === channel) this.actionChannels.delete(peer.id);
    });
    this.delivery.kick();
  }

  /**
   * Fetches the bytes of a content from the online peers holding it into `dest` and says
   * whether their full BLAKE3 is `fullHash` (a repair's source; false: no peer had them).
   */
  async fetchVerified(want: { contentId: string; size: number; fullHash: string }, dest: string): Promise<boolean> {
    const holders = peersHolding(this.library, want.contentId);
    if (!holders.some((id) => this.blocks.channelTo(id))) return false;
    // What the senders signed for the blocks stays with the copy: passed along when this
    // device serves it while they are away (see vouches.ts).
    const vouches: RangeVouch[] = [];
    const file = this.blocks.openContent(want.contentId, want.size, holders, (v) => vouches.push(...v));
    try {
      if ((await file.fetchWhole(dest)).fullHash !== want.fullHash) return false;
      new VouchStore(this.library.db).record(want.contentId, want.size, vouches);
      return true;
    } catch (err) {
      log.warn({ op: 'repair', content: want.contentId, err: String(err) }, 'no peer delivered the bytes');
      return false;
    }
  }

  /** Opens a file of another device's tree for reading (the mount's open of a remote file). */
  openRemote(device: Device, location: Location, rel: readonly string[], entry: Entry): RemoteFile {
    return this.blocks.openFile(this.refOf(device, location, rel, entry));
  }

  private refOf(device: Device, location: Location, rel: readonly string[], entry: Entry): RemoteFileRef {
    const contentId = entry.contentId ?? undefined;
    const relPath = rel.join('/');
    const ownerKey = this.logKeyOf(device.id);
    const copies = contentId === undefined ? undefined : recent(COPIES_KEPT_MS, () => this.copiesOf(contentId));
    return {
      size: entry.size,
      mtime: entry.mtime,
      contentId,
      cacheKey: contentId ? `content/${contentId}/${entry.size}` : `path/${device.id}/${location.name}/${relPath}/${entry.size}/${entry.mtime}`,
      // Asked on every block: the cheapest copies first (this device, then any online peer
      // holding the content, the owner by path last resort).
      sources: () => this.sourcesOf(device, location, relPath, contentId, copies?.()),
      // Bytes another device sends are checked against what the owner signs for that range.
      owner: ownerKey && { key: ownerKey, source: () => this.ownerSourceOf(device, location, relPath) },
    };
  }

  /** A paired device's log key (it signs the bytes it serves); undefined for one paired before logs had keys. */
  private logKeyOf(deviceId: string): Buffer | undefined {
    const hex = this.library.db.prepare('SELECT log_key FROM devices WHERE id = ?').pluck().get(deviceId) as string | null | undefined;
    return hex ? Buffer.from(hex, 'hex') : undefined;
  }

  /** Where a content's copies are, as the index says: this device's readable one, and the other devices holding it. */
  private copiesOf(contentId: string): Copies {
    // One lookup of every copy: this device's first, then other online peers holding it.
    const copies = this.entries.withContent(contentId).filter((e) => e.kind === 'file');
    const localId = this.library.device.id;
    // A copy a scrub found corrupt is never read, here or by peers.
    const localCopy = copies.find((e) => e.deviceId === localId && !this.checks.isCorrupt(e));
    return { localPath: (localCopy && this.ns.realPath(localCopy)) ?? undefined, holders: [...new Set(copies.map((e) => e.deviceId))].filter((id) => id !== localId) };
  }

  private sourcesOf(device: Device, location: Location, relPath: string, contentId: string | undefined, copies: Copies | undefined): BlockSource[] {
    const sources: BlockSource[] = [];
    if (contentId && copies) {
      if (copies.localPath) sources.push({ kind: 'local', path: copies.localPath });
      for (const holder of copies.holders) {
        // Which devices are online is asked every time (a map): only the index lookup is kept.
        const channel = holder === device.id ? undefined : this.blocks.channelTo(holder);
        if (channel) sources.push({ kind: 'peer', channel, target: { kind: 'content', contentId } });
      }
    }
    const owner = this.ownerSourceOf(device, location, relPath);
    if (owner) sources.push(owner);
    return sources;
  }

  /** The file's owner asked by path, while it is online. */
  private ownerSourceOf(device: Device, location: Location, relPath: string): BlockSource | undefined {
    const channel = this.blocks.channelTo(device.id);
    return channel && { kind: 'peer', channel, target: { kind: 'path', location: location.name, path: relPath } };
  }

}
