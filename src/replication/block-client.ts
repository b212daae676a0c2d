// Reads blocks of a file held elsewhere: from the disk cache, else from its cheapest source
// (a local copy first, then peers by measured cost), checking each block's BLAKE3 and that
// the file's owner vouches for it (its signature, or its signed hash of the same range when
// another device sent the bytes). A bad block, an error or a vanished peer moves on to the
// next source; a device whose bytes the owner contradicts is counted faulty; no answer in
// time is EIO.
import fs from 'node:fs';
import { blake3 } from '@napi-rs/blake-hash';
import hypercoreCrypto from 'hypercore-crypto';
import { config } from '../config.js';
import { SdError } from '../errors.js';
import { log } from '../log.js';
import type { BlockCache } from './block-cache.js';
import type { BlockChannel } from './block-channel.js';
import { signedBlockMessage, type BlockReply, type BlockTarget } from './block-messages.js';
import type { RangeVouch } from './vouches.js';

/** Where the bytes of a file can come from. */
export type BlockSource =
  | { kind: 'local'; path: string }
  | { kind: 'peer'; channel: BlockChannel; target: BlockTarget };

/** A file to read: what it must look like and who holds it. */
export interface RemoteFileRef {
  size: number;
  /** mtime (ms) expected by path targets; 0 accepts any. */
  mtime: number;
  contentId?: string;
  /** Names these exact bytes in the cache: content id + size, or device/location/path + size + mtime. */
  cacheKey: string;
  /** Asked on every block, so sources that come online or go away are seen at once. */
  sources(): BlockSource[];
  /**
   * The device whose file this is: its log key, and how to reach it now (undefined while
   * offline). Bytes it signed are taken as they are; bytes another device sent are taken
   * when the owner's signed hash of the same range matches: passed along with them by a
   * copy that kept it (see vouches.ts), else asked of the owner without the bytes, else,
   * with the owner away, of the other copies by content id; failing all that, on the
   * sender's word (counted in stats.unvouched). Without an owner (a repair, which checks
   * the whole file's hash), every source's own hash is enough.
   */
  owner?: { key: Buffer; source(): BlockSource | undefined };
  /**
   * Called with what each device that sent bytes by content id signed for them (and the
   * owner's word it passed along, checked): a fetched copy keeps them, to pass along later.
   */
  onVouches?(vouches: RangeVouch[]): void;
}

export interface BlockClientStats {
  blocksFetched: number;
  bytesFetched: number;
  /** Short reads fetched alone ahead of their block (cold first reads, seeks). */
  rangeReads: number;
  cacheHits: number;
  localReads: number;
  /** Blocks whose bytes did not match the hash sent with them: rejected. */
  hashMismatches: number;
  /** Blocks of the wrong length or for a file of another size: rejected. */
  badReplies: number;
  timeouts: number;
  /** Times a block came from another source after one failed. */
  failovers: number;
  errors: number;
  /** Replies whose signature did not verify, or whose bytes the owner's signed hash contradicts: the sender is faulty. */
  faults: number;
  /** Ranges another device sent that the owner vouched for (its signed hash asked and matched, or passed along). */
  ownerChecks: number;
  /** Of those, the ranges whose owner's signature came passed along with the bytes (the owner not asked). */
  passedAlong: number;
  /** Ranges taken on the sender's word alone: the owner was offline and had not vouched for them before. */
  unvouched: number;
}

export interface BlockClientOptions {
  cache?: BlockCache;
  timeoutMs?: number;
  blockSize?: number;
  /** A peer sent bytes that are provably wrong (the owner says otherwise, or a bad signature). */
  onFault?: (peer: string, reason: string) => void;
}

/** Bytes from a source; a peer's come with their BLAKE3 (already checked), cacheable. */
interface Fetched {
  data: Buffer;
  hash?: Buffer;
  /** Done with data and hash, no view of them kept: their buffer may be reused (see BlockChannel.release). */
  release?: () => void;
}

/** Measured cost of a peer connection: smoothed ms per block, plus a fading penalty for failures. */
interface PeerCost {
  msPerBlock: number;
  samples: number;
  penaltyUntil: number;
}

const UNMEASURED_MS = 20;
const FAILURE_PENALTY_MS = 10_000;
/** Owner-signed range hashes kept per client (48 bytes each with their key: well under a MiB). */
const OWNER_HASHES_KEPT = 8192;

/** Whether `signature` is `key`'s over `message` (a malformed key or signature is not). */
function verifies(message: Buffer, signature: Buffer, key: Buffer): boolean {
  try {
    return hypercoreCrypto.verify(message, signature, key);
  } catch {
    return false;
  }
}

