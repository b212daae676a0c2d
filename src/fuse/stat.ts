// Stat records for FUSE: real ones converted from fs.Stats, synthetic ones for the
// virtual folders (root, devices, .content).
import type { FuseStat } from './types.js';
import type fs from 'node:fs';
import type { Entry } from '../vdfs/entries.js';

const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
/** Synthetic inode numbers sit at the top of the 32-bit range, away from real ones. */
const VIRTUAL_INO_BASE = 0xfff00000;
/** A peer's entries get inode numbers in the upper half of the 32-bit range, from their row id. */
const REMOTE_INO_BASE = 0x80000000;
const REMOTE_INO_SPAN = 0x7ff00000;

/** A real file's attributes; from a bigint stat the inode number and times stay exact (the native binding passes them on). */
export function fromStats(st: fs.Stats | fs.BigIntStats): FuseStat {
  if (typeof st.ino !== 'bigint') {
    const s = st as fs.Stats;
    return { mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, nlink: s.nlink, ino: s.ino, rdev: s.rdev, blksize: s.blksize, blocks: s.blocks, atime: s.atimeMs, mtime: s.mtimeMs, ctime: s.ctimeMs };
  }
  const b = st as fs.BigIntStats;
  return {
    mode: Number(b.mode),
    uid: Number(b.uid),
    gid: Number(b.gid),
    size: Number(b.size),
    nlink: Number(b.nlink),
    ino: Number(b.ino),
    rdev: Number(b.rdev),
    blksize: Number(b.blksize),
    blocks: Number(b.blocks),
    atime: Number(b.atimeNs) / 1e6,
    mtime: Number(b.mtimeNs) / 1e6,
    ctime: Number(b.ctimeNs) / 1e6,
    exact: { ino: b.ino, dev: b.dev, atimeNs: b.atimeNs, mtimeNs: b.mtimeNs, ctimeNs: b.ctimeNs },
  };
}

export function virtualDir(key: string, timeMs: number, writable = false): FuseStat {
  return {
    mode: S_IFDIR | (writable ? 0o755 : 0o555),
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    size: 4096,
    nlink: 2,
    ino: VIRTUAL_INO_BASE + (hash(key) % 0xfffff),
    atime: timeMs,
    mtime: timeMs,
    ctime: timeMs,
    shortLived: true,
  };
}

/** A symlink of the virtual tree (/.tags/<tag>/<name>). */
export function virtualLink(key: string, target: string, timeMs: number): FuseStat {
  return { ...virtualDir(key, timeMs), mode: S_IFLNK | 0o777, size: Buffer.byteLength(target), nlink: 1 };
}

const KIND_BITS = { file: 0o100000, dir: S_IFDIR, symlink: 0o120000 } as const;

/**
 * A peer's entry as its log reported it (its bytes are on the peer). Writable: changes go
 * there as jobs; on a read-only mount the write bits are cleared.
 */
export function fromEntry(e: Entry, writable = true): FuseStat {
  const type = KIND_BITS[e.kind];
  const perms = (e.mode & 0o7777) || (e.kind === 'dir' ? 0o755 : 0o644);
  return {
    mode: type | (writable ? perms : perms & ~0o222),
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    size: e.kind === 'dir' ? 4096 : e.size,
    nlink: e.kind === 'dir' ? 2 : 1,
    ino: REMOTE_INO_BASE + (e.id % REMOTE_INO_SPAN),
    blksize: 4096,
    blocks: Math.ceil(e.size / 512),
    atime: e.mtime,
    mtime: e.mtime,
    ctime: e.mtime,
    shortLived: true,
  };
}

/** A read-only view of a real file (for /sd/.content/<id>): another inode than the file's own names, so no device number. */
export function readOnly(st: FuseStat): FuseStat {
  return { ...st, mode: st.mode & ~0o222, exact: st.exact && { ...st.exact, dev: 0n }, shortLived: true };
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
