// Serves peers' block requests: resolves a target to a real file ONLY inside this device's
// locations (and only what the index shows), reads the range with async I/O, hashes, signs
// (this device vouches for what it sends), replies.
import fs from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import hypercoreCrypto from 'hypercore-crypto';
import { config } from '../config.js';
import { SdError, systemCode } from '../errors.js';
import { log } from '../log.js';
import { RemoteChanges } from '../vdfs/remote-changes.js';
import type { PendingStore } from '../vdfs/pending.js';
import { CopyChecks } from '../vdfs/content/copy-checks.js';
import { EntryStore, type Entry } from '../vdfs/entries.js';
import type { Library } from '../vdfs/library.js';
import { getLocation, listLocations, type Location } from '../vdfs/locations.js';
import type { BlockChannel, BlockRequestHandler } from './block-channel.js';
import { BufferPool } from './buffer-pool.js';
import { signedBlockMessage, type BlockErrorCode, type BlockRequest, type BlockTarget, type Vouch } from './block-messages.js';
import { deviceKeys, type KeyPair } from './identity.js';
import { VouchStore } from './vouches.js';

/** A file this device agrees to serve: its real path and the location root it must stay in. */
export interface ServedFile {
  realPath: string;
  root: string;
}

/** Maps a peer's target to a file this device serves; throws SdError (NOT_FOUND, PERMISSION). */
export interface ServedFiles {
  resolve(target: BlockTarget): ServedFile;
  /** The key pair replies are signed with (this device's log key); a throwaway one without. */
  readonly keyPair?: KeyPair;
  /** What `signer` signed for this range of a content, kept from when the copy here was fetched (see vouches.ts). */
  vouchOf?(contentId: string, size: number, offset: number, length: number, signer: Buffer, hash: Buffer): Vouch | undefined;
}

/** Splits a peer-given relative path, refusing anything that could leave the location. */
export function safeSegments(rel: string): string[] {
  if (rel.startsWith('/')) throw new SdError('PERMISSION', `path '${rel}' is absolute; peers ask for paths inside a location`);
  const names = rel.split('/').filter((s) => s !== '');
  for (const n of names) {
    if (n === '..' || n === '.' || n.includes('\0')) throw new SdError('PERMISSION', `path '${rel}' holds '${n}'; peers ask for paths inside a location`);
  }
  return names;
}

/** The files of this device's locations that its index shows (ignored files are never served). */
export class LibraryServedFiles implements ServedFiles {
  private readonly entries: EntryStore;
  private readonly changes: RemoteChanges;
  private readonly pending: PendingStore;
  private readonly checks: CopyChecks;
  private readonly vouches: VouchStore;
  /** This device's log key pair: peers know its public half from pairing and its log. */
  readonly keyPair: KeyPair;

  constructor(private readonly library: Library) {
    this.keyPair = deviceKeys(library.dir).log;
    this.vouches = new VouchStore(library.db);
    this.entries = new EntryStore(library.db);
    this.changes = new RemoteChanges(library);
    this.pending = this.changes.pending;
    this.checks = new CopyChecks(library.db);
  }

  vouchOf(contentId: string, size: number, offset: number, length: number, signer: Buffer, hash: Buffer): Vouch | undefined {
    return this.vouches.find(contentId, size, offset, length, signer, hash);
  }

  /** A scrub found this copy's bytes changed while its size and mtime did not, and it was not repaired since. */
  private isCorrupt(entry: Entry): boolean {
    return this.checks.isCorrupt(entry);
  }

  resolve(target: BlockTarget): ServedFile {
    const deviceId = this.library.device.id;
    if (target.kind === 'path') {
      const names = safeSegments(target.path);
      const location = getLocation(this.library.db, deviceId, target.location);
      if (!location || location.rootEntryId === null) throw new SdError('NOT_FOUND', `no location '${target.location}' on this device`);
      const entry = this.entries.resolve(location.rootEntryId, names);
      if (!entry || entry.kind !== 'file') throw new SdError('NOT_FOUND', `${target.location}/${target.path} is not an indexed file`);
      if (this.isCorrupt(entry)) throw new SdError('IO', `${target.location}/${target.path} is corrupt here (a scrub found bit rot); read another copy, or repair it`);
      return { realPath: path.join(location.rootPath, ...names), root: location.rootPath };
    }
    // A copy a scrub found corrupt is never served: another device's copy is asked instead.
    const copies = this.entries.withContent(target.contentId).filter((e) => e.deviceId === deviceId && e.kind === 'file' && !this.isCorrupt(e));
    const locations = new Map<number, Location>(listLocations(this.library.db, deviceId).map((l) => [l.id, l]));
    for (const e of copies) {
      const location = locations.get(e.locationId);
      if (location) return { realPath: path.join(location.rootPath, ...this.entries.relativePath(e.id).split('/')), root: location.rootPath };
    }
    // A new file written here into a paired device's tree, offered to that device by content id.
    const staged = this.pending.byContent(target.contentId);
    if (staged && staged.kind === 'file') return { realPath: this.changes.stagedPath(staged), root: this.changes.stagingDir };
    throw new SdError('NOT_FOUND', `no copy of content ${target.contentId} on this device`);
  }
}