/** Whether a reply's signature by its signer covers what was asked (target, range) and what came (size, mtime, hash). */
function validSignature(target: BlockTarget, offset: number, length: number, reply: BlockReply): boolean {
  return verifies(signedBlockMessage(target, reply.fileSize, reply.fileMtime, offset, length, reply.hash), reply.signature, reply.signer);
}

/**
 * Whether a reply carries the owner's signature of its bytes, passed along: true when it
 * verifies, false when it claims the owner's key and does not (a lie), undefined without one.
 */
function passedAlong(file: RemoteFileRef, offset: number, length: number, reply: BlockReply): boolean | undefined {
  const passed = reply.vouch;
  if (!passed || !file.owner || !passed.signer.equals(file.owner.key) || file.contentId === undefined) return undefined;
  const message = signedBlockMessage({ kind: 'content', contentId: file.contentId }, reply.fileSize, passed.fileMtime, offset, length, reply.hash);
  return reply.fileSize === file.size && verifies(message, passed.signature, passed.signer);
}

/** What a reply by content id carries that a copy made of it keeps: the sender's signature, and the owner's passed along. */
function vouchesOf(file: RemoteFileRef, offset: number, length: number, reply: BlockReply): RangeVouch[] {
  const range = { offset, length, hash: Buffer.from(reply.hash) };
  const vouches: RangeVouch[] = [{ ...range, signer: Buffer.from(reply.signer), signature: Buffer.from(reply.signature), fileMtime: reply.fileMtime }];
  // (vouch() checked a passed-along signature that claims the owner's key; no other is kept.)
  const passed = reply.vouch;
  if (passed && file.owner && passed.signer.equals(file.owner.key)) vouches.push({ ...range, signer: Buffer.from(passed.signer), signature: Buffer.from(passed.signature), fileMtime: passed.fileMtime });
  return vouches;
}

export class BlockClient {
  readonly stats: BlockClientStats = {
    blocksFetched: 0, bytesFetched: 0, rangeReads: 0, cacheHits: 0, localReads: 0, hashMismatches: 0, badReplies: 0, timeouts: 0, failovers: 0, errors: 0,
    faults: 0, ownerChecks: 0, passedAlong: 0, unvouched: 0,
  };
  readonly blockSize: number;
  readonly timeoutMs: number;
  readonly cache: BlockCache | undefined;
  private readonly costs = new WeakMap<BlockChannel, PeerCost>();
  /** Blocks being fetched; undefined once fetched into the cache only (fetchToCache), its bytes not kept. */
  private readonly inflight = new Map<string, Promise<Buffer | undefined>>();
  /** Hashes owners signed, by file and range (most recent last), so each is asked of the owner once. */
  private readonly ownerHashes = new Map<string, Buffer>();
  private readonly onFault: ((peer: string, reason: string) => void) | undefined;

  constructor(options: BlockClientOptions = {}) {
    this.cache = options.cache;
    this.onFault = options.onFault;
    this.timeoutMs = options.timeoutMs ?? config.remoteReadTimeoutMs;
    this.blockSize = options.blockSize ?? config.blockSize;
  }

  blockCount(file: RemoteFileRef): number {
    return Math.ceil(file.size / this.blockSize);
  }

  blockLength(file: RemoteFileRef, index: number): number {
    return Math.max(0, Math.min(this.blockSize, file.size - index * this.blockSize));
  }

  /** Bytes [offset, offset+length) of the file, clipped at its end. */
  async read(file: RemoteFileRef, offset: number, length: number): Promise<Buffer> {
    const end = Math.min(file.size, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    const first = Math.floor(offset / this.blockSize);
    const last = Math.floor((end - 1) / this.blockSize);
    const blocks = await Promise.all(Array.from({ length: last - first + 1 }, (_, i) => this.readBlock(file, first + i)));
    const whole = blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks);
    const start = offset - first * this.blockSize;
    return whole.subarray(start, start + (end - offset));
  }

  /** One verified block; concurrent asks for the same block share one fetch. */
  readBlock(file: RemoteFileRef, index: number): Promise<Buffer> {
    if (index < 0 || index >= this.blockCount(file)) return Promise.reject(new SdError('INVALID', `block ${index} is outside the file`));
    const pending = this.inflight.get(this.blockKey(file, index));
    // Being fetched into the cache only: read from there once it is.
    if (pending) return pending.then((data) => data ?? this.readBlock(file, index));
    return this.startFetch(file, index, true) as Promise<Buffer>;
  }

