// This device's index log: a hypercore signed with the device's log key pair, fed from
// index_outbox. Each block records the last outbox seq it holds, so a crash between an
// append and the outbox cleanup neither loses nor repeats a change.
import fs from 'node:fs';
import path from 'node:path';
import type Corestore from 'corestore';
import type Hypercore from 'hypercore';
import { config } from '../config.js';
import { log } from '../log.js';
import { ContentStore } from '../vdfs/content/store.js';
import { openReader, type Db } from '../vdfs/db/database.js';
import { queueExtractsOf } from '../vdfs/content/extracts.js';
import { dropQueuedThrough, outboxLastSeq, queuedChanges, snapshotChanges, type IndexChange } from '../vdfs/outbox.js';
import type { KeyPair } from './identity.js';
import { EntryStore } from '../vdfs/entries.js';
import { listLocations } from '../vdfs/locations.js';
import { MAX_LINK_TARGET_BYTES, decodeLogBlock, encodedOpBytes, encodeLogBlock, type LogOp } from './log-messages.js';

const SENT_CONTENT_MAX = 100_000;
/**
 * Blocks of a snapshot appended at once (each of up to opsPerBlock changes). Few: the
 * changes of a batch live across the append's await, so V8 promotes them and a big batch
 * grows the old generation. At a million entries, 16 blocks a batch took the mount's peak
 * to 297 MB and left 222 MB settled; 2 blocks, 237 and 176 MB, in the same ~6 s.
 */
const SNAPSHOT_BLOCKS_PER_APPEND = 2;
/** Outbox rows dropped per turn of the event loop once the log holds them. */
const DROP_ROWS_PER_TURN = 20_000;

/** Whether a snapshot of the index was being written into a new log (and may be cut short). */
function snapshotStarted(db: Db): boolean {
  return db.prepare('SELECT 1 FROM device_log_snapshot').get() !== undefined;
}

/** The device's own log in a corestore: its key is the log key pair's public key. */
export function openOwnLog(store: Corestore, keyPair: KeyPair): Hypercore {
  // key + keyPair: a "compat" core whose key is the public key itself, so peers given
  // the log key at pairing open the same core.
  return store.get({ key: keyPair.publicKey, keyPair });
}

/**
 * A block is cut at this many bytes too: an extract carries up to its text cap, and a
 * thousand of them in one block would make a block of tens of MB for a peer to take whole.
 */
const BLOCK_MAX_BYTES = 1024 * 1024;

/** Cuts changes into blocks of at most `perBlock` ops and about BLOCK_MAX_BYTES, each carrying the seq it covers. */
export function toBlocks(ops: readonly LogOp[], seqs: readonly number[] | null, lastSeq: number, perBlock: number): Buffer[] {
  const blocks: Buffer[] = [];
  let start = 0;
  let bytes = 0;
  const cut = (end: number) => {
    // A block's lastSeq is the newest outbox row it holds (a snapshot: all of them).
    const seq = seqs ? seqs[end - 1]! : lastSeq;
    blocks.push(encodeLogBlock({ lastSeq: seq, ops: ops.slice(start, end) }));
    start = end;
    bytes = 0;
  };
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    bytes += encodedOpBytes(op);
    if (i + 1 - start >= perBlock || bytes >= BLOCK_MAX_BYTES) cut(i + 1);
  }
  if (start < ops.length) cut(ops.length);
  return blocks;
}

/** A new log's snapshot of the index, written. */
export interface LogSnapshot {
  changes: number;
  blocks: number;
  seconds: number;
}

export class DeviceLog {
  /** Outbox seq up to which changes are in the log. */
  private appendedSeq = 0;
  /** Outbox seq up to which the rows in the log are dropped (seqs are never reused). */
  private droppedSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private pumping: Promise<number> | undefined;
  private closed = false;
  /** Told when the snapshot that starts a new log is written (sd mount says so). */
  onSnapshot?: (s: LogSnapshot) => void;
  /** The snapshot that starts the log is written (see writeSnapshot). */
  private snapshotDone = true;
  private interrupted = false;
  /** Settles when a background snapshot may start (open's `after`), or at close or interrupt. */
  private snapshotGate: Promise<unknown> = Promise.resolve();
  private releaseGate: (() => void) | undefined;
  private readonly contents: ContentStore;
  /** Made the first time a symlink is logged (its path is looked up). */
  private entries: EntryStore | undefined;
  /** Content ids the log holds already (recent ones: peers ignore a repeat anyway). */
  private sentContent = new Set<string>();

