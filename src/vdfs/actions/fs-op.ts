// The namespace operations the mount (and the CLI) ask for on a local location, as
// data. `ActionManager.applyFsOp` executes one synchronously: it changes the disk, keeps
// the index true at once (no rescan) and writes the audit log. Paths are relative to
// the location root, '/'-separated, never '..'; '' is the root itself.

export type FsOp =
  /**
   * Creates a regular file with exactly `mode` (the kernel applied the caller's umask
   * already). Without `flags` the file is closed again; with `flags` (O_* bits; O_CREAT
   * is added) it stays open and its descriptor is returned for the caller to close.
   */
  | { op: 'create'; path: string; mode: number; flags?: number }
  | { op: 'mkdir'; path: string; mode: number }
  | { op: 'unlink'; path: string }
  | { op: 'rmdir'; path: string }
  /** Renames within one location; `toLocationId` naming another location answers EXDEV. */
  | { op: 'rename'; from: string; to: string; toLocationId?: number }
  | { op: 'symlink'; path: string; target: string }
  /** Hard link: `to` becomes another name of `from`; across locations EXDEV. */
  | { op: 'link'; from: string; to: string; toLocationId?: number }
  /** On a symbolic link answers EOPNOTSUPP (Linux has no lchmod; links are never followed). */
  | { op: 'chmod'; path: string; mode: number }
  /** uid or gid -1 leaves that one unchanged; acts on a link itself, not its target. */
  | { op: 'chown'; path: string; uid: number; gid: number }
  | { op: 'truncate'; path: string; size: number }
  /** Acts on a link itself, not its target. */
  | { op: 'utimens'; path: string; atimeMs: number; mtimeMs: number }
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
