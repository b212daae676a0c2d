// Runs a parsed search over the library: FTS5 on names plus SQL filters, newest first
// when there are no words, best match first when there are.
import { SdError } from '../../errors.js';
import type { Db } from '../db/database.js';
import { toEntry, type Entry } from '../entries.js';
import { listLocations } from '../locations.js';
import { ENTRY_KINDS, KIND_EXTENSIONS, ftsExpression, type SearchQuery } from './query.js';

export interface SearchOptions {
  limit: number;
  deviceId?: string;
}

export function searchEntries(db: Db, q: SearchQuery, options: SearchOptions): Entry[] {
  const where: string[] = ['e.parent_id IS NOT NULL'];
  const params: Array<string | number> = [];
  const fts = ftsExpression(q.words);
  if (q.words.length > 0 && !fts) return [];

  const kindClauses: string[] = [];
  for (const kind of q.kinds) {
    const entryKind = ENTRY_KINDS[kind];
    if (entryKind) {
      kindClauses.push('e.kind = ?');
      params.push(entryKind);
    } else {
      const exts = KIND_EXTENSIONS[kind] ?? [];
      kindClauses.push(`(e.kind = 'file' AND (${exts.map(() => 'lower(e.name) LIKE ?').join(' OR ')}))`);
      params.push(...exts.map((x) => `%.${x}`));
    }
  }
  if (kindClauses.length) where.push(`(${kindClauses.join(' OR ')})`);
  if (q.extensions.length) {
    where.push(`(${q.extensions.map(() => 'lower(e.name) LIKE ?').join(' OR ')})`);
    params.push(...q.extensions.map((x) => `%.${x}`));
  }
  for (const s of q.sizes) {
    where.push(`(CASE e.kind WHEN 'dir' THEN e.aggregate_size ELSE e.size END) ${s.op} ?`);
    params.push(s.bytes);
  }
  for (const m of q.modified) {
    where.push(`e.mtime ${m.op} ?`);
    params.push(m.ms);
  }
  if (q.locations.length) {
    const all = listLocations(db, options.deviceId);
    const ids = q.locations.map((name) => {
      const l = all.find((x) => x.name === name);
      if (!l) throw new SdError('NOT_FOUND', `in:${name}: no location named '${name}'; 'sd location ls' lists them`);
      return l.id;
    });
    where.push(`e.location_id IN (${ids.map(() => '?').join(',')})`);
    params.push(...ids);
  }
  if (options.deviceId) {
    where.push('e.device_id = ?');
    params.push(options.deviceId);
  }
  const sql = fts
    ? `SELECT e.* FROM search JOIN entries e ON e.id = search.rowid WHERE search MATCH ? AND ${where.join(' AND ')} ORDER BY search.rank LIMIT ?`
    : `SELECT e.* FROM entries e WHERE ${where.join(' AND ')} ORDER BY e.mtime DESC LIMIT ?`;
  const args = fts ? [fts, ...params, options.limit] : [...params, options.limit];
  return (db.prepare(sql).all(...args) as Parameters<typeof toEntry>[0][]).map(toEntry);
}