interface OpenFile {
  handle: fs.promises.FileHandle;
  size: number;
  mtime: number;
  checkedAt: number;
  lastUse: number;
  users: number;
  /** Replaced on disk or evicted while in use: closed by its last user. */
  retired: boolean;
}

interface ConnectionQueue {
  running: number;
  queue: BlockRequest[];
}

export interface BlockServerStats {
  blocksServed: number;
  /** Signed hashes of ranges sent without their bytes (vouching for another device's copy). */
  hashesServed: number;
  bytesServed: number;
  refused: number;
  errors: number;
  busy: number;
}

const STAT_RECHECK_MS = 1000;
const EMPTY = Buffer.alloc(0);
/** Read buffers kept for reuse: the reads in flight on two connections (blockServerConcurrency each). */
const READ_BUFFERS_KEPT = 16;

export class BlockServer implements BlockRequestHandler {
  readonly stats: BlockServerStats = { blocksServed: 0, hashesServed: 0, bytesServed: 0, refused: 0, errors: 0, busy: 0 };
  private readonly connections = new Map<BlockChannel, ConnectionQueue>();
  private readonly files = new Map<string, Promise<OpenFile>>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly keyPair: KeyPair;
  /** What blocks are read into: a reply's encoding copies them, so each is free again once sent. */
  private readonly reads = new BufferPool(config.blockSize, READ_BUFFERS_KEPT);

  constructor(private readonly served: ServedFiles) {
    this.keyPair = served.keyPair ?? (hypercoreCrypto.keyPair() as KeyPair);
    this.sweeper = setInterval(() => this.closeIdleFiles(), Math.min(config.blockServerFdIdleMs, 10_000));
    this.sweeper.unref();
  }

  handle(request: BlockRequest, channel: BlockChannel): void {
    let conn = this.connections.get(channel);
    if (!conn) this.connections.set(channel, (conn = { running: 0, queue: [] }));
    if (conn.queue.length >= config.blockServerQueueMax) {
      this.stats.busy++;
      channel.sendError({ id: request.id, code: 'BUSY', message: `more than ${config.blockServerQueueMax} requests queued` });
      return;
    }
    conn.queue.push(request);
    this.pump(channel, conn);
  }

  detach(channel: BlockChannel): void {
    const conn = this.connections.get(channel);
    if (conn) conn.queue.length = 0;
    this.connections.delete(channel);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const files = [...this.files.values()];
    this.files.clear();
    await Promise.all(files.map((f) => f.then((o) => o.handle.close(), () => undefined)));
  }

  private pump(channel: BlockChannel, conn: ConnectionQueue): void {
    while (conn.running < config.blockServerConcurrency && conn.queue.length > 0) {
      const request = conn.queue.shift()!;
      conn.running++;
      void this.serve(request, channel).finally(() => {
        conn.running--;
        this.pump(channel, conn);
      });
    }
  }

  private async serve(request: BlockRequest, channel: BlockChannel): Promise<void> {
    // A peer that does not read its replies stops getting new ones read for it.
    await channel.drained();
    if (channel.closed) return;
    const started = performance.now();
    let file: ServedFile;
    try {
      file = this.served.resolve(request.target);
    } catch (err) {
      return this.fail(channel, request, err);
    }
    let open: OpenFile | undefined;
    try {
      open = await this.acquire(file);
      if (open.size !== request.expectSize || (request.expectMtime !== 0 && open.mtime !== request.expectMtime)) {
        channel.sendError({ id: request.id, code: 'STALE', message: `the file changed (now ${open.size} bytes, mtime ${open.mtime})` });
        return;
      }
      if (request.offset >= open.size) {
        channel.sendError({ id: request.id, code: 'INVALID', message: `offset ${request.offset} is at or past the end (${open.size} bytes)` });
        return;
      }
      const length = Math.min(request.length, open.size - request.offset);
      const data = this.reads.take(length);
      try {
        if (!(await this.reply(request, channel, open, data))) return;
      } finally {
        this.reads.give(data);
      }
      log.debug({ op: 'block-serve', peer: channel.name, path: file.realPath, offset: request.offset, length: data.length, ms: performance.now() - started });
    } catch (err) {
      this.fail(channel, request, err);
    } finally {
      if (open) {
        open.users--;
        open.lastUse = Date.now();
        if (open.retired && open.users === 0) void open.handle.close().catch(() => undefined);
      }
    }
  }

