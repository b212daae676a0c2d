// This library's copy of a peer's index, kept by applying the peer's log in order. The
// watermark (device_logs.applied_length) moves in the same transaction as the changes of
// the blocks below it, so each block applies exactly once; closure and search rows are
// built here, never replicated.
import type Hypercore from 'hypercore';
import { config } from '../config.js';
import { SdError, isLibraryBusy } from '../errors.js';
import { log } from '../log.js';
import { CopyChecks } from '../vdfs/content/copy-checks.js';
import { GuardianSettings } from '../guardian/settings.js';
import { recordSpace } from '../guardian/space.js';
import { ContentStore } from '../vdfs/content/store.js';
import { ExtractStore } from '../vdfs/content/extracts.js';
import { localDevice } from '../vdfs/device.js';
import { MetaStore, validateMetaKey, validateMetaValue } from '../vdfs/metadata.js';
import { TagStore, validateTag } from '../vdfs/tags.js';
import type { Db } from '../vdfs/db/database.js';
import { whenLibraryFree } from '../vdfs/db/when-free.js';
import { deviceById, type Device } from '../vdfs/device.js';
import { EntryStore } from '../vdfs/entries.js';
import { locationByRemoteId, removeLocation, setLocationRoot, upsertMirroredLocation, type Location } from '../vdfs/locations.js';
import { decodeLogBlock, LogDecodeError, type LogOp } from './log-messages.js';
import type { Turns } from './turns.js';

export interface MirrorProgress {
  /** The peer's slug, for a progress line. */
  device: string;
  applied: number;
  length: number;
}

export interface MirrorOptions {
  /** Called after each applied batch (a backfill shows a progress bar with it). */
  onProgress?: (p: MirrorProgress) => void;
  /** Called after each applied batch, in the live phase too (caches of the tree go stale). */
  onApplied?: () => void;
  /** Called when the log cannot be applied; the mirror then stops where it was. */
  onError?: (err: SdError) => void;
  blocksPerBatch?: number;
  /** Turns shared by the node's mirrors: how many fetch and apply at once (see applyAvailable). */
  turns?: Turns;
}

/** Hypercore's answer to a get that waited past its timeout. */
function isTimeout(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'REQUEST_TIMEOUT';
}

/** A change the mirror cannot apply: the peer's log does not fit what it said before. */
class BadChange extends Error {}

export class Mirror {
  private readonly entries: EntryStore;
  private readonly contents: ContentStore;
  private readonly tags: TagStore;
  private readonly metas: MetaStore;
  private readonly checks: CopyChecks;
  private readonly settings: GuardianSettings;
  private readonly extracts: ExtractStore;
  private readonly device: Device;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Set once the log failed to apply; the mirror stays at its watermark. */
  failure: SdError | undefined;
  private readonly onAppend = () => this.schedule();
  // Read and written with every batch (prepared each time, they cost more than a small batch).
  private readonly appliedLength;
  private readonly setAppliedLength;

  constructor(private readonly db: Db, deviceId: string, readonly core: Hypercore, private readonly options: MirrorOptions = {}) {
    const device = deviceById(db, deviceId);
    if (!device) throw new SdError('NOT_FOUND', `device ${deviceId} is not paired with this library; pair it before mirroring its index`);
    if (device.isLocal) throw new SdError('INVALID', `device ${device.name} is this device; its index is not mirrored`);
    this.device = device;
    this.entries = new EntryStore(db);
    this.contents = new ContentStore(db);
    this.tags = new TagStore(db, localDevice(db)!.id);
    this.metas = new MetaStore(db, localDevice(db)!.id);
    this.checks = new CopyChecks(db);
    this.settings = new GuardianSettings(db, localDevice(db)!.id);
    this.extracts = new ExtractStore(db, localDevice(db)!.id);
    this.appliedLength = db.prepare('SELECT applied_length FROM device_logs WHERE device_id = ?').pluck();
    this.setAppliedLength = db.prepare('UPDATE device_logs SET applied_length = ? WHERE device_id = ?');
  }

  /** Blocks of the peer's log applied here. */
  get applied(): number {
    return (this.appliedLength.get(this.device.id) as number | undefined) ?? 0;
  }

