// What a content's bytes say (content_extracts, migration 17): its kind by bytes, its text
// and its photo or media metadata, one row per content id, full-text indexed. This device
// extracts from its own files (indexer/extract-phase.ts); the row also goes to its log,
// and peers store what their logs bring: a content's extract is the same wherever its
// bytes are, and carrying it is far cheaper than fetching the bytes to extract again.
import type { Db } from '../db/database.js';
import type { Extracted } from '../extract/extract.js';
import { kindOfMime } from '../kinds.js';

/**
 * The extractors' version: a content extracted by an older one is extracted again (and
 * a peer's extract replaces a held one only when it is newer).
 */
export const EXTRACT_VERSION = 1;
/** The most text one extract may carry in a log (the local cap is config.extractTextBytes). */
export const MAX_EXTRACT_TEXT_BYTES = 1024 * 1024;
/** The most its metadata may take as JSON in a log. */
export const MAX_EXTRACT_META_BYTES = 16 * 1024;

/**
 * An extract's metadata: what is known of a photo, a recording or a document besides its
 * text (the extractors' own fields), and why its bytes could not be parsed (status 'failed').
 */
export type ExtractMeta = Pick<Extracted, 'takenAt' | 'width' | 'height' | 'durationMs' | 'camera' | 'gps' | 'values' | 'textTruncated'> & { error?: string };

/** One content's extract as the log carries it. */
export interface ContentExtract {
  contentId: string;
  version: number;
  status: 'ok' | 'failed';
  mime: string | null;
  text: string | null;
  meta: ExtractMeta;
}

const META_NUMBERS = ['takenAt', 'width', 'height', 'durationMs'] as const;

/** Metadata from a log or the outbox, checked field by field; throws on anything else. */
export function parseExtractMeta(json: string): ExtractMeta {
  const raw = JSON.parse(json) as unknown;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('extract metadata is not an object');
  const x = raw as Record<string, unknown>;
  const meta: ExtractMeta = {};
  for (const key of META_NUMBERS) {
    const v = x[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`extract metadata ${key} is not a number`);
    meta[key] = v;
  }
  for (const key of ['camera', 'error'] as const) {
    const v = x[key];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw new Error(`extract metadata ${key} is not text`);
    meta[key] = v;
  }
  for (const key of ['gps', 'textTruncated'] as const) {
    const v = x[key];
    if (v === undefined) continue;
    if (typeof v !== 'boolean') throw new Error(`extract metadata ${key} is not true or false`);
    meta[key] = v;
  }
  if (x.values !== undefined) {
    if (!Array.isArray(x.values) || !x.values.every((v) => typeof v === 'string')) throw new Error('extract metadata values are not a list of text');
    meta.values = x.values as string[];
  }
  return meta;
}

/** The words of the metadata a search matches: camera and the other values. */
function metaWords(meta: ExtractMeta): string | null {
  const words = [meta.camera, ...(meta.values ?? [])].filter((w): w is string => !!w);
  return words.length ? words.join('\n') : null;
}

interface ExtractRow {
  content_id: string;
  version: number;
  status: 'ok' | 'failed';
  mime: string | null;
  text: string | null;
  taken_at: number | null;
  width: number | null;
  height: number | null;
  duration_ms: number | null;
  camera: string | null;
  gps: number | null;
  words: string | null;
  text_truncated: number;
  error: string | null;
}

function toExtract(r: ExtractRow): ContentExtract {
  const meta: ExtractMeta = {};
  if (r.taken_at !== null) meta.takenAt = r.taken_at;
  if (r.width !== null) meta.width = r.width;
  if (r.height !== null) meta.height = r.height;
  if (r.duration_ms !== null) meta.durationMs = r.duration_ms;
  if (r.camera !== null) meta.camera = r.camera;
  if (r.gps !== null) meta.gps = r.gps === 1;
  const values = r.words?.split('\n').filter((w) => w !== r.camera);
  if (values?.length) meta.values = values;
  if (r.text_truncated) meta.textTruncated = true;
  if (r.error !== null) meta.error = r.error;
  return { contentId: r.content_id, version: r.version, status: r.status, mime: r.mime, text: r.text, meta };
}

export class ExtractStore {
  private readonly upsert;
  private readonly held;
  private readonly one;
  private readonly setByteKind;
  private readonly outbox;
  private readonly done;

