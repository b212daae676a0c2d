// Duplicate content: content ids held by more than one entry, with the bytes that the
// extra copies take.
import type { Db } from './db/database.js';
import { toEntry, type Entry } from './entries.js';

export interface DuplicateGroup {
  contentId: string;
  size: number;
  entries: Entry[];
  /** Bytes taken by all copies but one. */
  wastedBytes: number;
}

export function findDuplicates(db: Db, options: { deviceId?: string; limit?: number } = {}): DuplicateGroup[] {
  const filter = options.deviceId ? 'AND device_id = ?' : '';
  const args: Array<string | number> = options.deviceId ? [options.deviceId] : [];
  const groups = db
    .prepare(`SELECT content_id AS contentId, max(size) AS size, count(*) AS n FROM entries
              WHERE content_id IS NOT NULL AND kind = 'file' ${filter}
              GROUP BY content_id HAVING n > 1 ORDER BY max(size) * (count(*) - 1) DESC, content_id LIMIT ?`)
    .all(...args, options.limit ?? -1) as Array<{ contentId: string; size: number; n: number }>;
  const members = db.prepare(`SELECT * FROM entries WHERE content_id = ? AND kind = 'file' ${filter} ORDER BY id`);
  return groups.map((g) => ({
    contentId: g.contentId,
    size: g.size,
    entries: (members.all(g.contentId, ...args) as Parameters<typeof toEntry>[0][]).map(toEntry),
    wastedBytes: g.size * (g.n - 1),
  }));
}
