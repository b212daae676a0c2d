// One running device: its library, the watcher that keeps the index true, and the FUSE
// mount of /sd. Started by `sd mount`; stop() unmounts and closes everything in order.
import type { PrefetchMode } from './replication/remote-file.js';
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { config } from './config.js';
import { SdError } from './errors.js';
import { MountOps, type FsWriter } from './fuse/ops.js';
import type { RemoteFiles } from './fuse/remote.js';
import { isMounted, mountFuse, type Mounted } from './fuse/mount.js';
import { CONTENT_DIR } from './fuse/tree.js';
import { measureLocalSpace } from './guardian/space.js';
import { log } from './log.js';
import { trimMemory } from './syscalls.js';
import type { MirrorProgress } from './replication/mirror.js';
import { Replication } from './replication/replication.js';
import type { LogSnapshot } from './replication/device-log.js';
import type { BootstrapNode } from './replication/swarm.js';
import { ActionManager } from './vdfs/actions/action-manager.js';
import { sweepGuardedTrash } from './guardian/last-copy.js';
import { CopySummary } from './guardian/copy-summary.js';
import { scrubDue } from './guardian/schedule.js';
import type { FsOp } from './vdfs/actions/fs-op.js';
import { openLibrary, type Library } from './vdfs/library.js';
import { listLocations, locationOfPath, type Location } from './vdfs/locations.js';
import { Namespace } from './vdfs/namespace.js';
import { RemoteChanges } from './vdfs/remote-changes.js';
import { startWatcher, type LocationDiff, type Watcher } from './vdfs/watcher.js';
import { BackgroundExtraction } from './vdfs/indexer/extract-background.js';

export interface NodeOptions {
  libraryDir: string;
  mountpoint: string;
  /** Serve the tree without accepting changes (every write answers EROFS). */
  readOnly?: boolean;
  /** Seconds the kernel trusts attributes and names (config.mountAttrTimeoutSeconds). */
  attrTimeout?: number;
  /** Kernel inodes kept before the least recently looked-up are forgotten (config.mountInodeBudget; 0: no limit). */
  inodeBudget?: number;
  /** DHT bootstrap nodes; undefined: the public DHT (the swarm starts with the first pairing). */
  bootstrap?: BootstrapNode[];
  /** Byte limit of the disk cache of other devices' file blocks (config.cacheMaxBytes). */
  cacheMaxBytes?: number;
  /** Background fetch of other devices' files read sequentially (config.prefetch). */
  prefetch?: PrefetchMode;
  /** Something the user should know and can fix (the inotify watch limit reached). */
  onWarning?: (message: string) => void;
  /** Progress of applying a peer's index log (blocks applied of its length). */
  onSyncProgress?: (deviceId: string, p: MirrorProgress) => void;
  /** What the node does after the mount is up: each location compared with the disk, a new log's snapshot written. */
  onStartup?: (event: StartupEvent) => void;
}

/** Start-up work done in the background, once the mount serves. */
export type StartupEvent =
  | ({ kind: 'diffed' } & LocationDiff)
  | ({ kind: 'log-snapshot' } & LogSnapshot)
  /** Every location is watched and compared with the disk. */
  | { kind: 'up-to-date'; seconds: number }
  /** New files a stopped mount left pending in peers' trees: `recovered` queued to send, `withdrawn` taken back (nothing to send). */
  | { kind: 'pending-recovered'; recovered: number; withdrawn: Array<{ path: string; reason: string }> };

