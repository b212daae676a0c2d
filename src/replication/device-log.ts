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
import type { Db } from '../vdfs/db/database.js';
import { dropQueuedThrough, indexSnapshot, queuedChanges } from '../vdfs/outbox.js';
import type { KeyPair } from './identity.js';
import { EntryStore } from '../vdfs/entries.js';
import { listLocations } from '../vdfs/locations.js';
import { MAX_LINK_TARGET_BYTES, decodeLogBlock, encodedOpBytes, encodeLogBlock, type LogOp } from './log-messages.js';

const SENT_CONTENT_MAX = 100_000;

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

export class DeviceLog {
  /** Outbox seq up to which changes are in the log. */
  private appendedSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private pumping: Promise<number> | undefined;
  private closed = false;
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
   * before its log existed); an existing one tells from its last block how far it got.
   */
  async open(): Promise<void> {
    await this.core.ready();
    if (!this.core.writable) throw new Error('the device log is not writable: its key pair does not match');
    if (this.core.length === 0) {
      const { lastSeq, changes } = indexSnapshot(this.db, this.deviceId);
      const blocks = toBlocks(this.withLinks(changes, null).ops, null, lastSeq, this.opsPerBlock);
      // An empty index still gets a block: the log's first block marks the snapshot done.
      if (blocks.length === 0) blocks.push(encodeLogBlock({ lastSeq, ops: [] }));
      await this.core.append(blocks); // one append: all of the snapshot or none of it
      this.appendedSeq = lastSeq;
      log.info({ op: 'device-log', changes: changes.length, blocks: blocks.length }, 'device log started from a snapshot of the index');
    } else {
      const last = await this.core.get(this.core.length - 1);
      this.appendedSeq = decodeLogBlock(last!).lastSeq;
    }
    this.dropAppended();
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

  /** Drops the outbox rows the log holds. (Step two of pump.) */
  dropAppended(): void {
    dropQueuedThrough(this.db, this.appendedSeq);
  }

  /** Moves every queued change into the log; returns how many. */
  pump(): Promise<number> {
    // One pump at a time: a second caller waits for the running one, then runs its own.
    const run = async (): Promise<number> => {
      let total = 0;
      for (;;) {
        const n = await this.appendQueued();
        this.dropAppended();
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

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.pumping?.catch(() => undefined);
  }
}
