// What the target side of an action looks like before anything is written: free space
// (statfs of the nearest existing folder), the copy throughput measured by past jobs,
// and content ids the target location already holds.
import fs from 'node:fs';
import path from 'node:path';
import type { Db } from '../db/database.js';

/** Throughput assumed when no copy job has been measured yet (bytes/s). */
export const DEFAULT_THROUGHPUT = 200 * 1024 * 1024;
/** Jobs that copied less than this say little about throughput. */
const MIN_MEASURED_BYTES = 16 * 1024 * 1024;

/** The nearest folder at or above abs that exists. */
export function nearestExistingDir(abs: string): string {
  let dir = abs;
  for (;;) {
    try {
      if (fs.statSync(dir).isDirectory()) return dir;
    } catch {
      // not there: look one level up
    }
    const up = path.dirname(dir);
    if (up === dir) return dir;
    dir = up;
  }
}

/** Bytes available to this user on the file system holding abs (or its nearest existing folder). */
export function freeBytes(abs: string): number | null {
  try {
    const s = fs.statfsSync(nearestExistingDir(abs));
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

/** Copy throughput from the last completed copy and move jobs, or the default. */
export function measuredThroughput(db: Db): { bytesPerSec: number; source: 'measured' | 'default' } {
  const rows = db.prepare(`SELECT payload, progress FROM jobs WHERE status = 'completed' AND kind IN ('copy', 'move') AND progress IS NOT NULL ORDER BY id DESC LIMIT 20`).all() as Array<{ payload: string; progress: string }>;
  let bytes = 0;
  let ms = 0;
  for (const row of rows) {
    try {
      const p = JSON.parse(row.progress) as { copiedBytes?: number; copyMs?: number };
      // A job held back by --bwlimit says nothing about how fast the disks are.
      if ((JSON.parse(row.payload) as { bwlimit?: number }).bwlimit) continue;
      if ((p.copiedBytes ?? 0) >= MIN_MEASURED_BYTES && (p.copyMs ?? 0) > 0) {
        bytes += p.copiedBytes!;
        ms += p.copyMs!;
      }
    } catch {
      // a row from an older version: ignore it
    }
  }
  if (bytes === 0 || ms === 0) return { bytesPerSec: DEFAULT_THROUGHPUT, source: 'default' };
  return { bytesPerSec: Math.round(bytes / (ms / 1000)), source: 'measured' };
}

/** Finds an entry of a location holding a content id (not the excluded entry ids). */
export class ContentLookup {
  private readonly stmt;

  constructor(db: Db) {
    this.stmt = db.prepare('SELECT id FROM entries WHERE content_id = ? AND location_id = ? ORDER BY id LIMIT 3');
  }

  holder(contentId: string, locationId: number, exclude: ReadonlySet<number>): number | undefined {
    for (const id of this.stmt.pluck().all(contentId, locationId) as number[]) if (!exclude.has(id)) return id;
    return undefined;
  }
}
