// The namespace operations the mount (and the CLI) ask for on a local location, as
// data. `ActionManager.applyFsOp` executes one synchronously: it changes the disk, keeps
// the index true at once (no rescan) and writes the audit log. Paths are relative to
// the location root, '/'-separated, never '..'; '' is the root itself.
import type { Timespec } from '../../syscalls.js';

/** Who made a new name through the mount: it is given to them (when sdfs runs as root). */
export interface Owner {
  uid: number;
  gid: number;
}

export type FsOp =
  /**
   * Creates a regular file with exactly `mode` (the kernel applied the caller's umask
   * already). Without `flags` the file is closed again; with `flags` (O_* bits; O_CREAT
   * is added) it stays open and its descriptor is returned for the caller to close.
   */
  | { op: 'create'; path: string; mode: number; flags?: number; owner?: Owner }
  | { op: 'mkdir'; path: string; mode: number; owner?: Owner }
  /** A file the mount's binding already made on disk (its fast path): recorded as a create. */
  | { op: 'created'; path: string; mode: number }
  /** A fifo, a socket or a device node (mode holds its type); a regular file too. */
  | { op: 'mknod'; path: string; mode: number; dev: number; owner?: Owner }
  | { op: 'unlink'; path: string }
  | { op: 'rmdir'; path: string }
  /**
   * Renames within one location; `toLocationId` naming another location answers EXDEV.
   * flags: RENAME_NOREPLACE (EEXIST when `to` exists) or RENAME_EXCHANGE (swaps the two).
   */
  | { op: 'rename'; from: string; to: string; toLocationId?: number; flags?: number }
  | { op: 'symlink'; path: string; target: string; owner?: Owner }
  /** Hard link: `to` becomes another name of `from`; across locations EXDEV. */
  | { op: 'link'; from: string; to: string; toLocationId?: number }
  /** On a symbolic link answers EOPNOTSUPP (Linux has no lchmod; links are never followed). */
  | { op: 'chmod'; path: string; mode: number }
  /** uid or gid -1 leaves that one unchanged; acts on a link itself, not its target. */
  | { op: 'chown'; path: string; uid: number; gid: number }
  | { op: 'truncate'; path: string; size: number }
  /** Acts on a link itself, not its target. `ns`, when given, is exact (UTIME_NOW and UTIME_OMIT allowed) and wins over the ms. */
  | { op: 'utimens'; path: string; atimeMs: number; mtimeMs: number; ns?: { atime: Timespec; mtime: Timespec } }
  /** Data was written through an open handle: re-stat, re-identify, audit. */
  | { op: 'written'; path: string };

export type FsOpKind = FsOp['op'];

export interface FsOpTarget {
  locationId: number;
}

export interface FsOpResult {
  /** The open descriptor of a `create` that asked for one with `flags`. */
  fd?: number;
}
