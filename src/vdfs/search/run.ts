// One entry point for a search typed by a person (sd search, /sd/.search/<query>): the
// sentence parsed against the names this library has (its devices, locations, folders and
// tags), then run over every device's entries, grouped per content.
import type { Db } from '../db/database.js';
import { listDevices } from '../device.js';
import { listLocations } from '../locations.js';
import { parsePlain, type ParsedSearch, type PlainContext } from './plain.js';
import { foldersNamed, searchGrouped, type SearchHit, type SearchOptions } from './search.js';

/** What the parser may recognise in a sentence: this library's names. */
export function plainContext(db: Db, now = Date.now()): PlainContext {
  return {
    now,
    devices: listDevices(db).map((d) => ({ slug: d.slug, name: d.name, local: d.isLocal })),
    locations: [...new Set(listLocations(db).map((l) => l.name))],
    tags: db.prepare('SELECT name FROM tags ORDER BY name').pluck().all() as string[],
    folderExists: (name) => foldersNamed(db, name, { limit: 1 }).length > 0,
  };
}

export interface SearchRun extends ParsedSearch {
  hits: SearchHit[];
}

/** Parses a sentence (or filters) and runs it: up to `limit` results, one per content (options: see SearchOptions). */
export function runSearch(db: Db, text: string, limit: number, options: Pick<SearchOptions, 'atRisk' | 'snippets'> = {}): SearchRun {
  const parsed = parsePlain(text, plainContext(db));
  return { ...parsed, hits: searchGrouped(db, parsed.query, { limit, ...options }) };
}
