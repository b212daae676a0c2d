// Another device's tree in the mount: attributes and listings from the replicated index
// (no network), bytes through the replication's block client (async: the FUSE loop is
// multithreaded, so a slow peer holds only its own read). Read-only for now.
import type { FuseStat } from 'fuse-native';
import { log } from '../log.js';
import type { Device } from '../vdfs/device.js';
import type { Entry } from '../vdfs/entries.js';
import type { Location } from '../vdfs/locations.js';
import type { Namespace } from '../vdfs/namespace.js';
import { EIO, EISDIR, ENOENT, EROFS, errnoOf } from './errno.js';
import type { Node } from './tree.js';

/** An open file of another device: reads by offset, from cache or peers. */
export interface RemoteReader {
  readInto(buf: Buffer, offset: number, length: number): Promise<number>;
}

/** What the mount needs from replication: open a peer's file for reading. */
export interface RemoteFiles {
  openRemote(device: Device, location: Location, rel: readonly string[], entry: Entry): RemoteReader;
}

type RemoteNode = Extract<Node, { kind: 'remote' }>;

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
/** Remote entries get inode numbers in the upper half of the 32-bit range, from their row id. */
const REMOTE_INO_BASE = 0x80000000;
const REMOTE_INO_SPAN = 0x7ff00000;
/** Handle numbers of remote files, far above real file descriptors. */
const FIRST_REMOTE_HANDLE = 1 << 30;

export class RemoteTree {
  private readonly open = new Map<number, RemoteReader>();
  private nextHandle = FIRST_REMOTE_HANDLE;
  private readonly uid = process.getuid?.() ?? 0;
  private readonly gid = process.getgid?.() ?? 0;

  constructor(
    private readonly ns: Namespace,
    private readonly files: RemoteFiles | undefined,
  ) {}

  private entry(node: RemoteNode): Entry | undefined {
    return this.ns.entry(node.location, node.rel);
  }

  getattr(node: RemoteNode): FuseStat | number {
    const entry = this.entry(node);
    return entry ? this.stat(entry) : ENOENT;
  }

  readdir(node: RemoteNode): string[] | number {
    const entry = this.entry(node);
    if (!entry) return ENOENT;
    if (entry.kind !== 'dir') return -20; // ENOTDIR
    return this.ns.children(entry).map((c) => c.name);
  }

  openFile(node: RemoteNode, writing: boolean): number {
    if (writing) return EROFS;
    const entry = this.entry(node);
    if (!entry) return ENOENT;
    if (entry.kind === 'dir') return EISDIR;
    if (!this.files || entry.kind !== 'file') return EIO;
    const handle = this.nextHandle++;
    this.open.set(handle, this.files.openRemote(node.device, node.location, node.rel, entry));
    return handle;
  }

  has(handle: number): boolean {
    return this.open.has(handle);
  }

  read(handle: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void {
    const reader = this.open.get(handle);
    if (!reader) return cb(-9); // EBADF
    reader.readInto(buf, pos, len).then(cb, (err: unknown) => {
      log.warn({ op: 'read', remote: true, pos, len, err: String(err) }, 'remote read failed');
      cb(errnoOf(err) || EIO);
    });
  }

  release(handle: number): void {
    this.open.delete(handle);
  }

  private stat(entry: Entry): FuseStat {
    const type = entry.kind === 'dir' ? S_IFDIR : entry.kind === 'symlink' ? S_IFLNK : S_IFREG;
    // Another device's files are read-only here until remote writes exist.
    const perm = (entry.mode & 0o7777 || (entry.kind === 'dir' ? 0o755 : 0o644)) & ~0o222;
    return {
      mode: type | perm,
      uid: this.uid,
      gid: this.gid,
      size: entry.kind === 'dir' ? 4096 : entry.size,
      nlink: entry.kind === 'dir' ? 2 : 1,
      ino: REMOTE_INO_BASE + (entry.id % REMOTE_INO_SPAN),
      atime: entry.mtime,
      mtime: entry.mtime,
      ctime: entry.mtime,
    };
  }
}