  /**
   * Fetches a block into the disk cache (a background fetch): nothing is kept in memory, and
   * the buffer its bytes came in goes back to the connection once they are written. A block
   * already checked in this process is not fetched again; one cached before is checked.
   */
  async fetchToCache(file: RemoteFileRef, index: number): Promise<void> {
    if (!this.cache) throw new SdError('INVALID', 'a fetch into the cache needs a cache');
    if (index < 0 || index >= this.blockCount(file)) throw new SdError('INVALID', `block ${index} is outside the file`);
    if (this.isVerified(file, index)) return;
    await (this.inflight.get(this.blockKey(file, index)) ?? this.startFetch(file, index, false));
  }

  private blockKey(file: RemoteFileRef, index: number): string {
    return `${file.cacheKey}\n${index}`;
  }

  private startFetch(file: RemoteFileRef, index: number, keep: boolean): Promise<Buffer | undefined> {
    const key = this.blockKey(file, index);
    const pending = this.fetchBlock(file, index, keep).finally(() => this.inflight.delete(key));
    this.inflight.set(key, pending);
    return pending;
  }

  /** Whether a block is in the disk cache and was checked in this process (see BlockCache.isVerified). */
  isVerified(file: RemoteFileRef, index: number): boolean {
    return this.cache?.isVerified(file.cacheKey, index) ?? false;
  }

  /** Whether a block is in the disk cache (read-ahead skips those). */
  isCached(file: RemoteFileRef, index: number): boolean {
    return this.cache?.has(file.cacheKey, index) ?? false;
  }

  /**
   * Bytes [offset, offset+length) inside one block, fetched alone (not cached): a cold read
   * answered without waiting for its whole block. Checked against the hash sent with them.
   */
  async readRange(file: RemoteFileRef, offset: number, length: number): Promise<Buffer> {
    const index = Math.floor(offset / this.blockSize);
    const end = Math.min(file.size, offset + length, (index + 1) * this.blockSize);
    if (offset < 0 || offset >= end) throw new SdError('INVALID', `range ${offset}+${length} is outside the file or crosses a block`);
    const data = await this.fromSources(file, `bytes ${offset}-${end}`, (source, remaining) => this.readSource(file, offset, end - offset, source, remaining));
    this.stats.rangeReads++;
    return data.data;
  }

  /** A block from the cache, else from its sources (then cached); its bytes, or undefined when not kept (into the cache only). */
  private async fetchBlock(file: RemoteFileRef, index: number, keep: boolean): Promise<Buffer | undefined> {
    const cached = await this.cache?.get(file.cacheKey, index);
    const length = this.blockLength(file, index);
    if (cached && cached.length === length) {
      this.stats.cacheHits++;
      return cached;
    }
    const got = await this.fromSources(file, `block ${index}`, (source, remaining) => this.readSource(file, index * this.blockSize, length, source, remaining));
    if (!got.hash) return got.data;
    this.stats.blocksFetched++;
    this.stats.bytesFetched += got.data.length;
    const written = this.cache?.put(file.cacheKey, index, got.data, got.hash);
    if (keep || !written) return got.data;
    // Into the cache only: its bytes are read from there, and their buffer is free once written.
    await written;
    got.release?.();
    return undefined;
  }

