// Runs a structured search over the library, this device's entries and every mirror: FTS5
// on names plus SQL filters; best match first, then newest (newest first without words, or
// when a word is in so many names that ranking them would cost more than it tells);
// results holding the same content are grouped, the best of them first.
import { SdError } from '../../errors.js';
import type { Db } from '../db/database.js';
import { listDevices } from '../device.js';
import { toEntry, type Entry } from '../entries.js';
import { listLocations } from '../locations.js';
import { ENTRY_KINDS, ftsAny, ftsExpression, ftsPhrase, type SearchQuery } from './query.js';

export interface SearchOptions {
  limit: number;
  deviceId?: string;
}

/** One result: the best-ranked file of a content, and the other files with the same bytes the search found. */
export interface SearchHit {
  entry: Entry;
  alsoAt: Entry[];
}

export function searchEntries(db: Db, q: SearchQuery, options: SearchOptions): Entry[] {
  const built = buildSql(db, q, options);
  if (!built) return [];
  return (db.prepare(built.sql).all(...built.params, options.limit) as Parameters<typeof toEntry>[0][]).map(toEntry);
}

/** Results grouped per content: up to `limit` groups, each with the other copies among the matches. */
export function searchGrouped(db: Db, q: SearchQuery, options: SearchOptions): SearchHit[] {
  const built = buildSql(db, q, options);
  if (!built) return [];
  const hits: SearchHit[] = [];
  const byContent = new Map<string, SearchHit>();
  // Copies take places in the page: read a few pages' worth, stop at `limit` groups.
  for (const row of db.prepare(built.sql).iterate(...built.params, options.limit * 4) as Iterable<Parameters<typeof toEntry>[0]>) {
    const entry = toEntry(row);
    const same = entry.kind === 'file' && entry.contentId ? byContent.get(entry.contentId) : undefined;
    if (same) {
      same.alsoAt.push(entry);
      continue;
    }
    if (hits.length === options.limit) continue;
    const hit = { entry, alsoAt: [] };
    hits.push(hit);
    if (entry.kind === 'file' && entry.contentId) byContent.set(entry.contentId, hit);
  }
  return hits;
}

function buildSql(db: Db, q: SearchQuery, options: SearchOptions): { sql: string; params: Array<string | number> } | undefined {
  const where: string[] = ['e.parent_id IS NOT NULL'];
  const params: Array<string | number> = [];
  const fts = ftsExpression(q);
  // Words that cannot match anything (punctuation only): nothing matches.
  if ((q.words.length > 0 || q.anyOf.length > 0) && !fts) return undefined;
  if (!fts && q.without.length > 0) {
    const none = ftsAny(q.without);
    if (none) {
      where.push('e.id NOT IN (SELECT rowid FROM search WHERE search MATCH ?)');
      params.push(none);
    }
  }

  const kindClauses = q.kinds.map((kind) => kindClause(kind, params));
  if (q.kindExtensions.length) kindClauses.push(extensionClause(q.kindExtensions, params));
  if (kindClauses.length) where.push(`(${kindClauses.join(' OR ')})`);
  for (const kind of q.notKinds) where.push(`NOT ${kindClause(kind, params)}`);
  if (q.extensions.length) where.push(extensionClause(q.extensions, params));
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
    const ids = q.locations.flatMap((name) => {
      const named = all.filter((x) => x.name.toLowerCase() === name.toLowerCase());
      if (named.length === 0) throw new SdError('NOT_FOUND', `in:${name}: no location named '${name}'; 'sd location ls' lists them`);
      return named.map((l) => l.id);
    });
    where.push(`e.location_id IN (${ids.map(() => '?').join(',')})`);
    params.push(...ids);
  }
  for (const folder of q.folders) {
    // Below a folder of that name: its id found through the name index, then the closure.
    where.push(`e.id IN (SELECT c.descendant FROM entry_closure c JOIN entries f ON f.id = c.ancestor
                         WHERE c.depth > 0 AND f.kind = 'dir' AND lower(f.name) = lower(?)
                           AND f.id IN (SELECT rowid FROM search WHERE search MATCH ?))`);
    params.push(folder, ftsPhrase(folder));
  }
  const devices = devicesNamed(db);
  if (q.devices.length) {
    const ids = q.devices.map((d) => devices(d, 'on'));
    where.push(`e.device_id IN (${ids.map(() => '?').join(',')})`);
    params.push(...ids);
  }
  if (q.onlyOn.length) {
    const ids = q.onlyOn.map((d) => devices(d, 'only on'));
    const list = ids.map(() => '?').join(',');
    where.push(`e.device_id IN (${list}) AND (e.content_id IS NULL OR NOT EXISTS (SELECT 1 FROM entries o WHERE o.content_id = e.content_id AND o.kind = 'file' AND o.device_id NOT IN (${list})))`);
    params.push(...ids, ...ids);
  }
  if (q.notOn.length) {
    const ids = q.notOn.map((d) => devices(d, 'not on'));
    const list = ids.map(() => '?').join(',');
    where.push(`e.device_id NOT IN (${list}) AND (e.content_id IS NULL OR NOT EXISTS (SELECT 1 FROM entries o WHERE o.content_id = e.content_id AND o.kind = 'file' AND o.device_id IN (${list})))`);
    params.push(...ids, ...ids);
  }
  for (const tag of q.tags) {
    where.push('EXISTS (SELECT 1 FROM entry_tags et JOIN tags t ON t.id = et.tag_id WHERE et.entry_id = e.id AND t.name = ?)');
    params.push(tag);
  }
  if (options.deviceId) {
    where.push('e.device_id = ?');
    params.push(options.deviceId);
  }
  if (!fts) return { sql: `SELECT e.* FROM entries e WHERE ${where.join(' AND ')} ORDER BY e.mtime DESC LIMIT ?`, params };
  // Ranking scores every match: for a word most names hold (img, 2024), the newest entries
  // first instead (the index walks its lists backwards), which costs what the page costs.
  const order = isBroad(db, fts) ? 'search.rowid DESC' : 'search.rank, e.mtime DESC';
  // CROSS JOIN: the name index leads. With entries leading (an index by kind and time looks
  // cheap to the planner), every row ran the whole MATCH again: 38 s at 1M entries.
  return { sql: `SELECT e.* FROM search CROSS JOIN entries e ON e.id = search.rowid WHERE search MATCH ? AND ${where.join(' AND ')} ORDER BY ${order} LIMIT ?`, params: [fts, ...params] };
}

