// User metadata on entries, shared by every device of the library: key/value pairs, each
// (entry, key) a last-writer-wins register stamped by a hybrid logical clock, like tags.
// `meta_ops` holds the newest operation per register (a removal has no value) and is
// itself what is true here. Operations made on this device also go to index_outbox, for
// this device's own log; peers apply them from there (replication/mirror.ts).
import { SdError } from '../errors.js';
import { HlcClock } from '../replication/hlc.js';
import type { Db } from './db/database.js';
import type { Entry } from './entries.js';
import { entryRef, type EntryRef } from './tags.js';

export interface MetaOp {
  target: EntryRef;
  key: string;
  /** null removes the key. */
  value: string | null;
  hlc: string;
}

const MAX_KEY_BYTES = 128;
export const MAX_META_VALUE_BYTES = 4096;

/** A key is a word of letters, digits, '.', '_' and '-' (it is also an xattr name: user.sd.meta.<key>). */
export function validateMetaKey(raw: string): string {
  const key = raw.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(key)) throw new SdError('USAGE', `metadata key '${key.slice(0, 40)}' must start with a letter or digit and hold only letters, digits, '.', '_' and '-'`);
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new SdError('USAGE', `metadata key '${key.slice(0, 40)}…' is longer than ${MAX_KEY_BYTES} bytes`);
  return key;
}

export function validateMetaValue(value: string): string {
  if (Buffer.byteLength(value) > MAX_META_VALUE_BYTES) throw new SdError('USAGE', `a metadata value is at most ${MAX_META_VALUE_BYTES} bytes (got ${Buffer.byteLength(value)})`);
  if (value.includes('\0')) throw new SdError('USAGE', 'a metadata value may not contain NUL');
  return value;
}

export class MetaStore {
  private readonly clock: HlcClock;

  constructor(
    private readonly db: Db,
    private readonly localDeviceId: string,
  ) {
    const last = db.prepare('SELECT max(hlc) FROM meta_ops').pluck().get() as string | null;
    this.clock = new HlcClock(localDeviceId, last);
  }

  /** The entry's metadata, by key (sorted). */
  of(entry: Entry): Record<string, string> {
    const ref = this.refOrUndefined(entry);
    if (!ref) return {};
    const rows = this.db
      .prepare('SELECT key, value FROM meta_ops WHERE device_id = ? AND entry_ref = ? AND value IS NOT NULL ORDER BY key')
      .all(ref.device, ref.entry) as Array<{ key: string; value: string }>;
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  /** Sets (or with null removes) one key of an entry; waits for another writer of the library before it reads the register (as TagStore does). */
  set(entry: Entry, key: string, value: string | null): MetaOp {
    const op: MetaOp = { target: entryRef(this.db, this.localDeviceId, entry), key: validateMetaKey(key), value: value === null ? null : validateMetaValue(value), hlc: this.clock.tick() };
    this.db.transaction(() => {
      this.apply(op);
      this.db.prepare(`INSERT INTO index_outbox (op, extra) VALUES ('meta', ?)`).run(JSON.stringify(op));
    }).immediate();
    return op;
  }

  /** Applies an operation from any device; an older one than the register holds changes nothing. */
  apply(op: MetaOp): boolean {
    this.clock.observe(op.hlc);
    const held = this.db.prepare('SELECT hlc FROM meta_ops WHERE device_id = ? AND entry_ref = ? AND key = ?').pluck().get(op.target.device, op.target.entry, op.key) as string | undefined;
    if (held !== undefined && held >= op.hlc) return false;
    this.db.prepare('INSERT OR REPLACE INTO meta_ops (device_id, entry_ref, key, value, hlc) VALUES (?, ?, ?, ?, ?)').run(op.target.device, op.target.entry, op.key, op.value, op.hlc);
    return true;
  }

  private refOrUndefined(entry: Entry): EntryRef | undefined {
    try {
      return entryRef(this.db, this.localDeviceId, entry);
    } catch {
      return undefined;
    }
  }
}