  /** Registers the log (or checks it is the one registered) and applies what is there. */
  async open(): Promise<void> {
    await this.core.ready();
    const key = this.core.key!.toString('hex');
    const known = this.db.prepare('SELECT log_key FROM device_logs WHERE device_id = ?').pluck().get(this.device.id) as string | undefined;
    if (known === undefined) this.db.prepare('INSERT INTO device_logs (device_id, log_key, applied_length) VALUES (?, ?, 0)').run(this.device.id, key);
    else if (known !== key) throw new SdError('INVALID', `device ${this.device.name} already has index log ${known.slice(0, 16)}…, not ${key.slice(0, 16)}…; unpair and pair it again`);
  }

  /** Follows the log: applies every block as it arrives. */
  follow(): void {
    this.core.on('append', this.onAppend);
    this.schedule();
  }

  /**
   * Applies everything the log has now (after asking peers for its length), or at least
   * its first `length` blocks when given (they may still be on their way).
   */
  async catchUp(length = 0, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // Asks the peers for the log's length; with none online hypercore waits for one, so the deadline bounds it.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.core.update({ wait: true }).catch(() => false), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    if (this.core.length < length) await this.lengthReached(length, timeoutMs);
    const target = Math.max(length, this.core.length);
    for (;;) {
      this.schedule();
      // Once: a mirror whose blocks do not come runs again and again (tried again shortly).
      await this.running;
      if (this.failure) throw this.failure;
      if (this.applied >= target || this.stopped) return;
      // Blocks that did not come (the peer went away) end a turn: asked again until the deadline.
      if (Date.now() >= deadline) throw new SdError('IO', `the index log of device ${this.device.name} is applied to block ${this.applied} of ${target}; its blocks did not come within ${timeoutMs} ms: is the device online?`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(config.mirrorRetryMs, Math.max(0, deadline - Date.now()))));
    }
  }

  private lengthReached(length: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.core.length < length) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new SdError('IO', `the index log of device ${this.device.name} did not reach ${length} blocks in ${timeoutMs} ms (it has ${this.core.length}); is the device online?`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.core.off('append', check);
      };
      this.core.on('append', check);
      check();
    });
  }

  stop(): void {
    this.stopped = true;
    this.core.off('append', this.onAppend);
  }

  private schedule(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.applyAvailable()
      .catch((err: unknown) => {
        this.failure = err instanceof SdError ? err : new SdError('IO', `mirror of ${this.device.name}: ${String(err)}`);
        log.warn({ op: 'mirror', device: this.device.slug, err: this.failure.message }, 'peer index log not applied');
        this.options.onError?.(this.failure);
      })
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.failure && !this.stopped) {
          this.again = false;
          this.schedule();
        }
      });
  }

  /**
   * Applies what the log has, a turn at a time: with a turn (options.turns, shared by the
   * node's mirrors) it fetches and applies up to config.mirrorBatchesPerTurn batches, the next
   * batch fetched while one applies, then gives the turn to the next mirror in line. Blocks
   * a peer does not send within config.mirrorBlockTimeoutMs (it went away) give the turn
   * back too; the mirror tries again after config.mirrorRetryMs, or when the log grows. A
   * change of a mirror up to date (a batch or less to apply) needs no turn: it is listed at
   * once, not after the backfills in line.
   */
  private async applyAvailable(): Promise<void> {
    const perBatch = this.options.blocksPerBatch ?? config.mirrorBlocksPerBatch;
    while (this.applied < this.core.length && !this.stopped && !this.failure) {
      const turns = this.core.length - this.applied > perBatch ? this.options.turns : undefined;
      const giveBack = turns ? await turns.take() : () => undefined;
      try {
        if (this.stopped) return;
        if (!(await this.applyTurn())) return;
      } finally {
        giveBack();
      }
    }
  }

  /** One turn (see applyAvailable); false when the mirror should not go on now (stopped, or blocks did not come). */
  private async applyTurn(): Promise<boolean> {
    const perBatch = this.options.blocksPerBatch ?? config.mirrorBlocksPerBatch;
    const fetch = (start: number): Promise<Buffer[]> => {
      const end = Math.min(this.core.length, start + perBatch);
      const got = Promise.all(Array.from({ length: end - start }, (_, i) => this.core.get(start + i, { timeout: config.mirrorBlockTimeoutMs }) as Promise<Buffer>));
      got.catch(() => undefined); // a batch fetched ahead and never awaited (the turn ended) must not go unhandled
      return got;
    };
    let applied = this.applied;
    let next: Promise<Buffer[]> | undefined = fetch(applied);
    for (let batch = 0; next && !this.stopped && !this.failure; batch++) {
      let blocks: Buffer[];
      try {
        blocks = await next;
      } catch (err) {
        if (this.stopped) return false; // its gets cancelled as the store closes
        if (!isTimeout(err)) throw err;
        log.debug({ op: 'mirror', device: this.device.slug, block: applied }, 'blocks of the log did not come: tried again shortly');
        setTimeout(() => this.stopped || this.schedule(), config.mirrorRetryMs).unref();
        return false;
      }
      const end = applied + blocks.length;
      next = batch + 1 < config.mirrorBatchesPerTurn && end < this.core.length ? fetch(end) : undefined;
      if (!(await this.applyWhenFree(applied, blocks))) return false;
      applied = end;
      this.options.onProgress?.({ device: this.device.slug, applied, length: this.core.length });
      this.options.onApplied?.();
    }
    return true;
  }

  /**
   * Applies a batch, waiting out another process that holds the library past the busy
   * timeout: the batch is tried again until it applies, never given up on as a bad log.
   * False when the mirror stopped meanwhile.
   */
  private applyWhenFree(start: number, blocks: readonly Buffer[]): Promise<boolean> {
    return whenLibraryFree({ op: 'mirror', device: this.device.slug, block: start }, () => this.applyBatch(start, blocks), () => this.stopped);
  }

  /**
   * Applies blocks start.. in one transaction with the watermark; all or nothing. Blocks
   * below the watermark are applied already and skipped.
   *
   * The transaction takes the write lock before its first read (BEGIN IMMEDIATE, waiting up
   * to the busy timeout for another writer). Begun deferred, it read the watermark first;
   * another process writing the library between that read and its first write (`sd pair`
   * saving a device while the mount backfilled) made SQLite refuse the write at once, with no
   * wait (SQLITE_BUSY while the other held the lock, SQLITE_BUSY_SNAPSHOT once it had
   * committed). Taken for a bad log, that stopped the mirror for good at the batch's first
   * block.
   */
  applyBatch(start: number, blocks: readonly Buffer[]): void {
    let index = start;
    try {
      this.db.transaction(() => {
        const watermark = this.applied;
        if (start > watermark) throw new BadChange(`block ${start} comes before block ${watermark}`);
        const apply = new BatchApplier(this.db, this.device.id, this.entries, this.contents, this.tags, this.metas, this.checks, this.settings, this.extracts);
        for (const block of blocks) {
          if (index >= watermark) for (const op of decodeLogBlock(block).ops) apply.op(op);
          index++;
        }
        if (index <= watermark) return;
        this.setAppliedLength.run(index, this.device.id);
      }).immediate();
    } catch (err) {
      if (isLibraryBusy(err)) {
        throw new SdError('LIBRARY_LOCKED', `the library is busy with another writer; the index log of device ${this.device.name} is applied from block ${start} again shortly`, { cause: err });
      }
      if (!(err instanceof LogDecodeError || err instanceof BadChange || (err instanceof Error && err.name === 'SqliteError'))) throw err;
      throw new SdError('LIBRARY_CORRUPT', `the index log of device ${this.device.name} (${this.device.id}) cannot be applied at block ${index}: ${err.message}; its mirror stays at block ${start}`);
    }
  }
}

