// Where deleted files go: `<location>/.sd-trash/<time>/<path in the location>`. Shared by
// sd rm (the delete action), the mount's guarded unlink and the guardian's trash sweep.
import fs from 'node:fs';
import path from 'node:path';
import { freeName } from './conflict.js';
import { tryFs } from './errno.js';

export const TRASH_FOLDER = '.sd-trash';

/** A trash folder name for now: sortable, safe in file names. */
export function trashStamp(now = new Date()): string {
  return now.toISOString().replace(/:/g, '-');
}

/** The trash folder of one delete (all its targets share it). */
export function trashRootOf(locationRoot: string, stamp: string): string {
  return path.join(locationRoot, TRASH_FOLDER, stamp);
}

/** Where a path of the location (relative, '/'-separated) goes in that trash folder. */
export function trashPathOf(locationRoot: string, rel: string, stamp: string): string {
  return path.join(trashRootOf(locationRoot, stamp), ...rel.split('/'));
}

/**
 * Moves a file into the trash at once (one rename(2): the trash is on the location's file
 * system), never over something trashed before under the same name. Returns where it went.
 */
export function moveToTrash(abs: string, dst: string, what: string): string {
  const final = fs.existsSync(dst) ? freeName(dst) : dst;
  tryFs(`create the trash folder of ${what}`, () => fs.mkdirSync(path.dirname(final), { recursive: true }));
  tryFs(`move ${what} to the trash`, () => fs.renameSync(abs, final));
  return final;
}

/** Removes the folders above a trashed path that are empty now, up to its time folder, leaving the rest of the trash as it is. */
export function pruneTrashFolders(trashed: string, locationRoot: string): void {
  const trash = path.join(locationRoot, TRASH_FOLDER);
  for (let dir = path.dirname(trashed); dir.startsWith(trash + path.sep); dir = path.dirname(dir)) {
    try {
      fs.rmdirSync(dir);
    } catch {
      return;
    }
  }
}