  private rememberSent(contentId: string): void {
    if (this.sentContent.size >= SENT_CONTENT_MAX) this.sentContent = new Set();
    this.sentContent.add(contentId);
  }

  constructor(private readonly db: Db, private readonly deviceId: string, readonly core: Hypercore, private readonly opsPerBlock = config.logOpsPerBlock) {
    this.contents = new ContentStore(db);
  }

  get key(): Buffer {
    return this.core.key!;
  }

  /**
   * Opens the log: a new one starts with a snapshot of the whole index (a library indexed
   * before its log existed), and so does one whose snapshot a stopped process left half
   * written; an existing one tells from its last block how far it got. With `background`,
   * the snapshot is written by the pump (the mount comes up meanwhile: at a million
   * entries it takes seconds), once `after` settles if given; without, before this returns.
   */
  async open(options: { background?: boolean; after?: Promise<unknown> } = {}): Promise<void> {
    await this.core.ready();
    if (!this.core.writable) throw new Error('the device log is not writable: its key pair does not match');
    if (this.core.length === 0 || snapshotStarted(this.db)) {
      this.snapshotDone = false;
      if (options.background && options.after) {
        const released = new Promise<void>((resolve) => (this.releaseGate = resolve));
        this.snapshotGate = Promise.race([options.after.catch(() => undefined), released]);
      }
      if (options.background) void this.pump().catch((err: unknown) => log.warn({ op: 'device-log', err: String(err) }, 'the snapshot of the index is not in the device log yet; retrying'));
      else await this.pump();
      return;
    }
    const last = await this.core.get(this.core.length - 1);
    this.appendedSeq = decodeLogBlock(last!).lastSeq;
    await this.dropAppended();
  }

  /** Whether the log holds the whole index yet (a new log's snapshot is written). */
  get ready(): boolean {
    return this.snapshotDone;
  }

  /**
   * Writes the snapshot that starts the log, a few blocks per append, reading the index on
   * a connection of its own inside one read transaction: a consistent picture that never
   * sits whole in memory, while this process goes on writing the index. The snapshot
   * covers the queued changes up to the seq it read; later ones follow it in the log.
   * A snapshot cut short (a stop, a crash) is marked in the library and written again
   * whole at the next start; peers take the repeated changes as no-ops.
   */
  private async writeSnapshot(): Promise<void> {
    const started = performance.now();
    this.db.prepare('INSERT OR REPLACE INTO device_log_snapshot (id, started_at) VALUES (1, ?)').run(Date.now());
    const reader = openReader(this.db.name);
    const changes = snapshotChanges(reader, this.deviceId);
    let count = 0;
    let blocks = 0;
    try {
      reader.exec('BEGIN');
      const lastSeq = outboxLastSeq(reader);
      // Their seqs come after lastSeq: the extracts of the picture follow it in the log.
      queueExtractsOf(this.db, this.deviceId);
      let ops: IndexChange[] = [];
      const flush = async () => {
        const cut = toBlocks(this.withLinks(ops, null).ops, null, lastSeq, this.opsPerBlock);
        // An empty index still gets a block: the log is never left empty.
        if (cut.length === 0 && this.core.length === 0) cut.push(encodeLogBlock({ lastSeq, ops: [] }));
        if (cut.length > 0) await this.core.append(cut);
        blocks += cut.length;
        count += ops.length;
        ops = [];
      };
      for (const change of changes) {
        ops.push(change);
        if (ops.length < this.opsPerBlock * SNAPSHOT_BLOCKS_PER_APPEND) continue;
        await flush();
        if (this.closed || this.interrupted) return log.info({ op: 'device-log', changes: count }, 'the snapshot of the index stopped midway; the next start writes it again');
      }
      await flush();
      reader.exec('COMMIT');
      this.db.prepare('DELETE FROM device_log_snapshot').run();
      this.appendedSeq = lastSeq;
      this.snapshotDone = true;
      const written = { changes: count, blocks, seconds: Math.round(performance.now() - started) / 1000 };
      log.info({ op: 'device-log', ...written }, 'device log started from a snapshot of the index');
      this.onSnapshot?.(written);
    } finally {
      changes.return(undefined);
      reader.close();
    }
  }
  /** Appends the queued changes not yet in the log; returns how many. (Step one of pump.) */
  async appendQueued(maxBlocks = 16): Promise<number> {
    const queued = queuedChanges(this.db, this.appendedSeq, this.opsPerBlock * maxBlocks);
    if (queued.length === 0) return 0;
    const ops: LogOp[] = [];
    const seqs: number[] = [];
    for (const q of queued) {
      // An entry's content identity goes just before it (or before its full hash), the
      // first time the log meets it (the indexer does not queue identities: one outbox row
      // less per file identified).
      const cid = q.change.op === 'entry' ? q.change.contentId : q.change.op === 'fullHash' ? q.change.contentId : null;
      if (cid !== null && !this.sentContent.has(cid)) {
        const identity = this.contents.identity(cid);
        if (identity) {
          ops.push({ op: 'content', contentId: cid, size: identity.size, sampledHash: identity.sampledHash });
          seqs.push(q.seq - 1 > this.appendedSeq ? q.seq - 1 : this.appendedSeq);
        }
        this.rememberSent(cid);
      }
      ops.push(q.change);
      seqs.push(q.seq);
    }
    const linked = this.withLinks(ops, seqs);
    await this.core.append(toBlocks(linked.ops, linked.seqs, 0, this.opsPerBlock));
    this.appendedSeq = seqs[seqs.length - 1]!;
    return queued.length;
  }

