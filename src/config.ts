// Every tunable of sdfs in one place, named after what it changes, with its default.
import os from 'node:os';
import path from 'node:path';

export const config = {
  /** Rows written per indexer transaction. */
  indexBatchSize: 1000,
  /** Files hashed per content-identification transaction. */
  contentBatchSize: 200,
  /** Files at or below this size are hashed whole for their content id. */
  contentWholeFileMax: 100 * 1024,
  contentHeaderBytes: 8 * 1024,
  contentFooterBytes: 8 * 1024,
  contentSampleBytes: 10 * 1024,
  contentSampleCount: 4,
  /** Quiet period after the last file system event before the watcher applies changes. */
  watchDebounceMs: 100,
  /** How often folders the kernel would not watch (inotify limits reached) are re-diffed instead. */
  watchPollMs: 2000,
  /**
   * The mount's index changes share one SQLite commit per this many ms (a commit costs
   * ~0.5 ms, a create's other work less). A crash loses at most this much of the index,
   * never file data; the watcher's start-up diff puts it back. 0: one commit per change.
   */
  mountIndexCommitMs: 10,
  /** How often a running mount hands memory its threads freed back to the system (malloc_trim). */
  mountTrimMemoryMs: 60_000,
  /**
   * Seconds the kernel trusts what sdfs cannot invalidate exactly: the virtual folders
   * (.tags, .search, .guardian, .content) and other devices' trees.
   */
  mountAttrTimeoutSeconds: 1,
  /**
   * Seconds the kernel keeps the names, attributes and listings of local files: every
   * change the watcher or an action sees drops exactly what it touched (open files
   * included), so they can be kept long (`sd mount --attr-timeout` sets it).
   */
  mountCachedTimeoutSeconds: 60,
  /**
   * Files and folders the kernel may keep looked up through the mount (sd mount
   * --inode-budget; 0: no limit). Each costs the binding about 350 bytes (measured: 348 MB
   * for the million an ls -R of a million files leaves): past the budget, the ones looked up
   * longest ago that nothing uses are forgotten, down to three quarters of it. 100,000 keep
   * a mount of a million-file tree near 200 MB through an ls -R (200,000: 250–265 MB); a
   * tree walked again past the budget is looked up again (10 s for a million, not 0.4 s).
   */
  mountInodeBudget: 100_000,
  /** How often the mount logs the kernel inodes it holds (debug level; SD_INODE_STATS_MS). */
  mountInodeStatsMs: envMs('SD_INODE_STATS_MS', 10_000),
  /** How long a command waits for a locked library before giving up. */
  dbBusyTimeoutMs: 5000,
  /** How long `sd pair` words stay valid (SD_PAIR_TTL_MS overrides, for tests). */
  pairWordsTtlMs: envMs('SD_PAIR_TTL_MS', 5 * 60_000),
  /** How long `sd pair join` looks for the device showing the words before giving up. */
  pairJoinTimeoutMs: envMs('SD_PAIR_JOIN_TIMEOUT_MS', 20_000),
  /** How often `sd pair join` looks up the words' topic again while it found nobody. */
  pairLookupIntervalMs: 2000,
  /** A pairing connection that has not finished its handshake by then is closed (and another tried). */
  pairHandshakeTimeoutMs: 5000,
  /** How often a running node pings each connected device (round-trip time, presence). */
  peerPingIntervalMs: 2000,
  /** A device whose presence a running node has not confirmed for this long counts as offline. */
  peerOnlineStaleMs: 6000,
  /** A connection whose pings have gone unanswered this long is closed and dialled again. */
  peerDeadMs: 7000,
  /** How often the swarm re-reads the paired devices (pairings and revocations by other processes). */
  peerRefreshMs: 1000,
  /** The longest wait between dials of a paired device that is not connected (backs off 1, 2, 4 s up to this). */
  peerRejoinMs: 5000,
  /** How often queued changes to other devices' trees are looked at (and sent when the device is online). */
  remoteDeliveryTickMs: 1000,
  /** The wait before sending a change again that the device could not apply for now (busy, bytes changed in flight). */
  remoteRetryMs: 2000,
  /** How long a delivered change waits for the device's log to show it before the mount stops showing it as pending. */
  remoteMirrorWaitMs: 10_000,
  /** The device with the larger key dials too once no connection came for this long. */
  peerDialFallbackMs: 6000,
  /** A connection whose other side opens no channel within this is dropped (and dialled again). */
  peerOpenMs: 3000,
  /** A dial of a paired device still pending this long gets a fresh one beside it (at most peerDialsMax at once). */
  peerDialOverlapMs: 3000,
  peerDialsMax: 3,
  /** How often the swarm checks which paired devices are due to be dialled. */
  peerDialTickMs: 250,
  /**
   * Text kept per file by content extraction (UTF-8 bytes; the rest is cut): about 20 pages.
   * The text is searched and carried in the device log to every peer, so it is capped.
   */
  extractTextBytes: 64 * 1024,
  /** One file's extraction taking longer than this fails (a malformed document), and the next goes on. */
  extractTimeoutMs: 20_000,
  /** Extracts written per transaction. */
  extractBatchSize: 32,
  /** How often the running node looks for contents not extracted yet (new files were indexed). */
  extractIntervalMs: 3000,
  /** Index changes per block of a device's log (a block is one signed hypercore entry). */
  logOpsPerBlock: 1000,
  /** How often the running node looks for index changes other processes queued for its log. */
  logPumpIntervalMs: 50,
  /** Blocks of a peer's log fetched and applied per mirror transaction. */
  mirrorBlocksPerBatch: 32,
  /**
   * Mirrors of one node that fetch and apply at once (the others wait their turn): what they
   * hold in memory is bounded by this, not by the number of peers. The apply is one thread's
   * work either way; ten devices backfilling nine peers each at once peaked 200–233 MB a
   * mount with every mirror at it together.
   */
  mirrorTurns: 2,
  /** Batches a mirror fetches and applies in one turn before the next mirror in line takes it. */
  mirrorBatchesPerTurn: 8,
  /** How long a mirror waits for blocks of a peer's log before it gives its turn back (the peer went away). */
  mirrorBlockTimeoutMs: 15_000,
  /** When a mirror whose blocks did not come asks again. */
  mirrorRetryMs: 2_000,
  /**
   * Blocks of a peer's log requested at once from one peer, fewest and most (hypercore
   * scales between them with the connection's round trip; its own default is 16 to 512).
   * A block holds up to logOpsPerBlock changes, ~43 KB at a thousand: on a loaded machine
   * the round trip grows, and 512 blocks in flight from each of two peers held 40 MB of
   * buffers in a mount backfilling both.
   */
  mirrorInflightBlocks: [16, 32] as [number, number],
  /**
   * How long a change that must not be lost waits before it is tried again when another
   * process held the library past the busy timeout (a mirror's batch, a new file's copy job).
   */
  libraryBusyRetryMs: 1000,
  /** Bytes per block of a remote file: the unit fetched, hashed, cached and verified. */
  blockSize: 1024 * 1024,
  /** Largest block a peer may ask for or send; anything bigger closes the connection. */
  blockMaxBytes: 4 * 1024 * 1024,
  /** Blocks fetched ahead of a sequential reader (and, prefetching, blocks in flight at once). */
  readAheadBlocks: 8,
  /**
   * What of a remote file is fetched in the background once it is read sequentially:
   * 'whole' (from where it is read to the end, then the rest, when it fits the cache),
   * 'seek' (from where it is read to the end), 'off' (readAheadBlocks ahead). sd mount --prefetch.
   */
  prefetch: 'whole' as 'whole' | 'seek' | 'off',
  /** Size limit of the disk block cache (<library>/cache/files); least recently used blocks go first. */
  cacheMaxBytes: 2 * 1024 * 1024 * 1024,
  /**
   * A remote read with no answer from any copy within this time fails with EIO. The copies
   * share it: each is given an equal part of what is left before the next is asked
   * (SD_REMOTE_READ_TIMEOUT_MS overrides, for tests).
   */
  remoteReadTimeoutMs: envMs('SD_REMOTE_READ_TIMEOUT_MS', 5000),
  /**
   * How long an open remote file answers reads of a block that just failed with the same
   * error (the kernel retries a failed read page by page at once) before fetching it anew.
   */
  failedBlockHoldMs: 1000,
  /** Block reads a peer may have running at once on one connection. */
  blockServerConcurrency: 8,
  /** Requests a peer may have queued on one connection beyond those running; more are answered BUSY. */
  blockServerQueueMax: 256,
  /** Open files a block server keeps (closed when unused for blockServerFdIdleMs). */
  blockServerOpenFiles: 64,
  blockServerFdIdleMs: 30_000,
  /** How long stopping waits to unannounce from the DHT before it just closes (offline that takes ~9 s). */
  swarmStopGraceMs: 1500,
  /**
   * The direct lane (TCP + TLS 1.3 between paired devices that reach each other) carries file
   * blocks; SD_LANE=off keeps them on the swarm connection. SD_LANE_PORT fixes its port
   * (default: any free one, told to peers over the swarm).
   */
  laneEnabled: process.env.SD_LANE !== 'off',
  lanePort: envPort('SD_LANE_PORT'),
  /** A direct connection's TLS handshake must finish within this. */
  laneHandshakeMs: 5000,
  /** How often a running mount looks whether its scheduled scrub is due (SD_SCRUB_CHECK_MS for tests). */
  scrubCheckMs: envMs('SD_SCRUB_CHECK_MS', 60_000),
  /** Read speed of a scheduled scrub when the schedule names none (bytes/s): low, so the disk stays usable. */
  scrubDefaultRate: 25_000_000,
  /**
   * How often a running mount looks at the files it kept in .sd-trash as last copies, and
   * deletes those whose content is back up to policy (SD_TRASH_SWEEP_MS for tests).
   */
  guardedTrashSweepMs: envMs('SD_TRASH_SWEEP_MS', 60_000),
  /**
   * How often a running mount brings the guardian's copy summary up to date (what status and
   * at-risk read), a few thousand contents at a time so the mount's thread is never held long.
   */
  guardianSummaryMs: 2000,
  guardianSummaryChunk: 2000,
  /**
   * A file written more recently than this is a working file (an editor's swap file, a
   * build's output): the mount unlinks it even when it is the last copy, rather than
   * filling .sd-trash with them (SD_GUARD_MIN_AGE_MS for tests).
   */
  guardMinAgeMs: envMs('SD_GUARD_MIN_AGE_MS', 10 * 60_000),
};

function envPort(name: string): number {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 && value < 65536 ? value : 0;
}

/** A duration from the environment (for tests), else the default. */
function envMs(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

/** Names never indexed, wherever they appear: VCS data, dependency and build caches, OS litter. */
export const DEFAULT_IGNORED_NAMES: readonly string[] = [
  '.git', '.hg', '.svn', 'node_modules', 'bower_components', '__pycache__', '.venv', '.tox',
  '.gradle', '.next', '.nuxt', '.parcel-cache', '.cache', '.DS_Store', 'Thumbs.db',
  'desktop.ini', '.Spotlight-V100', '.Trashes', '.fseventsd', '.TemporaryItems', 'lost+found',
  // sdfs's own folders inside a location: deleted files (sd rm) and copies in flight.
  '.sd-trash', '.sd-staging',
];

/** The library directory: --library, else SD_LIBRARY, else ~/.local/share/sd. */
export function resolveLibraryDir(flag?: string): string {
  const dir = flag ?? process.env.SD_LIBRARY ?? path.join(os.homedir(), '.local', 'share', 'sd');
  return path.resolve(dir);
}
