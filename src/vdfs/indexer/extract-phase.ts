// The extraction phase of indexing (content and deep modes, after identity): for each
// content of this device not extracted yet (extract_pending), what one of its files' bytes
// say: kind by bytes, text, photo and media metadata (vdfs/extract/, on a worker thread).
// Written a few at a time, so a killed run resumes with what is left; a file that cannot
// be parsed keeps its name in the index and is counted as a warning.
import fs from 'node:fs';
import path from 'node:path';
import { config } from '../../config.js';
import { log } from '../../log.js';
import { EXTRACT_VERSION, ExtractStore, type ContentExtract } from '../content/extracts.js';
import type { Db } from '../db/database.js';
import type { EntryStore } from '../entries.js';
import { ExtractError, type Extracted } from '../extract/extract.js';
import type { ExtractThread } from '../extract/extract-thread.js';
import type { Location } from '../locations.js';
import { folderPaths } from './identify.js';
import type { WarningList } from './summary.js';

export interface ExtractCounts {
  /** Contents whose bytes were parsed. */
  extracted: number;
  /** Contents whose bytes could not be parsed (each is a warning). */
  failed: number;
}

export interface ExtractPhaseOptions {
  thread: ExtractThread;
  warnings: WarningList;
  /** After each content, with how many are done and were pending at the start. */
  onContent?: (done: number, total: number) => void;
  /** Asked between contents: true stops the phase (what is done is kept). */
  shouldStop?: () => boolean;
}

interface PendingFile {
  seq: number;
  content_id: string;
  parent_id: number;
  name: string;
  size: number;
  mtime: number;
  ext: string | null;
}

// Driven by extract_pending (CROSS JOIN keeps SQLite from reordering): the planner chose to
// walk every entry with a content id instead and probe the pending list, ~90 ms a query at
// 100,000 entries and ~1 s at a million (mirrors included), twice a pass, on the main
// thread, after every new local file. From the pending rows it is their count times the
// files of each content.
const PENDING_OF_LOCATION = `SELECT p.seq, p.content_id, e.parent_id, e.name, e.size, e.mtime, e.ext
                             FROM extract_pending p CROSS JOIN entries e ON e.content_id = p.content_id
                             WHERE p.seq > @after AND e.location_id = @location AND e.kind = 'file'
                             GROUP BY p.seq ORDER BY p.seq LIMIT @limit`;

/** Contents of a location still to be extracted. */
export function countUnextracted(db: Db, locationId: number): number {
  return db.prepare(`SELECT count(*) FROM extract_pending p
                     WHERE EXISTS (SELECT 1 FROM entries e WHERE e.content_id = p.content_id AND e.location_id = ? AND e.kind = 'file')`)
    .pluck().get(locationId) as number;
}

/** Whether any content of this device waits for extraction (a cheap look for the running node). */
export function anyUnextracted(db: Db): boolean {
  return db.prepare('SELECT 1 FROM extract_pending LIMIT 1').get() !== undefined;
}

/** Forgets pending contents no file of this device holds any more (deleted before their turn). */
export function dropOrphanPending(db: Db, deviceId: string): number {
  return db.prepare(`DELETE FROM extract_pending WHERE NOT EXISTS
                       (SELECT 1 FROM entries e WHERE e.content_id = extract_pending.content_id AND e.kind = 'file' AND e.device_id = ?)`).run(deviceId).changes;
}

/** Extracts every pending content of the location (one of its files read for each). */
export async function extractLocation(db: Db, deviceId: string, store: EntryStore, location: Location, options: ExtractPhaseOptions): Promise<ExtractCounts> {
  const counts: ExtractCounts = { extracted: 0, failed: 0 };
  const extracts = new ExtractStore(db, deviceId);
  const next = db.prepare(PENDING_OF_LOCATION);
  const total = options.onContent ? countUnextracted(db, location.id) : 0;
  const dirPath = folderPaths(store, location);
  let done: ContentExtract[] = [];
  const write = () => {
    if (done.length === 0) return;
    const batch = done;
    done = [];
    db.transaction(() => batch.forEach((x) => extracts.record(x)))();
  };
  let lastSeq = 0;
  let seen = 0;
  try {
    for (;;) {
      const rows = next.all({ location: location.id, after: lastSeq, limit: config.extractBatchSize }) as PendingFile[];
      if (rows.length === 0) break;
      for (const row of rows) {
        lastSeq = row.seq;
        if (options.shouldStop?.()) return counts;
        const file = path.join(dirPath(row.parent_id), row.name);
        const extract = await extractIfUnchanged(file, row, options);
        options.onContent?.(++seen, total);
        if (!extract) continue;
        if (extract.status === 'ok') counts.extracted++;
        else counts.failed++;
        done.push(extract);
      }
      write();
    }
  } finally {
    write();
  }
  return counts;
}

/**
 * The extract of one file's content; undefined when the file changed since it was
 * identified (the next index pass gives it a new content id, queued in turn) or is gone.
 */
async function extractIfUnchanged(file: string, row: PendingFile, options: ExtractPhaseOptions): Promise<ContentExtract | undefined> {
  try {
    const st = await fs.promises.stat(file);
    if (st.size !== row.size || st.mtimeMs !== row.mtime) return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') options.warnings.add(file, `not readable (${code ?? String(err)}); not searched by what it holds`);
    return undefined;
  }
  try {
    const x = await options.thread.extract(file, row.ext ?? '', { maxTextBytes: config.extractTextBytes });
    return toContentExtract(row.content_id, x);
  } catch (err) {
    const reason = err instanceof ExtractError ? err.message : `extraction failed (${err instanceof Error ? err.message : String(err)})`;
    log.debug({ op: 'extract', file, err: reason }, 'not parsed');
    options.warnings.add(file, `${reason}; found by its name only`);
    return { contentId: row.content_id, version: EXTRACT_VERSION, status: 'failed', mime: null, text: null, meta: { error: reason.slice(0, 500) } };
  }
}

export function toContentExtract(contentId: string, x: Extracted): ContentExtract {
  const meta: ContentExtract['meta'] = {};
  if (x.takenAt !== undefined && Number.isFinite(x.takenAt)) meta.takenAt = x.takenAt;
  if (x.width !== undefined) meta.width = x.width;
  if (x.height !== undefined) meta.height = x.height;
  if (x.durationMs !== undefined) meta.durationMs = Math.round(x.durationMs);
  if (x.camera) meta.camera = x.camera;
  if (x.gps !== undefined) meta.gps = x.gps;
  if (x.values?.length) meta.values = x.values;
  if (x.textTruncated) meta.textTruncated = true;
  return { contentId, version: EXTRACT_VERSION, status: 'ok', mime: x.mime ?? null, text: x.text || null, meta };
}