  /**
   * Tries the sources cheapest first until one delivers, all within one deadline. Each gets
   * an equal share of the time left: a peer that vanished without closing its connection
   * (killed, unplugged) is only noticed by its silence, and must not use up the deadline of
   * the copies after it.
   */
  private async fromSources(file: RemoteFileRef, what: string, attempt: (source: BlockSource, remainingMs: number) => Promise<Fetched>): Promise<Fetched> {
    const deadline = Date.now() + this.timeoutMs;
    const tried: string[] = [];
    const sources = this.ranked(file.sources());
    for (const [i, source] of sources.entries()) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      if (tried.length > 0) this.stats.failovers++;
      try {
        return await attempt(source, remaining / (sources.length - i));
      } catch (err) {
        const name = source.kind === 'local' ? `local copy ${source.path}` : source.channel.name;
        tried.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
        log.debug({ op: 'block-fetch-failed', source: name, what, err: String(err) });
        if (source.kind === 'peer') this.penalize(source.channel);
      }
    }
    this.stats.errors++;
    const why = tried.length ? tried.join('; ') : 'no copy is online';
    throw new SdError('IO', `${what} of ${file.cacheKey} could not be read within ${this.timeoutMs} ms (${why})`);
  }

  private readSource(file: RemoteFileRef, offset: number, length: number, source: BlockSource, remainingMs: number): Promise<Fetched> {
    return source.kind === 'local' ? this.readLocal(file, offset, length, source.path) : this.readPeer(file, offset, length, source, remainingMs);
  }

  private ranked(sources: BlockSource[]): BlockSource[] {
    const now = Date.now();
    const costOf = (s: BlockSource): number => {
      if (s.kind === 'local') return 0;
      if (s.channel.closed) return Number.POSITIVE_INFINITY;
      const c = this.costs.get(s.channel);
      const base = c && c.samples > 0 ? c.msPerBlock : UNMEASURED_MS;
      return base + (c && c.penaltyUntil > now ? FAILURE_PENALTY_MS : 0);
    };
    return sources
      .map((s, order) => ({ s, order, cost: costOf(s) }))
      .filter((x) => x.cost !== Number.POSITIVE_INFINITY)
      .sort((a, b) => a.cost - b.cost || a.order - b.order)
      .map((x) => x.s);
  }

  private async readLocal(file: RemoteFileRef, offset: number, length: number, localPath: string): Promise<Fetched> {
    const handle = await fs.promises.open(localPath, 'r');
    try {
      const st = await handle.stat();
      if (st.size !== file.size) throw new SdError('IO', `the local copy is ${st.size} bytes, not ${file.size}`);
      const data = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(data, done, length - done, offset + done);
        if (bytesRead === 0) throw new SdError('IO', 'the local copy shrank while being read');
        done += bytesRead;
      }
      this.stats.localReads++;
      // Local bytes need no cache: the copy itself is on this device.
      return { data };
    } finally {
      await handle.close();
    }
  }

  private async readPeer(file: RemoteFileRef, offset: number, length: number, source: Extract<BlockSource, { kind: 'peer' }>, remainingMs: number): Promise<Fetched> {
    const { channel } = source;
    const started = performance.now();
    const reply = await this.ask(file, offset, length, source, remainingMs, false);
    const { data, hash, fileSize } = reply;
    if (fileSize !== file.size || data.length !== length) {
      this.stats.badReplies++;
      throw new SdError('IO', `${channel.name} sent ${data.length} bytes of a ${fileSize}-byte file, expected ${length} of ${file.size}`);
    }
    if (!blake3(data).equals(hash)) {
      this.stats.hashMismatches++;
      log.warn({ op: 'block-hash-mismatch', peer: channel.name, offset, file: file.cacheKey });
      throw new SdError('IO', `bytes at ${offset} from ${channel.name} do not match their BLAKE3; rejected`);
    }
    await this.vouch(file, offset, length, source, reply, remainingMs - (performance.now() - started));
    if (file.onVouches && source.target.kind === 'content') file.onVouches(vouchesOf(file, offset, length, reply));
    // Cost is time per full block; a short range says little about throughput.
    if (length === this.blockSize) this.measure(channel, performance.now() - started);
    return { data, hash, release: () => channel.release(reply) };
  }

  /**
   * Whether the owner vouches for a range a peer sent (see RemoteFileRef.owner); throws,
   * counting the sender faulty, when the signature is bad or the owner's hash differs.
   */
  private async vouch(file: RemoteFileRef, offset: number, length: number, source: Extract<BlockSource, { kind: 'peer' }>, reply: BlockReply, remainingMs: number): Promise<void> {
    const { channel } = source;
    if (!validSignature(source.target, offset, length, reply)) {
      this.fault(channel, `its signature over the bytes at ${offset} does not verify`);
    }
    const owner = file.owner;
    if (!owner) return;
    const key = `${file.cacheKey}\n${offset}\n${length}`;
    if (reply.signer.equals(owner.key)) return this.rememberOwnerHash(key, reply.hash);
    // The owner's own signature, passed along by the device that kept it with its copy.
    const passed = passedAlong(file, offset, length, reply);
    if (passed !== undefined) {
      if (!passed) this.fault(channel, `it passed along a signature of the owner over the bytes at ${offset} that does not verify`);
      this.rememberOwnerHash(key, reply.hash);
      this.stats.ownerChecks++;
      this.stats.passedAlong++;
      return;
    }
    const budget = Math.max(1, remainingMs);
    const vouched = this.ownerHashes.get(key) ?? (await this.askOwner(file, offset, length, channel, budget)) ?? (await this.askCopies(file, offset, length, channel, budget));
    if (vouched) this.rememberOwnerHash(key, vouched);
    if (!vouched) {
      this.stats.unvouched++;
      return;
    }
    if (!vouched.equals(reply.hash)) {
      this.fault(channel, `its bytes at ${offset} of ${file.cacheKey} are not what the owner signed`);
    }
    this.stats.ownerChecks++;
  }

  /** The owner's signed hash of a range, asked of the owner without the bytes; undefined when it cannot say. */
  private async askOwner(file: RemoteFileRef, offset: number, length: number, sender: BlockChannel, remainingMs: number): Promise<Buffer | undefined> {
    const ownerSource = file.owner?.source();
    if (ownerSource?.kind !== 'peer' || ownerSource.channel === sender) return undefined;
    try {
      const signed = await this.ask(file, offset, length, ownerSource, remainingMs, true);
      if (signed.signer.equals(file.owner!.key) && signed.fileSize === file.size && validSignature(ownerSource.target, offset, length, signed)) return signed.hash;
    } catch (err) {
      log.debug({ op: 'owner-hash', owner: ownerSource.channel.name, offset, err: String(err) });
    }
    return undefined;
  }

  /**
   * The owner away: its signed hash of a range as another copy passes it along (kept with
   * that copy when it was fetched from the owner), asked without the bytes.
   */
  private async askCopies(file: RemoteFileRef, offset: number, length: number, sender: BlockChannel, remainingMs: number): Promise<Buffer | undefined> {
    const deadline = Date.now() + remainingMs;
    for (const other of file.sources()) {
      if (other.kind !== 'peer' || other.target.kind !== 'content' || other.channel === sender || other.channel.closed) continue;
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        const signed = await this.ask(file, offset, length, other, left, true);
        if (passedAlong(file, offset, length, signed)) return signed.hash;
      } catch (err) {
        log.debug({ op: 'owner-hash-passed', copy: other.channel.name, offset, err: String(err) });
      }
    }
    return undefined;
  }

  private rememberOwnerHash(key: string, hash: Buffer): void {
    this.ownerHashes.delete(key);
    this.ownerHashes.set(key, Buffer.from(hash));
    if (this.ownerHashes.size > OWNER_HASHES_KEPT) this.ownerHashes.delete(this.ownerHashes.keys().next().value!);
  }

  /** A peer sent provably wrong bytes: counted, reported, and the read moves on. */
  private fault(channel: BlockChannel, reason: string): never {
    this.stats.faults++;
    log.warn({ op: 'block-fault', peer: channel.name, reason }, 'a device sent bytes the owner does not vouch for; read from another copy');
    this.onFault?.(channel.name, reason);
    throw new SdError('IO', `${channel.name}: ${reason}; rejected`);
  }

  /** One request to a peer, within remainingMs; the reply, or an SdError. */
  private async ask(file: RemoteFileRef, offset: number, length: number, source: Extract<BlockSource, { kind: 'peer' }>, remainingMs: number, hashOnly: boolean): Promise<BlockReply> {
    const { channel, target } = source;
    const { id, response } = channel.request({
      target,
      offset,
      length,
      expectSize: file.size,
      expectMtime: target.kind === 'path' ? file.mtime : 0,
      hashOnly,
      // By content id from another device: the owner's word on these bytes, if it kept it.
      vouchBy: target.kind === 'content' ? file.owner?.key : undefined,
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        channel.cancel(id);
        this.stats.timeouts++;
        reject(new SdError('IO', `no answer from ${channel.name} within ${Math.round(remainingMs)} ms`));
      }, remainingMs);
    });
    let answer;
    try {
      answer = await Promise.race([response, timeout]);
    } finally {
      clearTimeout(timer);
    }
    if (!answer.ok) throw new SdError('IO', `${channel.name} answered ${answer.error.code}: ${answer.error.message}`);
    return answer.reply;
  }

  private measure(channel: BlockChannel, ms: number): void {
    const c = this.costs.get(channel) ?? { msPerBlock: ms, samples: 0, penaltyUntil: 0 };
    c.msPerBlock = c.samples === 0 ? ms : c.msPerBlock * 0.8 + ms * 0.2;
    c.samples++;
    this.costs.set(channel, c);
  }

  private penalize(channel: BlockChannel): void {
    const c = this.costs.get(channel) ?? { msPerBlock: UNMEASURED_MS, samples: 0, penaltyUntil: 0 };
    c.penaltyUntil = Date.now() + FAILURE_PENALTY_MS;
    this.costs.set(channel, c);
  }
}
