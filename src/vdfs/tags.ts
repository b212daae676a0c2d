// Tags on entries, shared by every device of the library. Each (entry, tag) pair is a
// last-writer-wins register stamped by a hybrid logical clock: `tag_ops` keeps the newest
// operation per pair (removals included), `entry_tags` is what it makes true here.
// Operations made on this device also go to index_outbox, for this device's own log; the
// peers apply them from there (replication/mirror.ts).
import { SdError } from '../errors.js';
import { HlcClock } from '../replication/hlc.js';
import type { Db } from './db/database.js';
import type { Entry } from './entries.js';

/** An entry as every device names it: its owning device and its id there. */
export interface EntryRef {
  device: string;
  entry: number;
}

export interface TagOp {
  target: EntryRef;
  tag: string;
  present: boolean;
  hlc: string;
}

const MAX_TAG_BYTES = 255;

/** A tag is a folder name under /sd/.tags and an item of a comma list in user.sd.tags. */
export function validateTag(raw: string): string {
  const tag = raw.trim();
  if (!tag) throw new SdError('USAGE', 'a tag cannot be empty');
  if (/[,/\x00-\x1f\x7f]/.test(tag)) throw new SdError('USAGE', `tag '${tag}' may not contain ',', '/' or control characters`);
  if (tag === '.' || tag === '..') throw new SdError('USAGE', `'${tag}' is not a tag name`);
  if (Buffer.byteLength(tag) > MAX_TAG_BYTES) throw new SdError('USAGE', `tag '${tag.slice(0, 40)}…' is longer than ${MAX_TAG_BYTES} bytes`);
  return tag;
}

/** Splits "a, b,c" into validated, distinct tags. */
export function parseTagList(text: string): string[] {
  const tags = text.split(',').filter((t) => t.trim() !== '').map(validateTag);
  return [...new Set(tags)];
}

/** How every device names an entry: its owner and the id it has there (shared data is keyed by it). */
export function entryRef(db: Db, localDeviceId: string, entry: Entry): EntryRef {
  if (entry.deviceId === localDeviceId) return { device: entry.deviceId, entry: entry.id };
  const remoteId = db.prepare('SELECT remote_id FROM entries WHERE id = ?').pluck().get(entry.id) as number | null | undefined;
  if (remoteId === null || remoteId === undefined) throw new SdError('NOT_FOUND', `entry ${entry.name} of another device is not in its replicated index`);
  return { device: entry.deviceId, entry: remoteId };
}

export class TagStore {
  private readonly clock: HlcClock;

  constructor(
    private readonly db: Db,
    private readonly localDeviceId: string,
  ) {
    const last = db.prepare('SELECT max(hlc) FROM tag_ops').pluck().get() as string | null;
    this.clock = new HlcClock(localDeviceId, last);
  }

  /** The tags of an entry, sorted. */
  tagsOf(entryId: number): string[] {
    return this.db
      .prepare('SELECT t.name FROM entry_tags et JOIN tags t ON t.id = et.tag_id WHERE et.entry_id = ? ORDER BY t.name')
      .pluck()
      .all(entryId) as string[];
  }

  /** Every tag in use here with the number of entries carrying it. */
  list(): Array<{ tag: string; entries: number }> {
    return this.db
      .prepare('SELECT t.name AS tag, count(*) AS entries FROM tags t JOIN entry_tags et ON et.tag_id = t.id GROUP BY t.id ORDER BY t.name')
      .all() as Array<{ tag: string; entries: number }>;
  }

  /** Ids of the entries carrying a tag (bounded: a listing, not an export). */
  entriesWith(tag: string, limit = 100_000): number[] {
    return this.db
      .prepare('SELECT et.entry_id FROM entry_tags et JOIN tags t ON t.id = et.tag_id WHERE t.name = ? ORDER BY et.entry_id LIMIT ?')
      .pluck()
      .all(tag, limit) as number[];
  }

  add(entry: Entry, tags: readonly string[]): TagOp[] {
    return this.change(entry, tags.map(validateTag), true);
  }

