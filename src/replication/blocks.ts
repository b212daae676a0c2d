// The byte layer of one running device, for the node and the mount: serves this device's
// files on every peer connection, and opens remote files read through the shared disk cache.
import type { Duplex } from 'node:stream';
import type Protomux from 'protomux';
import { BlockCache } from './block-cache.js';
import { BlockChannel } from './block-channel.js';
import { BlockClient, type BlockClientStats, type RemoteFileRef } from './block-client.js';
import type { BlockCacheStats } from './block-cache.js';
import { BlockServer, LibraryServedFiles, type BlockServerStats } from './block-server.js';
import { RemoteFile, type PrefetchMode } from './remote-file.js';
import type { RangeVouch } from './vouches.js';
import type { Library } from '../vdfs/library.js';

export interface BlockServiceOptions {
  cacheMaxBytes?: number;
  /** Background fetch of files read sequentially through the mount (config.prefetch). */
  prefetch?: PrefetchMode;
  timeoutMs?: number;
  /** A peer sent bytes their owner does not vouch for (by the peer's name as attached). */
  onFault?: (peer: string, reason: string) => void;
}

export interface BlockServiceStats {
  client: BlockClientStats;
  server: BlockServerStats;
  cache: BlockCacheStats;
}

export class BlockService {
  /** Open block channels by peer (device id or key, as the caller names them). */
  private readonly channels = new Map<string, BlockChannel>();
  /** Block channels on direct lanes (TCP) this device dialled: its requests go there first. */
  private readonly dialled = new Map<string, BlockChannel>();
  /** Block channels on direct lanes the peer dialled: this device serves the peer there, and reads there when it has no lane of its own. */
  private readonly accepted = new Map<string, BlockChannel>();

  private constructor(
    readonly cache: BlockCache,
    readonly client: BlockClient,
    readonly server: BlockServer,
    private readonly prefetch: PrefetchMode | undefined,
  ) {}

  static async open(library: Library, options: BlockServiceOptions = {}): Promise<BlockService> {
    const cache = await BlockCache.openOf(library.dir, { maxBytes: options.cacheMaxBytes });
    const client = new BlockClient({ cache, timeoutMs: options.timeoutMs, onFault: options.onFault });
    return new BlockService(cache, client, new BlockServer(new LibraryServedFiles(library)), options.prefetch);
  }

  /**
   * Opens the block channel on a new peer connection (call it as soon as the connection is
   * up, on both sides; pass the connection's Protomux when other protocols share it).
   */
  attach(connection: Duplex | Protomux, peer: string, { lane }: { lane?: 'dialled' | 'accepted' } = {}): BlockChannel {
    const channels = lane === 'dialled' ? this.dialled : lane === 'accepted' ? this.accepted : this.channels;
    const channel = new BlockChannel(connection, { server: this.server, name: peer });
    channels.set(peer, channel);
    channel.onClose(() => {
      if (channels.get(peer) === channel) channels.delete(peer);
    });
    return channel;
  }

  /** The open channel to a peer, if it is online: a direct lane when there is one, the one this device dialled first. */
  channelTo(peer: string): BlockChannel | undefined {
    for (const channels of [this.dialled, this.accepted, this.channels]) {
      const channel = channels.get(peer);
      if (channel && !channel.closed) return channel;
    }
    return undefined;
  }

  /** A remote file to read from (one per open FUSE handle: it tracks sequential access). */
  openFile(ref: RemoteFileRef): RemoteFile {
    return new RemoteFile(this.client, ref, { prefetch: this.prefetch });
  }

  /**
   * A content's bytes, read by content id from whichever of these devices are online when
   * asked (in this order); onVouches gets what the senders signed for them (see vouches.ts).
   */
  openContent(contentId: string, size: number, devices: readonly string[], onVouches?: (vouches: RangeVouch[]) => void): RemoteFile {
    return this.openFile({
      size,
      mtime: 0,
      contentId,
      onVouches,
      cacheKey: `content/${contentId}/${size}`,
      sources: () =>
        devices.flatMap((id) => {
          const channel = this.channelTo(id);
          return channel ? [{ kind: 'peer' as const, channel, target: { kind: 'content' as const, contentId } }] : [];
        }),
    });
  }

  get stats(): BlockServiceStats {
    return { client: this.client.stats, server: this.server.stats, cache: this.cache.stats };
  }

  async close(): Promise<void> {
    for (const channel of [...this.channels.values(), ...this.dialled.values(), ...this.accepted.values()]) channel.close();
    this.channels.clear();
    this.dialled.clear();
    this.accepted.clear();
    await this.cache.close();
    await this.server.close();
  }
}