  /** Reads the range into data, hashes and signs it, and sends it; false when the file shrank (answered STALE). */
  private async reply(request: BlockRequest, channel: BlockChannel, open: OpenFile, data: Buffer): Promise<boolean> {
    const length = data.length;
    let done = 0;
    while (done < length) {
      const { bytesRead } = await open.handle.read(data, done, length - done, request.offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    if (done < length) {
      channel.sendError({ id: request.id, code: 'STALE', message: 'the file shrank while being read' });
      return false;
    }
    const hash = blake3(data);
    const signature = hypercoreCrypto.sign(signedBlockMessage(request.target, open.size, open.mtime, request.offset, length, hash), this.keyPair.secretKey) as Buffer;
    // hashOnly: the signed hash alone (an owner vouching for bytes another device sent).
    const sent = request.hashOnly ? EMPTY : data;
    // Asked for another device's word on this content (its owner, for the reader): passed along when kept.
    const { vouchBy, target } = request;
    const vouch = vouchBy && target.kind === 'content' && !vouchBy.equals(this.keyPair.publicKey)
      ? this.served.vouchOf?.(target.contentId, open.size, request.offset, length, vouchBy, hash)
      : undefined;
    // The reply's encoding copies the bytes: data is free again when this returns.
    channel.sendReply({ id: request.id, data: sent, hash, fileSize: open.size, fileMtime: open.mtime, signer: this.keyPair.publicKey, signature, vouch });
    if (request.hashOnly) this.stats.hashesServed++;
    else this.stats.blocksServed++;
    this.stats.bytesServed += sent.length;
    return true;
  }

  private fail(channel: BlockChannel, request: BlockRequest, err: unknown): void {
    const code = errorCode(err);
    if (code === 'REFUSED') this.stats.refused++;
    else this.stats.errors++;
    const message = err instanceof Error ? err.message : String(err);
    log.debug({ op: 'block-serve', peer: channel.name, code, err: message });
    // The peer learns what went wrong with what it asked for, never this device's real paths.
    channel.sendError({ id: request.id, code, message: `${describeTarget(request.target)}: ${PEER_MESSAGES[code]}` });
  }

  /** An open descriptor of a served file, checked to be inside its location root. */
  private async acquire(file: ServedFile): Promise<OpenFile> {
    let pending = this.files.get(file.realPath);
    if (!pending) {
      pending = openServed(file);
      this.files.set(file.realPath, pending);
      pending.catch(() => this.files.delete(file.realPath));
    }
    const open = await pending;
    open.users++;
    if (Date.now() - open.checkedAt > STAT_RECHECK_MS) {
      // The file may have been replaced since it was opened: reopen by path if so.
      const [byPath, byFd] = await Promise.all([fs.promises.stat(file.realPath).catch(() => undefined), open.handle.stat()]);
      if (!byPath || byPath.ino !== byFd.ino || byPath.dev !== byFd.dev) {
        open.users--;
        open.retired = true;
        this.files.delete(file.realPath);
        if (open.users === 0) void open.handle.close().catch(() => undefined);
        return this.acquire(file);
      }
      open.size = byFd.size;
      open.mtime = byFd.mtimeMs;
      open.checkedAt = Date.now();
    }
    if (this.files.size > config.blockServerOpenFiles) this.closeIdleFiles(true);
    return open;
  }

  private closeIdleFiles(overLimit = false): void {
    const now = Date.now();
    for (const [key, pending] of this.files) {
      void pending.then((open) => {
        const idle = open.users === 0 && (overLimit || now - open.lastUse > config.blockServerFdIdleMs);
        if (idle && this.files.get(key) === pending) {
          this.files.delete(key);
          void open.handle.close().catch(() => undefined);
        }
      }, () => undefined);
    }
  }
}

async function openServed(file: ServedFile): Promise<OpenFile> {
  let real: string;
  try {
    real = await fs.promises.realpath(file.realPath);
  } catch (err) {
    throw new SdError('NOT_FOUND', `${file.realPath} is gone (${systemCode(err) ?? String(err)})`);
  }
  const rel = path.relative(file.root, real);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new SdError('PERMISSION', `${file.realPath} leads outside its location (to ${real}); not served`);
  }
  // O_NOFOLLOW: a last component swapped for a symlink after the check is not followed.
  const handle = await fs.promises.open(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  const st = await handle.stat();
  if (!st.isFile()) {
    await handle.close();
    throw new SdError('NOT_FOUND', `${file.realPath} is not a regular file`);
  }
  return { handle, size: st.size, mtime: st.mtimeMs, checkedAt: Date.now(), lastUse: Date.now(), users: 0, retired: false };
}

const PEER_MESSAGES: Record<BlockErrorCode, string> = {
  NOT_FOUND: 'not an indexed file on this device',
  REFUSED: 'refused: not inside a shared location',
  STALE: 'the file changed',
  BUSY: 'too many requests',
  IO: 'read error on this device',
  INVALID: 'invalid request',
};

function describeTarget(target: BlockTarget): string {
  return target.kind === 'path' ? `${target.location}/${target.path}` : `content ${target.contentId}`;
}

function errorCode(err: unknown): BlockErrorCode {
  if (err instanceof SdError) {
    if (err.code === 'PERMISSION') return 'REFUSED';
    if (err.code === 'NOT_FOUND') return 'NOT_FOUND';
    if (err.code === 'INVALID' || err.code === 'INVALID_PATH') return 'INVALID';
    return 'IO';
  }
  const code = systemCode(err);
  if (code === 'ENOENT' || code === 'ENOTDIR') return 'NOT_FOUND';
  if (code === 'ELOOP' || code === 'EACCES' || code === 'EPERM') return 'REFUSED';
  return 'IO';
}
