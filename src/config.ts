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
  /**
   * Seconds the kernel trusts a mount's attributes and names. Outside changes the watcher
   * sees are also pushed to the kernel at once (src/fuse/invalidate.ts), which makes a
   * longer timeout (sd mount --attr-timeout 60: second ls -lR 2-4x faster) mostly safe;
   * but files and folders held open through the mount while they change outside keep
   * their cached attributes for the whole timeout (the kernel can only be told about a
   * whole device folder, and it keeps what is in use), so the default stays short.
   */
  mountAttrTimeoutSeconds: 1,
  /**
   * Seconds after which opening a file asks for its size and mtime again, and keeps the
   * kernel page cache only when they are unchanged (libfuse auto_cache). Bounds stale
   * content from changes the watcher does not see; costs one request per open at most.
   */
  mountOpenRecheckSeconds: 1,
  /** How long a command waits for a locked library before giving up. */
  dbBusyTimeoutMs: 5000,
};

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