/** More names match than ranking them is worth (measured: ranking 450,000 matches took 0.4 s, 2,000 take 2 ms). */
const BROAD_MATCHES = 2000;

function isBroad(db: Db, fts: string): boolean {
  return (db.prepare('SELECT count(*) FROM (SELECT 1 FROM search WHERE search MATCH ? LIMIT ?)').pluck().get(fts, BROAD_MATCHES + 1) as number) > BROAD_MATCHES;
}

/**
 * An entry kind (file, dir, symlink) or a kind of file (image, document...: the generated
 * column kind_class, indexed with the time, so a walk newest first sees only that kind).
 */
function kindClause(kind: string, params: Array<string | number>): string {
  params.push(ENTRY_KINDS[kind] ?? kind);
  return ENTRY_KINDS[kind] ? '(e.kind = ?)' : '(e.kind_class = ?)';
}

/** Files with one of these extensions (the generated, indexed column ext). */
function extensionClause(extensions: readonly string[], params: Array<string | number>): string {
  params.push(...extensions);
  return `(e.ext IN (${extensions.map(() => '?').join(', ')}))`;
}

/** A device by slug, name or id (any case); a name no device has is NOT_FOUND, saying which filter named it. */
function devicesNamed(db: Db): (name: string, filter: string) => string {
  let all: ReturnType<typeof listDevices> | undefined;
  return (name, filter) => {
    all ??= listDevices(db);
    const n = name.toLowerCase();
    const device = all.find((d) => d.slug.toLowerCase() === n || d.name.toLowerCase() === n || d.id === name);
    if (!device) throw new SdError('NOT_FOUND', `${filter} ${name}: no device named '${name}'; 'sd devices' lists them`);
    return device.id;
  };
}

/** Folders named so (any case, below a location's root), through the name index: their ids, at most `limit`. */
export function foldersNamed(db: Db, name: string, options: { deviceId?: string; limit: number }): number[] {
  return db
    .prepare(`SELECT e.id FROM search s JOIN entries e ON e.id = s.rowid
              WHERE search MATCH ? AND e.kind = 'dir' AND e.parent_id IS NOT NULL AND lower(e.name) = lower(?)
                AND (? IS NULL OR e.device_id = ?) LIMIT ?`)
    .pluck()
    .all(ftsPhrase(name), name, options.deviceId ?? null, options.deviceId ?? null, options.limit) as number[];
}
