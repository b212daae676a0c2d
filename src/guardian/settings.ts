// The guardian's settings, shared by every device of the library so all of them agree on
// what is at risk: copy policies (per library, location or folder, or tag) and which
// devices' copies count. Each setting is a last-writer-wins register stamped by a hybrid
// logical clock, like tags; `guardian_ops` holds the newest operation per register (a
// removal has no value). Operations made here also go to index_outbox for this device's
// log; a peer's operation that fails validation is ignored and counted, never applied.
import { SdError } from '../errors.js';
import { HlcClock, parseHlc } from '../replication/hlc.js';
import type { Db } from '../vdfs/db/database.js';
import { validateTag } from '../vdfs/tags.js';

export const MIN_COPIES = 1;
export const MAX_COPIES = 16;
/** What a file wants when no policy names it. */
export const DEFAULT_COPIES = 2;

/** What a policy applies to; the most specific one wins: a tag, then the deepest folder, then the library's. */
export type PolicyTarget =
  | { kind: 'library' }
  /** A location (path '') or a folder in it, of any device. */
  | { kind: 'path'; deviceId: string; location: string; path: string }
  | { kind: 'tag'; tag: string };

export interface Policy {
  copies: number;
  /** Where protect puts new copies: a location or folder of some device, as a target key ('path:...'). */
  store?: string;
}

/** A policy as the library holds it. */
export interface StoredPolicy {
  key: string;
  target: PolicyTarget;
  copies: number;
  /** Where protect puts new copies. */
  store?: Extract<PolicyTarget, { kind: 'path' }>;
  hlc: string;
}

export type GuardianOp =
  | { kind: 'policy'; key: string; value: Policy | null; hlc: string }
  | { kind: 'trust'; key: string; value: 'untrusted' | null; hlc: string };

/** The register key of a target: '' (the library), 'path:<device id>/<location>[/<path>]' or 'tag:<name>'. */
export function targetKey(t: PolicyTarget): string {
  if (t.kind === 'library') return '';
  if (t.kind === 'tag') return `tag:${t.tag}`;
  return `path:${t.deviceId}/${t.location}${t.path ? `/${t.path}` : ''}`;
}

const DEVICE_ID = /^[A-Za-z0-9-]{1,64}$/;

/** Reads a register key back; throws on anything targetKey would not make. */
export function parseTargetKey(key: string): PolicyTarget {
  if (key === '') return { kind: 'library' };
  if (key.startsWith('tag:')) return { kind: 'tag', tag: validateTag(key.slice(4)) };
  const m = /^path:([^/]+)\/([^/]+)((?:\/[^/]+)*)$/.exec(key);
  if (!m || !DEVICE_ID.test(m[1]!) || Buffer.byteLength(key) > 4096) throw new SdError('INVALID', `'${key.slice(0, 80)}' is not a policy target`);
  const segments = [m[2]!, ...m[3]!.split('/').slice(1)];
  if (segments.some((s) => s === '.' || s === '..' || s.includes('\0'))) throw new SdError('INVALID', `'${key.slice(0, 80)}' is not a policy target`);
  return { kind: 'path', deviceId: m[1]!, location: m[2]!, path: segments.slice(1).join('/') };
}

export function validateCopies(copies: number): number {
  if (!Number.isInteger(copies) || copies < MIN_COPIES || copies > MAX_COPIES) throw new SdError('USAGE', `--copies takes a whole number from ${MIN_COPIES} to ${MAX_COPIES} (got ${copies})`);
  return copies;
}

/** Checks an operation from any device; throws an SdError naming what is wrong. */
export function validateGuardianOp(op: { kind: string; key: string; value: string | null; hlc: string }): GuardianOp {
  parseHlc(op.hlc);
  if (op.kind === 'trust') {
    if (!DEVICE_ID.test(op.key)) throw new SdError('INVALID', `'${op.key.slice(0, 80)}' is not a device id`);
    if (op.value !== null && op.value !== 'untrusted') throw new SdError('INVALID', `a trust setting is 'untrusted' or nothing, not '${op.value.slice(0, 40)}'`);
    return { kind: 'trust', key: op.key, value: op.value, hlc: op.hlc };
  }
  if (op.kind !== 'policy') throw new SdError('INVALID', `'${op.kind.slice(0, 40)}' is not a guardian setting`);
  parseTargetKey(op.key);
  if (op.value === null) return { kind: 'policy', key: op.key, value: null, hlc: op.hlc };
  let value: unknown;
  try {
    value = JSON.parse(op.value);
  } catch {
    throw new SdError('INVALID', 'a policy is not JSON');
  }
  const { copies, store } = (value ?? {}) as { copies?: unknown; store?: unknown };
  if (typeof copies !== 'number') throw new SdError('INVALID', 'a policy names no number of copies');
  if (store !== undefined && (typeof store !== 'string' || parseTargetKey(store).kind !== 'path')) throw new SdError('INVALID', 'a policy\'s store is not a location or folder');
  try {
    return { kind: 'policy', key: op.key, value: { copies: validateCopies(copies), ...(store === undefined ? {} : { store: store as string }) }, hlc: op.hlc };
  } catch (err) {
    throw new SdError('INVALID', err instanceof Error ? err.message : String(err));
  }
}

