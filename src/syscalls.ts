// File system calls Node has no binding for, from sdfs's native addon (the same one that
// serves the mount, src/fuse/native): mknod for fifos, sockets and device nodes, times to
// the nanosecond, rename with RENAME_NOREPLACE / RENAME_EXCHANGE, and punching a hole in
// a file (fallocate); and giving freed heap back to the system (malloc_trim). Each throws an error
// shaped like Node's own (code, errno, syscall, path) so callers handle both alike.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SdError } from './errors.js';

const ADDON = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'fuse', 'native', 'build', 'Release', 'sdfuse.node');

interface Calls {
  mknod(p: string, mode: number, dev: number): number;
  utimens(p: string, atimeS: number, atimeNs: number, mtimeS: number, mtimeNs: number): number;
  rename(from: string, to: string, flags: number): number;
  punchHole(fd: number, offset: number, length: number): number;
  trimMemory(): number;
}

let addon: unknown;

/** The native addon (loaded once); built by `npm run setup`. */
export function nativeAddon<T>(): T {
  if (addon) return addon as T;
  if (!fs.existsSync(ADDON)) throw new SdError('IO', `sdfs's native addon is not built (${ADDON}); run 'npm run setup'`);
  addon = createRequire(import.meta.url)(ADDON);
  return addon as T;
}

const NAMES = new Map(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

function check(errno: number, syscall: string, p: string, dest?: string): void {
  if (errno === 0) return;
  const code = NAMES.get(errno) ?? 'EIO';
  throw Object.assign(new Error(`${code}: ${syscall} '${p}'${dest ? ` -> '${dest}'` : ''}`), { code, errno: -errno, syscall, path: p, dest });
}

export function mknodSync(p: string, mode: number, dev: number): void {
  check(nativeAddon<Calls>().mknod(p, mode, dev), 'mknod', p);
}

/** A time to the nanosecond: seconds since the epoch and nanoseconds (or UTIME_NOW / UTIME_OMIT). */
export interface Timespec {
  s: number;
  ns: number;
}

export const UTIME_NOW = (1 << 30) - 1;
export const UTIME_OMIT = (1 << 30) - 2;

/** Sets a path's times exactly, on a link itself (lutimes to the nanosecond). */
export function lutimesNsSync(p: string, atime: Timespec, mtime: Timespec): void {
  check(nativeAddon<Calls>().utimens(p, atime.s, atime.ns, mtime.s, mtime.ns), 'utimensat', p);
}

export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

export function renameSync2(from: string, to: string, flags: number): void {
  check(nativeAddon<Calls>().rename(from, to, flags), 'renameat2', from, to);
}

/** A time in ms (fractions kept to the µs) as a Timespec. */
export function timespecOfMs(ms: number): Timespec {
  const s = Math.floor(ms / 1000);
  return { s, ns: Math.min(999_999_999, Math.round((ms - s * 1000) * 1e6)) };
}

/** Frees [offset, offset+length) of an open file, its size kept (reads give zeros there). */
export function punchHoleSync(fd: number, offset: number, length: number, p: string): void {
  check(nativeAddon<Calls>().punchHole(fd, offset, length), 'fallocate', p);
}

/**
 * Gives the heap pages malloc keeps free back to the system (malloc_trim): after start-up
 * work whose memory was freed but stayed resident. Returns whether any went back.
 */
export function trimMemory(): boolean {
  return nativeAddon<Calls>().trimMemory() === 1;
}