export interface RunningNode {
  library: Library;
  mountpoint: string;
  replication: Replication;
  /** Resolves when every location is watched and compared with the disk (the mount serves before). */
  ready: Promise<void>;
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

/**
 * The pending new files a stopped mount left in peers' trees: committed, queued again or
 * taken back (see RemoteChanges.recover), in the background (another process may hold the
 * library); one log line says how many.
 */
function recoverPendingFiles(mountOps: MountOps, mounted: Mounted, onStartup: NodeOptions['onStartup']): void {
  mountOps.recoverPending().then(
    (done) => {
      if (!done) return;
      const { committed, requeued, withdrawn } = done;
      const recovered = committed.length + requeued.length;
      const line = { op: 'recover-pending', recovered, committed: committed.length, requeued: requeued.length, withdrawn: withdrawn.length };
      if (recovered + withdrawn.length === 0) return log.debug(line, 'no pending files left by a stopped mount');
      log.info({ ...line, files: [...committed, ...requeued].map((c) => c.path) }, `${recovered} pending file${recovered === 1 ? '' : 's'} left by a stopped mount recovered (their copy jobs queued)`);
      for (const w of withdrawn) log.warn({ op: 'recover-pending', path: w.path, reason: w.reason }, 'a pending file left by a stopped mount cannot be sent: taken back');
      // The kernel may have listed those names already (the mount served before this ran).
      const slugs = [...new Set(withdrawn.flatMap((w) => (w.device ? [w.device] : [])))];
      if (slugs.length) mounted.invalidate(slugs);
      onStartup?.({ kind: 'pending-recovered', recovered, withdrawn });
    },
    (err: unknown) => log.warn({ op: 'recover-pending', err: String(err) }, 'pending files left by a stopped mount not recovered; the next start tries again'),
  );
}

/** KiB of SQLite page cache on the mount's main connection (see startNode). */
const MOUNT_DB_CACHE_KIB = 16_000;

let fullGc: (() => void) | undefined;

/**
 * After start-up work (a worker's diff, a log snapshot streamed): the garbage it left is
 * collected now (V8 alone waits until the heap grows again, and an idle mount never gets
 * there), and the heap freed goes back to the system rather than staying resident in
 * malloc's arenas. At a million entries the mount settled at 101 MB after the start-up
 * diff, not 145 MB.
 */
function releaseFreedMemory(after: string): void {
  const before = process.memoryUsage.rss();
  try {
    if (!fullGc) {
      v8.setFlagsFromString('--expose-gc');
      fullGc = vm.runInNewContext('gc') as () => void;
    }
    fullGc();
    trimMemory();
  } catch (err) {
    return log.debug({ op: 'memory', err: String(err) }, 'freed memory not given back');
  }
  const m = process.memoryUsage();
  log.debug({ op: 'memory', after, rssBefore: before, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers }, 'freed memory given back');
}

/**
 * How far V8 lets the old generation grow past what the last full collection kept alive,
 * in percent (its own factor is up to 4×). A running node keeps ~20 MB alive and makes
 * garbage steadily (each folder the watcher re-reads, each batch of a peer's log), and
 * with V8's factor its heap swung between ~20 and ~70 MB before each full collection:
 * 50 MB of resident memory that held nothing. At 1.5× a mount with two peers backfilling
 * peaked at 176–181 MB rather than 209–215 MB, in the same time. Set at run time (V8 reads
 * it at every full collection), unlike the young generation's size (see bin/sd).
 */
const HEAP_GROWING_PERCENT = 50;

export async function startNode(options: NodeOptions): Promise<RunningNode> {
  const startedAt = performance.now();
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  const library = openLibrary(options.libraryDir);
  // The mount's page cache, smaller than a command's 32 MB: its reads are a folder or a
  // file at a time, and what fills the cache is a backfill's inserts, which it keeps
  // resident for the life of the mount.
  library.db.pragma(`cache_size = -${MOUNT_DB_CACHE_KIB}`);
  try {
    refuseMountInsideLocation(library, options.mountpoint);
  } catch (err) {
    library.close();
    throw err;
  }
  const actions = new ActionManager(library, { actor: 'fuse', groupCommitMs: config.mountIndexCommitMs });
  let watcher: Watcher | undefined;
  let mounted: Mounted | undefined;
  let mountOps: MountOps | undefined;
  let replication: Replication | undefined;
  const extraction = new BackgroundExtraction(library);
  const stop = async () => {
    await mounted?.unmount();
    mountOps?.closeAll();
    // Running jobs checkpoint and stay queued; the next start resumes them.
    await actions.jobs.stop();
    await watcher?.close();
    await extraction.stop();
    // After the writers: their last changes still reach the log.
    await replication?.stop().catch((e: unknown) => log.warn({ op: 'replication', err: String(e) }, 'stopping replication'));
    library.close();
  };
  try {
    const ns = new Namespace(library.db);
    watcher = await startWatcher(library, listLocations(library.db, library.device.id), {
      onApplied: (summary, { location, dirs }) => {
        ns.invalidate();
        // The kernel caches names and attributes: tell it to drop what changed when the
        // watcher saw the tree change outside the mount (or an action of this process
        // changed it). Changes made through the mount need nothing: the kernel made them.
        // Each re-read folder is compared with what the kernel holds (a chmod is no index
        // change but still one the kernel must see); a whole location re-read (start-up,
        // its root came back) drops the device folder whole.
        const c = summary.counts;
        const slug = library.device.slug;
        if (dirs !== 'all') mounted?.invalidateFolders([...dirs].map((rel) => ({ mountPath: `/${slug}/${location.name}${rel ? `/${rel}` : ''}`, realPath: rel ? path.join(location.rootPath, rel) : location.rootPath })));
        if (c.new + c.modified + c.moved + c.deleted > 0) mounted?.invalidate(dirs === 'all' ? [slug, CONTENT_DIR] : [CONTENT_DIR]);
        // New contents: what their bytes say, read now rather than at the next tick.
        if (c.identified > 0) void extraction.pass();
      },
      onWarning: options.onWarning,
      onDiffed: (diff) => options.onStartup?.({ kind: 'diffed', ...diff }),
    });
    const running = watcher;
    const writer: FsWriter = options.readOnly
      ? readOnlyWriter
      : {
          // The action indexes its change at once; the watcher need not re-diff after each one.
          applyFsOp(location, op, actor) {
            const result = actions.applyFsOp(location, op, actor);
            running.changedBySelf(location, foldersOf(op));
            return result;
          },
        };
    // Replication starts once mounted; until then a peer's file answers EIO. A second mount
    // of this library fails there: at the same mount point when mounting, elsewhere when
    // replication finds the index log locked (LIBRARY_LOCKED).
    const remoteFiles: RemoteFiles = {
      openRemote(device, location, rel, entry) {
        if (!replication) throw new SdError('IO', `replication is not running yet; ${device.name}'s files cannot be read`);
        return replication.openRemote(device, location, rel, entry);
      },
    };
    mountOps = new MountOps(ns, library.device.id, writer, library.dir, remoteFiles, options.readOnly ? undefined : new RemoteChanges(library));
    // Local files are kept long: every change to them is invalidated exactly.
    const short = config.mountAttrTimeoutSeconds;
    const timeout = options.attrTimeout ?? config.mountCachedTimeoutSeconds;
    mounted = await mountFuse(options.mountpoint, mountOps.handlers(), { attrTimeout: timeout, entryTimeout: timeout, shortTimeout: Math.min(short, timeout), readOnly: options.readOnly, inodeBudget: options.inodeBudget });
    const mountedNow = mounted;
    replication = await Replication.start(library, {
      bootstrap: options.bootstrap,
      cacheMaxBytes: options.cacheMaxBytes,
      prefetch: options.prefetch,
      onMirrorProgress: options.onSyncProgress,
      // A new log's snapshot (the first start after an index) is written once the start-up
      // diff is done: at a million entries the two at once took the mount to 237–247 MB,
      // one after the other 199–207 MB (and its "up to date" comes seconds sooner).
      logSnapshotAfter: running.ready,
      onLogSnapshot: (s) => {
        releaseFreedMemory('log-snapshot');
        options.onStartup?.({ kind: 'log-snapshot', ...s });
      },
      // Paired devices' changes to this device's tree run as actions here (refused while read-only).
      runner: options.readOnly ? undefined : { execute: (action, actor) => actions.execute(action, actor), applyFsOp: (location, op, actor) => writer.applyFsOp(location, op, actor) },
      // A peer's changes landed: its folder under the mount is stale in our caches and the kernel's.
      onMirrored: (deviceId) => {
        ns.invalidate();
        const slug = ns.devices().find((d) => d.id === deviceId)?.slug;
        if (slug) mountedNow.invalidate([slug]);
      },
    });
    // New files left pending in peers' trees by a stopped process (its handles are gone):
    // sent now. Only here, where the index log's lock says no other mount runs this library.
    recoverPendingFiles(mountOps, mountedNow, options.onStartup);
    // Jobs that need bytes from paired devices (a repair) fetch them through replication.
    const live = replication;
    actions.jobs.contentFetcher = (want, dest) => live.fetchVerified(want, dest);
    extraction.start();
    const resumed = actions.jobs.resumeInterrupted();
    if (resumed.length) log.info({ op: 'jobs', resumed }, 'resuming jobs a stopped process left');
  } catch (err) {
    await stop().catch((e: unknown) => log.warn({ op: 'node', err: String(e) }, 'cleanup after a failed start'));
    throw err;
  }
  log.info({ op: 'node', device: library.device.slug, mountpoint: options.mountpoint }, 'device running');
  // (A job committed a moment ago may be about to run in the process that committed it.)
  const QUEUED_REPAIR_MIN_AGE_MS = 2000;
  // Repairs and fetches (sd guardian repair, protect) that need a paired device's bytes run here (the CLI cannot reach peers).
  const runQueuedRepairs = () => {
    for (const job of actions.jobs.list({ statuses: ['queued'], limit: 100 })) {
      if ((job.kind !== 'repair' && job.kind !== 'fetch') || actions.jobs.isRunningHere(job.id) || Date.now() - job.updatedAt < QUEUED_REPAIR_MIN_AGE_MS) continue;
      actions.jobs.run(job.id, { actor: 'guardian' }).catch((err: unknown) => log.warn({ op: job.kind, job: job.id, err: String(err) }, `queued ${job.kind} not run`));
    }
  };
  // Free space of this device's locations, shared through the log (where protect puts copies).
  const measureSpace = () => {
    try {
      measureLocalSpace(library.db, library.device.id);
    } catch (err) {
      log.warn({ op: 'space', err: String(err) }, 'free space not measured');
    }
  };
  measureSpace();
  // The guardian's scheduled scrub (sd guardian schedule): a job like any other, run here.
  const scrubTimer = setInterval(() => {
    measureSpace();
    runQueuedRepairs();
    try {
      const due = scrubDue(library.db);
      if (!due) return;
      const id = actions.commit({ kind: 'scrub', input: { locations: [], rate: due.rate } }, 'guardian');
      log.info({ op: 'scrub', job: id, rate: due.rate }, 'scheduled scrub started');
      actions.jobs.run(id, { actor: 'guardian' }).catch((err: unknown) => log.warn({ op: 'scrub', job: id, err: String(err) }, 'scheduled scrub failed'));
    } catch (err) {
      log.warn({ op: 'scrub', err: String(err) }, 'scheduled scrub not started');
    }
  }, config.scrubCheckMs);
  scrubTimer.unref();
  // The last copies the mount kept in .sd-trash: deleted once their content is back up to policy.
  const trashSweepTimer = setInterval(() => {
    try {
      const swept = sweepGuardedTrash(library.db, library.device);
      if (swept.removed + swept.forgotten > 0) log.info({ op: 'trash-sweep', ...swept }, 'guarded trash swept');
    } catch (err) {
      log.warn({ op: 'trash-sweep', err: String(err) }, 'guarded trash not swept');
    }
  }, config.guardedTrashSweepMs);
  trashSweepTimer.unref();
  // The guardian's copy summary, brought up to date as files and peers' mirrors change, so a
  // status or at-risk query finds little to do (each chunk is one short transaction).
  const summary = new CopySummary(library.db);
  let summarizing = false;
  const summarize = () => {
    if (summarizing) return;
    try {
      if (summary.flush(config.guardianSummaryChunk) > 0) {
        summarizing = true;
        setImmediate(() => {
          summarizing = false;
          summarize();
        });
      }
    } catch (err) {
      log.warn({ op: 'guardian-summary', err: String(err) }, 'copy summary not brought up to date');
    }
  };
  const summaryTimer = setInterval(summarize, config.guardianSummaryMs);
  summaryTimer.unref();
  // What the kernel holds through the mount, for whoever reads the debug log (and tests).
  let budgetWarned = false;
  const inodeTimer = setInterval(() => {
    const inodes = mounted?.inodes();
    if (!inodes) return;
    log.debug({ op: 'inodes', ...inodes }, 'kernel inodes held through the mount');
    if (inodes.pruneUnsupported && !budgetWarned) {
      budgetWarned = true;
      log.warn({ op: 'inodes', held: inodes.held }, 'this kernel cannot be asked to forget inodes (FUSE_NOTIFY_PRUNE needs Linux 6.16): --inode-budget is not kept, and memory grows with the files looked up');
    }
  }, config.mountInodeStatsMs);
  inodeTimer.unref();
  // Memory freed by the threads (the FUSE threads', RocksDB's and libuv's malloc arenas) goes
  // back to the system now and then: malloc keeps it otherwise. After 15 minutes of the
  // watcher's work beside two peers, a mount gave back 11 MB of its 179 MB (2026-12-06).
  const trimTimer = setInterval(() => {
    try {
      trimMemory();
    } catch (err) {
      log.debug({ op: 'memory', err: String(err) }, 'freed memory not given back');
    }
  }, config.mountTrimMemoryMs);
  trimTimer.unref();
  let poll: NodeJS.Timeout | undefined;
  const ended = new Promise<void>((resolve) => {
    poll = setInterval(() => {
      if (!isMounted(options.mountpoint)) resolve();
    }, 1000);
    // Kept referenced: it holds the process while the node runs. The FUSE thread does not,
    // and a library with no locations has no watcher to (exit 13 with nothing pending).
  });
  const stopAll = async () => {
    clearInterval(poll);
    clearInterval(scrubTimer);
    clearInterval(trashSweepTimer);
    clearInterval(summaryTimer);
    clearInterval(inodeTimer);
    clearInterval(trimTimer);
    await stop();
  };
  const ready = watcher!.ready.then(
    () => {
      releaseFreedMemory('start-up diff');
      options.onStartup?.({ kind: 'up-to-date', seconds: Math.round(performance.now() - startedAt) / 1000 });
    },
    (err: unknown) => log.warn({ op: 'watch', err: String(err) }, 'the start-up diff did not finish; changes made while nothing watched show at the next start'),
  );
  return { library, mountpoint: options.mountpoint, replication: replication!, ready, ended, stop: stopAll };
}