  remove(entry: Entry, tags: readonly string[]): TagOp[] {
    return this.change(entry, tags.map(validateTag), false);
  }

  /** Makes the entry's tags exactly these (setfattr user.sd.tags). */
  set(entry: Entry, tags: readonly string[]): TagOp[] {
    const wanted = new Set(tags.map(validateTag));
    return this.db.transaction(() => {
      const current = this.tagsOf(entry.id);
      return [...this.change(entry, current.filter((t) => !wanted.has(t)), false), ...this.change(entry, [...wanted].filter((t) => !current.includes(t)), true)];
    }).immediate();
  }

  /** Applies an operation from any device; an older one than the register holds changes nothing. */
  apply(op: TagOp): boolean {
    this.clock.observe(op.hlc);
    const held = this.db
      .prepare('SELECT hlc FROM tag_ops WHERE device_id = ? AND entry_ref = ? AND tag = ?')
      .pluck()
      .get(op.target.device, op.target.entry, op.tag) as string | undefined;
    if (held !== undefined && held >= op.hlc) return false;
    this.db
      .prepare('INSERT OR REPLACE INTO tag_ops (device_id, entry_ref, tag, present, hlc) VALUES (?, ?, ?, ?, ?)')
      .run(op.target.device, op.target.entry, op.tag, op.present ? 1 : 0, op.hlc);
    const entryId = this.localId(op.target);
    if (entryId !== undefined) this.materialize(entryId, op.tag, op.present);
    return true;
  }

  /**
   * Applies and queues this device's operations in one transaction that takes the write lock
   * before it reads the registers (BEGIN IMMEDIATE, waiting up to the busy timeout): begun
   * deferred, another process writing the library meanwhile (the mount, `sd pair`) made SQLite
   * refuse its first write at once, with no wait.
   */
  private change(entry: Entry, tags: readonly string[], present: boolean): TagOp[] {
    const target = this.refOf(entry);
    return this.db.transaction(() => {
      const ops: TagOp[] = [];
      for (const tag of tags) {
        const op: TagOp = { target, tag, present, hlc: this.clock.tick() };
        this.apply(op);
        this.db.prepare(`INSERT INTO index_outbox (op, extra) VALUES ('tag', ?)`).run(JSON.stringify(op));
        ops.push(op);
      }
      return ops;
    }).immediate();
  }

  private materialize(entryId: number, tag: string, present: boolean): void {
    if (present) {
      this.db.prepare('INSERT OR IGNORE INTO tags (name, created_at) VALUES (?, ?)').run(tag, Date.now());
      this.db.prepare('INSERT OR IGNORE INTO entry_tags (entry_id, tag_id) SELECT ?, id FROM tags WHERE name = ?').run(entryId, tag);
    } else {
      this.db.prepare('DELETE FROM entry_tags WHERE entry_id = ? AND tag_id = (SELECT id FROM tags WHERE name = ?)').run(entryId, tag);
    }
  }

  /** How every device names this entry: its owner and the id it has there. */
  refOf(entry: Entry): EntryRef {
    return entryRef(this.db, this.localDeviceId, entry);
  }

  /** The entry here that a reference names, if this library has it (mirrored entries by their owner's id). */
  private localId(ref: EntryRef): number | undefined {
    const sql = ref.device === this.localDeviceId ? 'SELECT id FROM entries WHERE id = ? AND device_id = ?' : 'SELECT id FROM entries WHERE remote_id = ? AND device_id = ?';
    return this.db.prepare(sql).pluck().get(ref.entry, ref.device) as number | undefined;
  }

  /**
   * Gives a mirrored entry that just arrived the tags operations named it with before
   * (another device may have tagged it before its owner's index reached this one).
   */
  attach(entryId: number, ref: EntryRef): void {
    const held = this.db.prepare('SELECT tag, present FROM tag_ops WHERE device_id = ? AND entry_ref = ?').all(ref.device, ref.entry) as Array<{ tag: string; present: number }>;
    for (const h of held) this.materialize(entryId, h.tag, h.present === 1);
  }
}