  /**
   * Puts each symlink's target (read now; the index keeps none) right after its entry, with
   * that entry's seq. A link gone or changed by now is fine: a later change says so.
   */
  private withLinks(ops: readonly LogOp[], seqs: readonly number[] | null): { ops: LogOp[]; seqs: number[] | null } {
    if (!ops.some((o) => o.op === 'entry' && o.kind === 'symlink')) return { ops: [...ops], seqs: seqs && [...seqs] };
    const roots = new Map(listLocations(this.db, this.deviceId).map((l) => [l.id, l.rootPath]));
    const entries = (this.entries ??= new EntryStore(this.db));
    const out: LogOp[] = [];
    const outSeqs: number[] = [];
    ops.forEach((o, i) => {
      out.push(o);
      if (seqs) outSeqs.push(seqs[i]!);
      if (o.op !== 'entry' || o.kind !== 'symlink') return;
      const root = roots.get(o.locationId);
      const rel = root === undefined ? undefined : entries.relativePath(o.id);
      let target: string | undefined;
      try {
        target = rel === undefined ? undefined : fs.readlinkSync(path.join(root!, ...rel.split('/')));
      } catch {
        target = undefined;
      }
      if (target === undefined || Buffer.byteLength(target) > MAX_LINK_TARGET_BYTES) return;
      out.push({ op: 'link', id: o.id, target });
      if (seqs) outSeqs.push(seqs[i]!);
    });
    return { ops: out, seqs: seqs && outSeqs };
  }

  /**
   * Drops the outbox rows the log holds, a slice per turn. (Step two of pump.) Only when the
   * log took some since: a DELETE takes the write lock even when it matches nothing, and every
   * pump (each 50 ms) waited for it whenever another process held the library, and held up
   * the whole mount with it (FUSE calls too) until that process let go.
   */
  async dropAppended(): Promise<void> {
    const through = this.appendedSeq;
    if (through <= this.droppedSeq) return;
    while (dropQueuedThrough(this.db, through, DROP_ROWS_PER_TURN) === DROP_ROWS_PER_TURN) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.droppedSeq = through;
  }

  /** Moves every queued change into the log; returns how many. */
  pump(): Promise<number> {
    // One pump at a time: a second caller waits for the running one, then runs its own.
    const run = async (): Promise<number> => {
      if (!this.snapshotDone) await this.snapshotGate;
      if (!this.snapshotDone && !this.closed && !this.interrupted) await this.writeSnapshot();
      // Nothing queued goes before the snapshot: its seqs are only known once it is written.
      if (!this.snapshotDone) return 0;
      let total = 0;
      for (;;) {
        const n = await this.appendQueued();
        await this.dropAppended();
        total += n;
        if (n === 0 || this.closed) return total;
      }
    };
    const next = (this.pumping ?? Promise.resolve(0)).then(run, run);
    this.pumping = next;
    return next;
  }

  /** Pumps every intervalMs: other processes (sd index, job runners) queue changes too. */
  startPumping(intervalMs = config.logPumpIntervalMs): void {
    const tick = () => {
      this.pump().catch((err: unknown) => log.warn({ op: 'device-log', err: String(err) }, 'could not append index changes to the device log; retrying'))
        .finally(() => {
          if (!this.closed) this.timer = setTimeout(tick, intervalMs);
        });
    };
    this.timer = setTimeout(tick, intervalMs);
  }

  /** A snapshot being written stops at its next append (a stop, when its end would take long). */
  interruptSnapshot(): void {
    this.interrupted = true;
    this.releaseGate?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.releaseGate?.();
    clearTimeout(this.timer);
    await this.pumping?.catch(() => undefined);
  }
}
