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
import { fromEntry } from './stat.js';
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

/** Handle numbers of remote files, far above real file descriptors. */
const FIRST_REMOTE_HANDLE = 1 << 30;

export class RemoteTree {
  private readonly open = new Map<number, RemoteReader>();
  private nextHandle = FIRST_REMOTE_HANDLE;

  constructor(
    private readonly ns: Namespace,
    private readonly files: RemoteFiles | undefined,
  ) {}

  private entry(node: RemoteNode): Entry | undefined {
    return this.ns.entry(node.location, node.rel);
  }

  getattr(node: RemoteNode): FuseStat | number {
    const entry = this.entry(node);
    return entry ? fromEntry(entry) : ENOENT;
  }

  readdir(node: RemoteNode): string[] | number {
    const entry = this.entry(node);
    if (!entry) return ENOENT;
    if (entry.kind !== 'dir') return -20; // ENOTDIR
    return this.ns.childNames(entry);
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

}
