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
  /** Give each result found by what its file holds a few words of that text around the match (costs a read of the text per result). */
  snippets?: boolean;
  deviceId?: string;
  /** The content ids the Data Guardian counts at risk (for is:at-risk), all at once: asked outside any transaction of the search, as it writes the library first (the guardian's copy summary). */
  atRisk?: () => readonly string[];
}

/** Where a result's words were found: its name, what it holds, its tags or metadata values, a folder above it. */
export type MatchedBy = 'name' | 'content' | 'tags' | 'folder';

/** One result: the best-ranked file of a content, and the other files with the same bytes the search found. */
export interface SearchHit {
  entry: Entry;
  alsoAt: Entry[];
  /** Where its words were found (absent for a query without words). */
  matched?: MatchedBy;
  /** For a match in what it holds: the words around it, the matches in [brackets] (with the snippets option). */
  snippet?: string;
}

export function searchEntries(db: Db, q: SearchQuery, options: SearchOptions): Entry[] {
  const entries: Entry[] = [];
  for (const { row } of matchingRows(db, q, options, options.limit)) {
    entries.push(toEntry(row));
    if (entries.length === options.limit) break;
  }
  return entries;
}

/** Results grouped per content: up to `limit` groups, each with the other copies among the matches. */
export function searchGrouped(db: Db, q: SearchQuery, options: SearchOptions): SearchHit[] {
  const hits: SearchHit[] = [];
  const byContent = new Map<string, SearchHit>();
  // Copies take places in the page: read a few pages' worth, stop at `limit` groups (a
  // source of matches with more rows than groups goes on, for the copies among them).
  for (const { row, matched } of matchingRows(db, q, options, options.limit * 4, () => hits.length >= options.limit)) {
    const entry = toEntry(row);
    const same = entry.kind === 'file' && entry.contentId ? byContent.get(entry.contentId) : undefined;
    if (same) {
      same.alsoAt.push(entry);
      continue;
    }
    if (hits.length === options.limit) continue;
    const hit: SearchHit = { entry, alsoAt: [], ...(matched && { matched }) };
    hits.push(hit);
    if (entry.kind === 'file' && entry.contentId) byContent.set(entry.contentId, hit);
  }
  if (options.snippets) addSnippets(db, ftsExpression(q), hits);
  return hits;
}

/** The words around a content match, for the results found by what they hold (only those: the text is read for each). */
function addSnippets(db: Db, fts: string | undefined, hits: SearchHit[]): void {
  if (!fts) return;
  const snippet = db.prepare(`SELECT snippet(content_search, -1, '[', ']', '…', 12) FROM content_search
                              WHERE content_search MATCH ? AND rowid = (SELECT id FROM content_extracts WHERE content_id = ?)`).pluck();
  for (const hit of hits) {
    if (hit.matched !== 'content' || !hit.entry.contentId) continue;
    const text = snippet.get(fts, hit.entry.contentId) as string | undefined;
    if (text) hit.snippet = text.replace(/\s+/g, ' ').trim();
  }
}

type Row = Parameters<typeof toEntry>[0];