export class GuardianSettings {
  private readonly clock: HlcClock;
  private readonly s;

  constructor(
    private readonly db: Db,
    localDeviceId: string,
  ) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      held: p('SELECT hlc FROM guardian_ops WHERE kind = ? AND key = ?').pluck(),
      put: p('INSERT OR REPLACE INTO guardian_ops (kind, key, value, hlc) VALUES (?, ?, ?, ?)'),
      outbox: p(`INSERT INTO index_outbox (op, extra) VALUES ('guardian', ?)`),
      policies: p("SELECT key, value, hlc FROM guardian_ops WHERE kind = 'policy' AND value IS NOT NULL ORDER BY key"),
      untrusted: p("SELECT key FROM guardian_ops WHERE kind = 'trust' AND value = 'untrusted' ORDER BY key").pluck(),
      refuse: p(`INSERT INTO guardian_refused (device_id, count, last_error, last_at) VALUES (?, 1, ?, ?)
                 ON CONFLICT (device_id) DO UPDATE SET count = count + 1, last_error = excluded.last_error, last_at = excluded.last_at`),
      refused: p('SELECT device_id AS deviceId, count, last_error AS lastError, last_at AS lastAt FROM guardian_refused ORDER BY device_id'),
    };
    this.clock = new HlcClock(localDeviceId, db.prepare('SELECT max(hlc) FROM guardian_ops').pluck().get() as string | null);
  }

  /** Sets a target's policy: the copies it wants and, optionally, where protect puts them (a location or folder). */
  setPolicy(target: PolicyTarget, copies: number, store?: Extract<PolicyTarget, { kind: 'path' }>): GuardianOp {
    const value: Policy = { copies: validateCopies(copies), ...(store ? { store: targetKey(store) } : {}) };
    return this.local({ kind: 'policy', key: targetKey(target), value, hlc: this.clock.tick() });
  }

  /** Removes a policy; false when there was none for that target. */
  removePolicy(target: PolicyTarget): boolean {
    const key = targetKey(target);
    if (!this.policies().some((p) => p.key === key)) return false;
    this.local({ kind: 'policy', key, value: null, hlc: this.clock.tick() });
    return true;
  }

  /** Marks a device's copies as not counting (untrusted) or counting again. */
  setTrust(deviceId: string, trusted: boolean): GuardianOp {
    return this.local({ kind: 'trust', key: deviceId, value: trusted ? null : 'untrusted', hlc: this.clock.tick() });
  }

  policies(): StoredPolicy[] {
    const rows = this.s.policies.all() as Array<{ key: string; value: string; hlc: string }>;
    return rows.map((r) => {
      const value = JSON.parse(r.value) as Policy;
      const store = value.store === undefined ? undefined : parseTargetKey(value.store);
      return { key: r.key, target: parseTargetKey(r.key), copies: value.copies, ...(store?.kind === 'path' ? { store } : {}), hlc: r.hlc };
    });
  }

  untrusted(): string[] {
    return this.s.untrusted.all() as string[];
  }

  /** Applies an operation from any device; an older one than the register holds changes nothing. */
  apply(op: GuardianOp): boolean {
    this.clock.observe(op.hlc);
    const held = this.s.held.get(op.kind, op.key) as string | undefined;
    if (held !== undefined && held >= op.hlc) return false;
    this.s.put.run(op.kind, op.key, wireOf(op).value, op.hlc);
    return true;
  }

  /** Applies an operation a peer's log brought: one that fails validation is counted and ignored. */
  applyFromPeer(fromDevice: string, raw: { kind: string; key: string; value: string | null; hlc: string }, now = Date.now()): boolean {
    let op: GuardianOp;
    try {
      op = validateGuardianOp(raw);
    } catch (err) {
      this.s.refuse.run(fromDevice, err instanceof Error ? err.message : String(err), now);
      return false;
    }
    return this.apply(op);
  }

  /** Operations refused from each device (validation failed). */
  refused(): Array<{ deviceId: string; count: number; lastError: string; lastAt: number }> {
    return this.s.refused.all() as Array<{ deviceId: string; count: number; lastError: string; lastAt: number }>;
  }

  /** Applies and queues an operation made here; waits for another writer of the library before it reads the register (as TagStore does). */
  private local(op: GuardianOp): GuardianOp {
    this.db.transaction(() => {
      this.apply(op);
      this.s.outbox.run(JSON.stringify(wireOf(op)));
    }).immediate();
    return op;
  }
}

/** An operation as the log carries it: the value as text (a policy's JSON). */
export function wireOf(op: GuardianOp): { kind: string; key: string; value: string | null; hlc: string } {
  return { kind: op.kind, key: op.key, value: op.value === null ? null : typeof op.value === 'string' ? op.value : JSON.stringify(op.value), hlc: op.hlc };
}