/** Applies ops within one transaction, remembering peer ids it already looked up. */
class BatchApplier {
  private readonly locations = new Map<number, Location>();
  private readonly ids = new Map<number, number>();
  /** Ids from the location root down to a mirrored folder (by its local id), for inserts below it. */
  private readonly chains = new Map<number, readonly number[]>();
  private readonly setLink;

  constructor(
    private readonly db: Db,
    private readonly deviceId: string,
    private readonly entries: EntryStore,
    private readonly contents: ContentStore,
    private readonly tags: TagStore,
    private readonly metas: MetaStore,
    private readonly checks: CopyChecks,
    private readonly settings: GuardianSettings,
    private readonly extracts: ExtractStore,
  ) {
    this.setLink = db.prepare('INSERT OR REPLACE INTO link_targets (entry_id, target) VALUES (?, ?)');
  }

  op(o: LogOp): void {
    switch (o.op) {
      case 'location':
        this.locations.set(o.id, upsertMirroredLocation(this.db, this.deviceId, o.id, o));
        break;
      case 'unlocation': {
        const location = this.location(o.id, false);
        if (location) removeLocation(this.db, this.entries, location);
        this.locations.delete(o.id);
        this.forgetIds();
        break;
      }
      case 'entry':
        this.entry(o);
        break;
      case 'tombstone': {
        const local = this.localId(o.id, false);
        if (local !== undefined) this.entries.deleteSubtree(local);
        this.forgetIds();
        break;
      }
      case 'content':
        this.contents.recordFromPeer(o.contentId, o.size, o.sampledHash);
        break;
      case 'fullHash':
        this.contents.recordFullHashFromPeer(o.contentId, o.fullHash);
        break;
      case 'meta':
        // Shared data, like tags: the newest stamp wins.
        try {
          this.metas.apply({ target: { device: o.device, entry: o.entry }, key: validateMetaKey(o.key), value: o.value === null ? null : validateMetaValue(o.value), hlc: o.hlc });
        } catch (err) {
          throw new BadChange(`metadata operation '${o.key.slice(0, 40)}' is not valid: ${err instanceof Error ? err.message : String(err)}`);
        }
        break;
      case 'link': {
        const local = this.localId(o.id, false);
        if (local !== undefined) this.setLink.run(local, o.target);
        break;
      }
      case 'check': {
        const local = this.localId(o.id, false);
        if (local !== undefined) this.checks.recordFromPeer(local, o);
        break;
      }
      case 'guardian':
        // Shared settings: the newest stamp wins; one that fails validation is counted and ignored.
        this.settings.applyFromPeer(this.deviceId, o);
        break;
      case 'extract':
        // What a content's bytes say, from the device that read them (content/extracts.ts).
        this.extracts.recordFromPeer(o, this.deviceId);
        break;
      case 'space': {
        const location = this.location(o.id, false);
        if (location) recordSpace(this.db, location.id, o);
        break;
      }
      case 'tag':
        // Shared data: the newest stamp wins, whatever order the devices' logs arrive in.
        try {
          this.tags.apply({ target: { device: o.device, entry: o.entry }, tag: validateTag(o.tag), present: o.present, hlc: o.hlc });
        } catch (err) {
          throw new BadChange(`tag operation '${o.tag.slice(0, 40)}' is not valid: ${err instanceof Error ? err.message : String(err)}`);
        }
        break;
    }
  }