/** The query's filters (but dates taken: see takenSql) as SQL on entries `e`; every one must hold. */
function filterSql(db: Db, q: SearchQuery, fts: string | undefined, options: SearchOptions): { where: string[]; params: Array<string | number> } {
  const where: string[] = ['e.parent_id IS NOT NULL'];
  const params: Array<string | number> = [];
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
  for (const kind of q.notKinds) where.push(`NOT coalesce(${kindClause(kind, params)}, 0)`);
  if (q.extensions.length) where.push(extensionClause(q.extensions, params));
  for (const s of q.sizes) {
    where.push(`(CASE e.kind WHEN 'dir' THEN e.aggregate_size ELSE e.size END) ${s.op} ?`);
    params.push(s.bytes);
  }
  for (const m of q.modified) {
    where.push(`e.mtime ${m.op} ?`);
    params.push(m.ms);
  }
  for (const d of q.durations) {
    // Few files play; each candidate's extract is one lookup by its content id.
    where.push(`EXISTS (SELECT 1 FROM content_extracts d WHERE d.content_id = e.content_id AND d.duration_ms ${d.op} ?)`);
    params.push(d.ms);
  }
  for (const c of q.copies) {
    // Devices holding the content; a file without a content id has only itself.
    where.push(`(CASE WHEN e.content_id IS NULL THEN 1 ELSE (SELECT count(DISTINCT o.device_id) FROM entries o WHERE o.content_id = e.content_id AND o.kind = 'file') END) ${c.op} ?`);
    params.push(c.n);
  }
  if (q.atRisk) {
    if (!options.atRisk) throw new SdError('USAGE', 'is:at-risk needs the Data Guardian, which this search was not given');
    // Asked before the temporary table's transaction, not in it: the guardian brings its copy
    // summary up to date first (a write to the library, in a transaction of its own that takes
    // the write lock before it reads). Nested in a deferred transaction that had read, another
    // process writing the library made SQLite refuse that write at once.
    const atRisk = options.atRisk();
    db.exec('CREATE TEMP TABLE IF NOT EXISTS search_at_risk (content_id TEXT PRIMARY KEY) WITHOUT ROWID; DELETE FROM temp.search_at_risk;');
    const add = db.prepare('INSERT OR IGNORE INTO temp.search_at_risk VALUES (?)');
    db.transaction(() => {
      for (const id of atRisk) add.run(id);
    })();
    where.push('e.content_id IN (SELECT content_id FROM temp.search_at_risk)');
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
  return { where, params };
}

/**
 * The matching entries, best first, at most `rows` of them: by name; then by what their
 * content holds (extracted text and metadata); then by their tags and metadata values;
 * then below folders whose names match. Each later source is asked only while the page
 * has room, and an entry found before is not given again.
 */
function* matchingRows(db: Db, q: SearchQuery, options: SearchOptions, rows: number, enough = () => false): Generator<{ row: Row; matched?: MatchedBy }> {
  const fts = ftsExpression(q);
  // Words that cannot match anything (punctuation only): nothing matches.
  if ((q.words.length > 0 || q.anyOf.length > 0) && !fts) return;
  const filters = filterSql(db, q, fts, options);
  const where = filters.where.join(' AND ');
  if (!fts) {
    // With a date taken and no words, the photos of those dates lead, the last taken first
    // (walking every photo newest changed first took 1.2 s for "photos taken in 2016").
    const sql = q.taken.length
      ? `SELECT e.* FROM content_extracts t INDEXED BY content_extracts_by_taken CROSS JOIN entries e INDEXED BY entries_by_content ON e.content_id = t.content_id
         WHERE ${takenSql(q, 't')} AND ${where} ORDER BY t.taken_at DESC LIMIT ?`
      : `SELECT e.* FROM entries e WHERE ${where} ORDER BY e.mtime DESC LIMIT ?`;
    for (const row of db.prepare(sql).iterate(...takenParams(q), ...filters.params, rows) as Iterable<Row>) yield { row };
    return;
  }
  const seen = new Set<number>();
  for (const sourceOf of wordSources(db, q, fts, where)) {
    const left = rows - seen.size;
    if (left <= 0 || enough()) return;
    const source = sourceOf();
    for (const row of db.prepare(source.sql).iterate(...source.params, ...takenParams(q), ...filters.params, left) as Iterable<Row>) {
      if (seen.has(row.id)) continue;
      seen.add(row.id);
      yield { row, matched: source.matched };
    }
  }
}

/**
 * The query's dates taken as SQL on an extract `alias` (true without any): each source
 * applies them where they are cheapest.
 */
function takenSql(q: SearchQuery, alias: string): string {
  return q.taken.length ? q.taken.map((t) => `${alias}.taken_at ${t.op} ?`).join(' AND ') : '1';
}

function takenParams(q: SearchQuery): number[] {
  return q.taken.map((t) => t.ms);
}

/** Dates taken for a source whose rows have no extract at hand: the contents of those dates, through their index (by date, with the content id). */
function takenOfEntry(q: SearchQuery): string {
  return q.taken.length ? `e.content_id IN (SELECT t.content_id FROM content_extracts t WHERE ${takenSql(q, 't')})` : '1';
}

type WordSource = { matched: MatchedBy; sql: string; params: Array<string | number> };

/**
 * Where the words of a query are looked for, in the order their matches rank; each made
 * only when asked (a page the names fill costs no look at the text or the tags).
 */
function wordSources(db: Db, q: SearchQuery, fts: string, filters: string): Array<() => WordSource> {
  const where = `${takenOfEntry(q)} AND ${filters}`;
  // Ranking scores every match: for a word most names hold (img, 2024), the newest entries
  // first instead (the index walks its lists backwards), which costs what the page costs.
  const order = (table: 'search' | 'content_search') => (isBroad(db, table, fts) ? `${table}.rowid DESC` : `${table}.rank, e.mtime DESC`);
  return [
    // CROSS JOIN: the name index leads. With entries leading (an index by kind and time looks
    // cheap to the planner), every row ran the whole MATCH again: 38 s at 1M entries.
    () => ({ matched: 'name', sql: `SELECT e.* FROM search CROSS JOIN entries e ON e.id = search.rowid WHERE search MATCH ? AND ${where} ORDER BY ${order('search')} LIMIT ?`, params: [fts] }),
    // What the bytes say, once per content: every file holding it. INDEXED BY: with a kind
    // filter the planner walked every file of that kind per match instead (75 s at 50k files).
    () => ({
      matched: 'content',
      sql: `SELECT e.* FROM content_search CROSS JOIN content_extracts x ON x.id = content_search.rowid CROSS JOIN entries e INDEXED BY entries_by_content ON e.content_id = x.content_id
            WHERE content_search MATCH ? AND e.kind = 'file' AND ${takenSql(q, 'x')} AND ${filters} ORDER BY ${order('content_search')} LIMIT ?`,
      params: [fts],
    }),
    // Tags and metadata values: few entries have them; each word must start a word of one.
    () => notesSource(db, fts, where),
    // Below folders whose names match (a word of the path): the newest first.
    () => ({
      matched: 'folder',
      sql: `SELECT e.* FROM entries e WHERE e.parent_id IN
              (SELECT c.descendant FROM entry_closure c WHERE c.ancestor IN
                 (SELECT f.id FROM search CROSS JOIN entries f ON f.id = search.rowid WHERE search MATCH ? AND f.kind = 'dir' LIMIT ${PATH_FOLDERS_MAX}))
            AND ${where} ORDER BY e.mtime DESC LIMIT ?`,
      params: [fts],
    }),
  ];
}

/** Folders whose names match that a search looks below (a word every folder has would take in everything). */
const PATH_FOLDERS_MAX = 200;

/**
 * Entries whose tags and metadata values (together) hold the words, through a small
 * full-text table of them (temp.search_notes, see refreshNotes), so they match as names do.
 */
function notesSource(db: Db, fts: string, where: string): WordSource {
  refreshNotes(db);
  return {
    matched: 'tags',
    sql: `SELECT e.* FROM temp.search_notes CROSS JOIN entries e ON e.id = search_notes.rowid WHERE search_notes MATCH ? AND ${where} ORDER BY e.mtime DESC LIMIT ?`,
    params: [fts],
  };
}

/** What the notes table was made from, per connection: remade when the tags or values changed. */
const notesMadeFrom = new WeakMap<Db, string>();

/**
 * Makes temp.search_notes (entry id → its tag names and metadata values) unless it is as
 * the tags and values are now. Tags and values are few beside names (one entry in
 * thousands has any), so making it costs little, and nothing per entry insert.
 */
function refreshNotes(db: Db): void {
  const signature = db
    .prepare(`SELECT (SELECT count(*) FROM entry_tags) || '/' || (SELECT coalesce(max(hlc), '') FROM tag_ops) || '/' ||
                     (SELECT count(*) FROM meta_ops) || '/' || (SELECT coalesce(max(hlc), '') FROM meta_ops)`)
    .pluck()
    .get() as string;
  if (notesMadeFrom.get(db) === signature) return;
  db.transaction(() => {
    db.exec(`CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_notes USING fts5 (words, tokenize = 'unicode61', columnsize = 0);
             DELETE FROM temp.search_notes;
             INSERT INTO temp.search_notes (rowid, words)
               SELECT entry_id, group_concat(word, ' ') FROM (
                 SELECT et.entry_id AS entry_id, t.name AS word FROM entry_tags et JOIN tags t ON t.id = et.tag_id
                 UNION ALL
                 SELECT e.id, m.value FROM meta_ops m JOIN entries e ON e.device_id = m.device_id AND e.remote_id = m.entry_ref WHERE m.value IS NOT NULL
                 UNION ALL
                 SELECT e.id, m.value FROM meta_ops m JOIN entries e ON e.id = m.entry_ref AND e.device_id = m.device_id WHERE m.value IS NOT NULL AND e.remote_id IS NULL
               ) GROUP BY entry_id;`);
  })();
  notesMadeFrom.set(db, signature);
}

/** More names match than ranking them is worth (measured: ranking 450,000 matches took 0.4 s, 2,000 take 2 ms). */
const BROAD_MATCHES = 2000;

function isBroad(db: Db, table: 'search' | 'content_search', fts: string): boolean {
  const count = db.prepare(`SELECT count(*) FROM (SELECT 1 FROM ${table} WHERE ${table} MATCH ? LIMIT ?)`).pluck();
  // The words whole first: a whole word's list is read lazily, a prefix's lists are merged
  // in full first (measured: "img" 0.3 ms, "img"* 20 ms at 1M names). Whole words are
  // fewer matches, so broad whole means broad (not so with NOT: fewer excluded).
  const whole = fts.replace(/"\*/g, '"');
  if (whole !== fts && !fts.includes(' NOT ') && (count.get(whole, BROAD_MATCHES + 1) as number) > BROAD_MATCHES) return true;
  return (count.get(fts, BROAD_MATCHES + 1) as number) > BROAD_MATCHES;
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
