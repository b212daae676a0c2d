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
  /** Seconds the kernel trusts a mount's attributes and names: outside changes show after this. */
  mountAttrTimeoutSeconds: 1,
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
  /** How often the swarm re-reads the paired devices (pairings and revocations by other processes). */
  peerRefreshMs: 1000,
  /** How often the swarm asks the DHT again for paired devices it is not connected to. */
  peerRejoinMs: 5000,
  /** How long stopping waits to unannounce from the DHT before it just closes (offline that takes ~9 s). */
  swarmStopGraceMs: 1500,
};

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
