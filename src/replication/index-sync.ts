// Device-owned sync as the running node does it: the corestore in <library>/cores (only
// this process may open it), this device's log pumped from the outbox every few ms, and
// one mirror per peer whose log key the library knows. The swarm replicates `store`.
import path from 'node:path';
import Corestore from 'corestore';
import Hypercore from 'hypercore';
import { config } from '../config.js';
import { SdError } from '../errors.js';
import { log } from '../log.js';
import type { Library } from '../vdfs/library.js';
import { DeviceLog, openOwnLog, type LogSnapshot } from './device-log.js';
import { deviceKeys } from './identity.js';
import { Mirror, type MirrorOptions, type MirrorProgress } from './mirror.js';
import { Turns } from './turns.js';

export const CORES_DIR = 'cores';

export interface IndexSync {
  store: Corestore;
  ownLog: DeviceLog;
  mirrors: Map<string, Mirror>;
  /** Starts (or returns) the mirror of a peer device from its log key. */
  mirror(deviceId: string, logKey: Buffer, options?: MirrorOptions): Promise<Mirror>;
  close(): Promise<void>;
}

/**
 * RocksDB's write buffer for the logs (hypercore-storage's default: 64 MB). A new log's
 * snapshot writes ~43 bytes an entry: at a million entries the buffer filled to its
 * default and stayed resident (a mount's first start peaked 26 MB higher, settled 47 MB).
 */
const CORES_WRITE_BUFFER_BYTES = 8 * 1024 * 1024;

export interface IndexSyncOptions {
  pumpIntervalMs?: number;
  /** Called whenever a peer's changes were applied to its mirror. */
  onMirrored?: (deviceId: string) => void;
  /** Progress of applying a peer's log (a backfill shows a bar with it). */
  onProgress?: (deviceId: string, p: MirrorProgress) => void;
  /** This device's new log got its snapshot of the index (written after start, in the background). */
  onSnapshot?: (s: LogSnapshot) => void;
  /** A new log's snapshot waits for this (the start-up diff: both at once peak higher). */
  snapshotAfter?: Promise<unknown>;
}

export async function startIndexSync(library: Library, options: IndexSyncOptions = {}): Promise<IndexSync> {
  const store = new Corestore(Hypercore.defaultStorage(path.join(library.dir, CORES_DIR), { writeBufferSize: CORES_WRITE_BUFFER_BYTES }));
  const mirrors = new Map<string, Mirror>();
  // One set of turns for all of this node's mirrors (see Mirror.applyAvailable).
  const turns = new Turns(config.mirrorTurns);
  let ownLog: DeviceLog | undefined;
  const close = async () => {
    for (const m of mirrors.values()) m.stop();
    await ownLog?.close();
    await store.close();
  };
  try {
    ownLog = new DeviceLog(library.db, library.device.id, openOwnLog(store, deviceKeys(library.dir).log));
    ownLog.onSnapshot = options.onSnapshot;
    await ownLog.open({ background: true, after: options.snapshotAfter });
    ownLog.startPumping(options.pumpIntervalMs);
    const sync: IndexSync = {
      store,
      ownLog,
      mirrors,
      async mirror(deviceId, logKey, mirrorOptions) {
        let m = mirrors.get(deviceId);
        if (!m) {
          const { onMirrored, onProgress } = options;
          m = new Mirror(library.db, deviceId, store.get({ key: logKey, inflightRange: config.mirrorInflightBlocks }), {
            onApplied: onMirrored && (() => onMirrored(deviceId)),
            onProgress: onProgress && ((p) => onProgress(deviceId, p)),
            turns,
            ...mirrorOptions,
          });
          await m.open();
          mirrors.set(deviceId, m);
          m.follow();
        }
        return m;
      },
      close,
    };
    const known = library.db.prepare('SELECT device_id, log_key FROM device_logs').all() as Array<{ device_id: string; log_key: string }>;
    for (const k of known) await sync.mirror(k.device_id, Buffer.from(k.log_key, 'hex'));
    log.info({ op: 'index-sync', log: ownLog.key.toString('hex').slice(0, 16), length: ownLog.core.length, peers: known.length }, 'device log open');
    return sync;
  } catch (err) {
    await close().catch(() => undefined);
    // rocksdb's lock on the corestore: another process runs this device.
    if (err instanceof Error && /could not be locked/i.test(err.message)) {
      throw new SdError('LIBRARY_LOCKED', `the index log of ${library.dir} is in use by another running 'sd mount' of this library; stop that one first`);
    }
    throw err;
  }
}
