// Names for --on-conflict rename: "report.pdf" becomes "report (1).pdf", then (2)...
import path from 'node:path';
import { exists } from '../fs-stat.js';

/** The n-th alternative of a file name: "name (n).ext" (dot files and folders get " (n)" at the end). */
export function numberedName(name: string, n: number): string {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return `${name} (${n})`;
  return `${name.slice(0, dot)} (${n})${name.slice(dot)}`;
}

/** The first "name (n).ext" next to dst that does not exist (and is not in `taken`). */
export function freeName(dst: string, taken: ReadonlySet<string> = new Set()): string {
  const dir = path.dirname(dst);
  const name = path.basename(dst);
  for (let n = 1; ; n++) {
    const candidate = path.join(dir, numberedName(name, n));
    if (!taken.has(candidate) && !exists(candidate)) return candidate;
  }
}

/**
 * For --on-conflict rename: walks "name (1).ext", "name (2).ext"... and returns the
 * first free one, or the first one that already holds the same content (`same` says),
 * so running the same copy again does not make another copy.
 */
export function renameTarget(dst: string, same: (candidate: string) => boolean, taken: ReadonlySet<string> = new Set()): { path: string; identical: boolean } {
  const dir = path.dirname(dst);
  const name = path.basename(dst);
  for (let n = 1; ; n++) {
    const candidate = path.join(dir, numberedName(name, n));
    if (taken.has(candidate)) continue;
    if (!exists(candidate)) return { path: candidate, identical: false };
    if (same(candidate)) return { path: candidate, identical: true };
  }
}