  constructor(private readonly db: Db, private readonly localDeviceId: string) {
    this.upsert = db.prepare(`INSERT INTO content_extracts (content_id, version, status, mime, kind_class, taken_at, width, height, duration_ms, camera, gps, words, text, text_truncated, error, extracted_by, extracted_at)
                              VALUES (@contentId, @version, @status, @mime, @kindClass, @takenAt, @width, @height, @durationMs, @camera, @gps, @words, @text, @textTruncated, @error, @by, @at)
                              ON CONFLICT (content_id) DO UPDATE SET version = excluded.version, status = excluded.status, mime = excluded.mime, kind_class = excluded.kind_class,
                                taken_at = excluded.taken_at, width = excluded.width, height = excluded.height, duration_ms = excluded.duration_ms, camera = excluded.camera,
                                gps = excluded.gps, words = excluded.words, text = excluded.text, text_truncated = excluded.text_truncated, error = excluded.error,
                                extracted_by = excluded.extracted_by, extracted_at = excluded.extracted_at`);
    this.held = db.prepare('SELECT version, status FROM content_extracts WHERE content_id = ?');
    this.one = db.prepare('SELECT * FROM content_extracts WHERE content_id = ?');
    this.setByteKind = db.prepare(`UPDATE entries SET byte_kind = ? WHERE content_id = ? AND kind = 'file' AND byte_kind IS NOT ?`);
    this.outbox = db.prepare(`INSERT INTO index_outbox (op, content_id) VALUES ('extract', ?)`);
    this.done = db.prepare('DELETE FROM extract_pending WHERE content_id = ?');
  }

  get(contentId: string): ContentExtract | undefined {
    const row = this.one.get(contentId) as ExtractRow | undefined;
    return row && toExtract(row);
  }

  /**
   * Records what this device's extractors found, and queues it for this device's log: by
   * its content id only, the extract is read when the log takes it (no second copy of the text).
   */
  record(x: ContentExtract): void {
    this.db.transaction(() => {
      this.write(x, this.localDeviceId);
      this.outbox.run(x.contentId);
    })();
  }

  /**
   * Records a peer's extract unless this library holds one as good: as new a version, and
   * parsed unless the peer's failed too. Returns whether it was taken.
   */
  recordFromPeer(x: ContentExtract, deviceId: string): boolean {
    const held = this.held.get(x.contentId) as { version: number; status: string } | undefined;
    if (held && (held.version > x.version || (held.version === x.version && (held.status === 'ok' || x.status === 'failed')))) return false;
    this.write(x, deviceId);
    return true;
  }

  private write(x: ContentExtract, by: string): void {
    const kindClass = kindOfMime(x.mime ?? undefined) ?? null;
    this.upsert.run({
      contentId: x.contentId,
      version: x.version,
      status: x.status,
      mime: x.mime,
      kindClass,
      takenAt: x.meta.takenAt ?? null,
      width: x.meta.width ?? null,
      height: x.meta.height ?? null,
      durationMs: x.meta.durationMs ?? null,
      camera: x.meta.camera ?? null,
      gps: x.meta.gps === undefined ? null : x.meta.gps ? 1 : 0,
      words: metaWords(x.meta),
      text: x.text,
      textTruncated: x.meta.textTruncated ? 1 : 0,
      error: x.meta.error ?? null,
      by,
      at: Date.now(),
    });
    // Every file with these bytes, on any device, takes the kind they say.
    this.setByteKind.run(kindClass, x.contentId, kindClass);
    // Extracted here or by a peer from the same bytes: not to be done again here.
    this.done.run(x.contentId);
  }
}

/**
 * Queues the extracts of every content this device's files hold for its log (a new log
 * starts from a snapshot of the index; the extracts follow it a block at a time, read
 * from the library as they go, never all of their text at once). Returns how many.
 */
export function queueExtractsOf(db: Db, deviceId: string): number {
  return db.prepare(`INSERT INTO index_outbox (op, content_id)
                     SELECT 'extract', content_id FROM content_extracts
                     WHERE content_id IN (SELECT content_id FROM entries WHERE device_id = ? AND kind = 'file' AND content_id IS NOT NULL)`).run(deviceId).changes;
}
