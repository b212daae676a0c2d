// Stat calls that answer "not there" instead of throwing: for checks where a missing path
// is an ordinary answer (conflicts, moved folders, watches), not an error.
import fs from 'node:fs';

/** The path's own stats (a symlink is not followed), or undefined when it cannot be read. */
export function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

/** The stats of what the path leads to (symlinks followed), or undefined. */
export function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch {
    return undefined;
  }
}

/** Whether anything is at the path, a dangling symlink included. */
export function exists(p: string): boolean {
  return lstatOrUndefined(p) !== undefined;
}