  private forgetIds(): void {
    this.ids.clear();
    this.chains.clear();
  }

  private chainTo(localId: number): readonly number[] {
    let chain = this.chains.get(localId);
    if (!chain) this.chains.set(localId, (chain = this.entries.ancestorIds(localId)));
    return chain;
  }

  private location(remoteId: number, required: boolean): Location | undefined {
    let location = this.locations.get(remoteId);
    if (!location) {
      location = locationByRemoteId(this.db, this.deviceId, remoteId);
      if (location) this.locations.set(remoteId, location);
      else if (required) throw new BadChange(`location ${remoteId} was never announced`);
    }
    return location;
  }

  private localId(remoteId: number, required: boolean): number | undefined {
    let id = this.ids.get(remoteId);
    if (id === undefined) {
      id = this.entries.byRemoteId(this.deviceId, remoteId)?.id;
      if (id !== undefined) this.ids.set(remoteId, id);
      else if (required) throw new BadChange(`entry ${remoteId} was never announced`);
    }
    return id;
  }

  private entry(o: Extract<LogOp, { op: 'entry' }>): void {
    const location = this.location(o.locationId, true)!;
    const parent = o.parentId === null ? null : this.localId(o.parentId, true)!;
    const existing = this.entries.byRemoteId(this.deviceId, o.id);
    if (!existing) {
      const chain = parent === null ? [] : this.chainTo(parent);
      const id = this.entries.insertMirrored(this.deviceId, location.id, chain, o, o.contentId, o.id);
      this.ids.set(o.id, id);
      this.tags.attach(id, { device: this.deviceId, entry: o.id });
      if (o.kind === 'dir') this.chains.set(id, [...chain, id]);
      if (parent === null) {
        setLocationRoot(this.db, location.id, id);
        this.locations.set(o.locationId, { ...location, rootEntryId: id });
      }
      return;
    }
    if (existing.locationId !== location.id) throw new BadChange(`entry ${o.id} moved from one location to another`);
    if (parent !== null && (existing.parentId !== parent || existing.name !== o.name)) {
      this.entries.move(existing.id, parent, o.name);
      this.chains.clear(); // the chains below the moved entry changed
    }
    this.entries.update(existing.id, { kind: o.kind, size: o.size, mtime: o.mtime, inode: 0, mode: o.mode }, o.contentId);
  }
}
