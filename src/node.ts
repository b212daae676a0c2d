// One running device: its library, the watcher that keeps the index true, and the FUSE
// mount of /sd. Started by `sd mount`; stop() unmounts and closes everything in order.
import fs from 'node:fs';
import path from 'node:path';
import { config } from './config.js';
import { SdError } from './errors.js';
import { MountOps, type FsWriter } from './fuse/ops.js';
import { isMounted, mountFuse, type Mounted } from './fuse/mount.js';
import { log } from './log.js';
import { startIndexSync, type IndexSync } from './replication/index-sync.js';
import type { MirrorProgress } from './replication/mirror.js';
import { ActionManager } from './vdfs/actions/action-manager.js';
import type { FsOp } from './vdfs/actions/fs-op.js';
import { openLibrary, type Library } from './vdfs/library.js';
import { listLocations, locationOfPath, type Location } from './vdfs/locations.js';
import { Namespace } from './vdfs/namespace.js';
import { startWatcher, type Watcher } from './vdfs/watcher.js';

export interface NodeOptions {
  libraryDir: string;
  mountpoint: string;
  /** Serve the tree without accepting changes (every write answers EROFS). */
  readOnly?: boolean;
  /** Seconds the kernel trusts attributes and names (config.mountAttrTimeoutSeconds). */
  attrTimeout?: number;
  /** Progress of applying a peer's index log (blocks applied of its length). */
  onSyncProgress?: (deviceId: string, p: MirrorProgress) => void;
}

export interface RunningNode {
  library: Library;
  mountpoint: string;
  /** This device's index log and its peers' mirrors (the swarm replicates sync.store). */
  sync: IndexSync;
  /** Resolves when the mount went away from outside (sd umount, fusermount -u). */
  ended: Promise<void>;
  stop(): Promise<void>;
}

/** Answers every change with EROFS: for `sd mount --read-only`. */
export const readOnlyWriter: FsWriter = {
  applyFsOp(location: Location, op: FsOp) {
    throw new SdError('READ_ONLY', `the mount is read-only; cannot ${op.op} in ${location.name}`);
  },
};

/** The folders (relative to the location root) whose listing an operation changes. */
function foldersOf(op: FsOp): string[] {
  const paths = 'from' in op ? [op.from, op.to] : [op.path];
  return paths.flatMap((p) => [p, p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '']);
}

/** A mount inside a location would be walked by its own indexer and watcher. */
function refuseMountInsideLocation(library: Library, mountpoint: string): void {
  let real = path.resolve(mountpoint);
  try {
    real = fs.realpathSync(real);
  } catch {
    // Not there yet: it is created inside its parent, which is what counts.
    try {
      real = path.join(fs.realpathSync(path.dirname(real)), path.basename(real));
    } catch {
      /* the parent is missing too; prepareMountpoint creates both */
    }
  }
  const location = locationOfPath(library.db, library.device.id, real);
  if (location) {
    throw new SdError('LOCATION_OVERLAP', `mount point ${mountpoint} is inside the location '${location.name}' (${location.rootPath}); mount outside your locations`);
  }
}

export async function startNode(options: NodeOptions): Promise<RunningNode> {
  const library = openLibrary(options.libraryDir);
  try {
    refuseMountInsideLocation(library, options.mountpoint);
  } catch (err) {
    library.close();
    throw err;
  }
  const actions = new ActionManager(library, { actor: 'fuse' });
  let watcher: Watcher | undefined;
  let mounted: Mounted | undefined;
  let mountOps: MountOps | undefined;
  let sync: IndexSync | undefined;
  const stop = async () => {
    await mounted?.unmount();
    mountOps?.closeAll();
    // Running jobs checkpoint and stay queued; the next start resumes them.
    await actions.jobs.stop();
    await watcher?.close();
    // After the writers: their last changes still reach the log.
    await sync?.ownLog.pump().catch((e: unknown) => log.warn({ op: 'index-sync', err: String(e) }, 'last changes stay queued for the next start'));
    await sync?.close();
    library.close();
  };
  try {
    const ns = new Namespace(library.db);
    watcher = await startWatcher(library, listLocations(library.db, library.device.id), {
      onApplied: () => ns.invalidate(),
    });
    const running = watcher;
    const writer: FsWriter = options.readOnly
      ? readOnlyWriter
      : {
          // The action indexes its change at once; the watcher need not re-diff after each one.
          applyFsOp(location, op, actor) {
            actions.applyFsOp(location, op, actor);
            running.changedBySelf(location, foldersOf(op));
          },
        };
    mountOps = new MountOps(ns, library.device.id, writer, library.dir);
    const timeout = options.attrTimeout ?? config.mountAttrTimeoutSeconds;
    mounted = await mountFuse(options.mountpoint, mountOps.handlers(), { attrTimeout: timeout, entryTimeout: timeout });
    // After the mount point checks: a second mount of this library fails there, clearly.
    // A peer's new location shows under /sd/<peer>/ at once, not after the cache's second.
    sync = await startIndexSync(library, { onMirrored: () => ns.invalidate(), onProgress: options.onSyncProgress });
    const resumed = actions.jobs.resumeInterrupted();
    if (resumed.length) log.info({ op: 'jobs', resumed }, 'resuming jobs a stopped process left');
  } catch (err) {
    await stop().catch((e: unknown) => log.warn({ op: 'node', err: String(e) }, 'cleanup after a failed start'));
    throw err;
  }
  log.info({ op: 'node', device: library.device.slug, mountpoint: options.mountpoint }, 'device running');
  let poll: NodeJS.Timeout | undefined;
  const ended = new Promise<void>((resolve) => {
    poll = setInterval(() => {
      if (!isMounted(options.mountpoint)) resolve();
    }, 1000);
    poll.unref();
  });
  const stopAll = async () => {
    clearInterval(poll);
    await stop();
  };
  return { library, mountpoint: options.mountpoint, sync: sync!, ended, stop: stopAll };
}
