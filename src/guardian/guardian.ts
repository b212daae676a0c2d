// The Data Guardian's view of redundancy: for every content id, which devices hold a copy
// and which of those copies count toward its policy (a current full-hash check equal to the
// content's, on a trusted device seen within the stale limit), what each file's policy
// wants, and so what is at risk and why. Everything is computed from the library (this
// device's index, the mirrors of its peers, the shared settings); nothing is cached, so a
// peer's change counts as soon as its log is applied here.
import { SdError } from '../errors.js';
import { CopyChecks } from '../vdfs/content/copy-checks.js';
import type { Db } from '../vdfs/db/database.js';
import { listDevices, type Device } from '../vdfs/device.js';
import { EntryStore, type Entry } from '../vdfs/entries.js';
import { listLocations, type Location } from '../vdfs/locations.js';
import { entrySdPath } from '../vdfs/sdpath.js';
import { DEFAULT_COPIES, GuardianSettings, parseTargetKey, type PolicyTarget, type StoredPolicy } from './settings.js';

export const DEFAULT_STALE_DAYS = 30;
const DAY_MS = 24 * 3600 * 1000;

export interface GuardianOptions {
  /** Copies on a device not seen for more than this many days do not count. */
  staleDays?: number;
  now?: number;
}

/** Why a content is at risk, most serious first. */
export type RiskCode = 'untrusted-only' | 'stale-only' | 'one-copy' | 'unverified' | 'too-few';

export interface Risk {
  code: RiskCode;
  reason: string;
}

/** How the copies of one content stand. */
export interface CopyCount {
  /** Devices holding a file with this content id, whatever its state. */
  devices: number;
  /** ... on devices whose copies count (trusted). */
  trusted: number;
  /** ... on trusted devices seen within the stale limit. */
  fresh: number;
  /** Devices whose copy counts: all of the above, and its full hash checked and current. */
  counting: number;
}

export interface AtRiskContent extends CopyCount {
  contentId: string;
  size: number;
  wanted: number;
  risk: Risk;
  /** The files holding it (SdPaths), at most `pathsPerContent`. */
  paths: string[];
  files: number;
}

export interface GuardianStatus {
  /** Files with a content id, and their bytes, by how many devices hold a counting copy (3: three or more). */
  byCopies: Array<{ copies: number; files: number; bytes: number }>;
  /** Files that have no content id (shallow locations, empty files): not counted. */
  unidentified: number;
  locations: Array<{ device: string; location: string; files: number; bytes: number; verified: number; atRiskFiles: number }>;
  atRisk: { contents: number; files: number; bytes: number; byReason: Partial<Record<RiskCode, number>> };
  policies: Array<{ target: string; copies: number }>;
  untrusted: string[];
  staleDevices: string[];
  staleDays: number;
}

/**
 * A file's copy is verified: a current check equal to the content's full hash (looked up
 * only for a current check). SQL over `entries e LEFT JOIN copy_checks k ON k.entry_id = e.id`.
 */
export const VERIFIED = `k.entry_id IS NOT NULL AND k.corrupt = 0 AND k.size = e.size AND k.mtime = e.mtime
  AND k.full_hash = (SELECT full_hash FROM content_identities WHERE id = e.content_id)`;

/**
 * Per-content counts over the files `where` selects, in one pass. `temp.guardian_devices`
 * says which devices' copies are trusted and which count (trusted and seen lately); a
 * device it does not list is both. `wanted`: the file's own policy from
 * `temp.guardian_file_wanted` when `perFile`, else `@fallback`; the content's is the most any file wants.
 */
function countsSql(where: string, perFile: boolean): string {
  return `SELECT e.content_id AS contentId, max(e.size) AS size, count(*) AS files, sum(e.size) AS bytes,
            count(DISTINCT e.device_id) AS devices,
            count(DISTINCT CASE WHEN coalesce(d.trusted, 1) THEN e.device_id END) AS trusted,
            count(DISTINCT CASE WHEN coalesce(d.counts, 1) THEN e.device_id END) AS fresh,
            count(DISTINCT CASE WHEN coalesce(d.counts, 1) AND ${VERIFIED} THEN e.device_id END) AS counting,
            ${perFile ? 'max(coalesce(w.copies, @fallback))' : '@fallback'} AS wanted
          FROM entries e ${where ? '' : 'NOT INDEXED'}
          LEFT JOIN copy_checks k ON k.entry_id = e.id
          LEFT JOIN temp.guardian_devices d ON d.id = e.device_id
          ${perFile ? 'LEFT JOIN temp.guardian_file_wanted w ON w.entry_id = e.id' : ''}
          WHERE e.kind = 'file' AND e.content_id IS NOT NULL ${where}
          GROUP BY e.content_id`;
}

/** Contents short of their policy, most at risk first. */
const AT_RISK = 'FROM temp.guardian_counts WHERE counting < wanted';
const AT_RISK_ORDER = 'ORDER BY counting, wanted - counting DESC, size DESC, contentId';

export class Guardian {
  readonly settings: GuardianSettings;
  private readonly store: EntryStore;
  private readonly s;

  constructor(
    private readonly db: Db,
    private readonly localDeviceId: string,
  ) {
    this.settings = new GuardianSettings(db, localDeviceId);
    this.store = new EntryStore(db);
    // Connection-local scratch tables, filled for one query at a time (withDevices, withCounts).
    db.exec(`CREATE TEMP TABLE IF NOT EXISTS guardian_devices (id TEXT PRIMARY KEY, trusted INTEGER, counts INTEGER) WITHOUT ROWID;
             CREATE TEMP TABLE IF NOT EXISTS guardian_counts (contentId TEXT PRIMARY KEY, size INTEGER, files INTEGER, bytes INTEGER, devices INTEGER, trusted INTEGER, fresh INTEGER, counting INTEGER, wanted INTEGER);
             CREATE TEMP TABLE IF NOT EXISTS guardian_file_wanted (entry_id INTEGER PRIMARY KEY, copies INTEGER);
             CREATE TEMP TABLE IF NOT EXISTS guardian_tag (tag_id INTEGER PRIMARY KEY, copies INTEGER);`);
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      countOne: p(countsSql('AND e.content_id = @contentId', false)),
      tagsOf: p('SELECT t.name FROM entry_tags et JOIN tags t ON t.id = et.tag_id WHERE et.entry_id = ?').pluck(),
      filesOf: p("SELECT id FROM entries WHERE content_id = ? AND kind = 'file' ORDER BY device_id, id LIMIT ?").pluck(),
    };
  }

  /** Devices whose copies do not count because they were not seen within the stale limit (never this one). */
  staleDevices(options: GuardianOptions = {}): string[] {
    const now = options.now ?? Date.now();
    const limit = now - (options.staleDays ?? DEFAULT_STALE_DAYS) * DAY_MS;
    return this.db
      .prepare('SELECT id FROM devices WHERE is_local = 0 AND revoked_at IS NULL AND coalesce(online_at, last_seen, paired_at, created_at) < ?')
      .pluck()
      .all(limit) as string[];
  }

  /** How the copies of one content stand (what user.sd.copies shows: `counting`). */
  count(contentId: string, options: GuardianOptions = {}): CopyCount {
    const row = this.withDevices(options, () => this.s.countOne.get({ contentId, fallback: DEFAULT_COPIES }) as CopyCount | undefined);
    return row ? { devices: row.devices, trusted: row.trusted, fresh: row.fresh, counting: row.counting } : { devices: 0, trusted: 0, fresh: 0, counting: 0 };
  }

  /**
   * The copies a file wants: its tags' policies (the most demanding), else the deepest
   * folder or location with a policy, else the library's, else DEFAULT_COPIES.
   */
  wanted(entry: Entry): number {
    return this.policyFor(entry).copies;
  }

  /** The policy a file follows (see wanted), with where protect puts its copies when the policy says. */
  policyFor(entry: Entry): Pick<StoredPolicy, 'copies' | 'store'> {
    const policies = new Map(this.settings.policies().map((p) => [p.key, p]));
    let fromTags: StoredPolicy | undefined;
    for (const tag of this.s.tagsOf.all(entry.id) as string[]) {
      const p = policies.get(`tag:${tag}`);
      if (p && p.copies > (fromTags?.copies ?? 0)) fromTags = p;
    }
    if (fromTags) return fromTags;
    const location = this.locationOf(entry);
    if (location && policies.size > 0) {
      const names = this.store.relativePath(entry.id).split('/').filter(Boolean);
      for (let depth = names.length; depth >= 0; depth--) {
        const p = policies.get(`path:${entry.deviceId}/${location.name}${depth > 0 ? `/${names.slice(0, depth).join('/')}` : ''}`);
        if (p) return p;
      }
    }
    return policies.get('') ?? { copies: DEFAULT_COPIES };
  }

  /** A file's standing: counting copies, copies wanted, and the risk (undefined when safe or unidentified). */
  fileState(entry: Entry, options: GuardianOptions = {}): { copies: number; wanted: number; risk?: Risk } {
    const wanted = this.wanted(entry);
    if (entry.kind !== 'file' || !entry.contentId) return { copies: 0, wanted };
    const count = this.count(entry.contentId, options);
    const risk = riskOf(count, wanted, options.staleDays ?? DEFAULT_STALE_DAYS);
    return risk ? { copies: count.counting, wanted, risk } : { copies: count.counting, wanted };
  }

  /** Contents whose counting copies fall short of what their files want, most at risk first. */
  atRisk(options: GuardianOptions & { limit?: number; pathsPerContent?: number } = {}): { items: AtRiskContent[]; total: number } {
    const staleDays = options.staleDays ?? DEFAULT_STALE_DAYS;
    return this.withCounts(options, () => {
      const total = this.db.prepare(`SELECT count(*) ${AT_RISK}`).pluck().get() as number;
      const rows = this.db
        .prepare(`SELECT contentId, size, files, devices, trusted, fresh, counting, wanted ${AT_RISK} ${AT_RISK_ORDER} LIMIT ?`)
        .all(options.limit ?? -1) as Array<CopyCount & { contentId: string; size: number; files: number; wanted: number }>;
      const items = rows.map((r) => ({ ...r, risk: riskOf(r, r.wanted, staleDays)!, paths: this.pathsOf(r.contentId, options.pathsPerContent ?? 10) }));
      return { items, total };
    });
  }

  /** Entry ids of the files whose content is at risk (for /sd/.guardian/at-risk), at most `limit`. */
  atRiskFiles(limit: number, options: GuardianOptions = {}): number[] {
    return this.withCounts(options, () =>
      this.db
        .prepare(`SELECT e.id FROM entries e JOIN temp.guardian_counts c ON c.contentId = e.content_id
                  WHERE e.kind = 'file' AND c.counting < c.wanted ORDER BY c.counting, e.id LIMIT ?`)
        .pluck()
        .all(limit) as number[],
    );
  }

  status(options: GuardianOptions = {}): GuardianStatus {
    const staleDays = options.staleDays ?? DEFAULT_STALE_DAYS;
    return this.withCounts(options, () => {
      // Per content: its files and their bytes, so nothing here goes back over the files.
      const byCopies = this.db
        .prepare(`SELECT min(counting, 3) AS copies, sum(files) AS files, sum(bytes) AS bytes
                  FROM temp.guardian_counts GROUP BY min(counting, 3) ORDER BY copies`)
        .all() as Array<{ copies: number; files: number; bytes: number }>;
      const unidentified = this.db.prepare("SELECT count(*) FROM entries WHERE kind = 'file' AND content_id IS NULL").pluck().get() as number;
      const devices = new Map(listDevices(this.db).map((d) => [d.id, d]));
      const locationNames = new Map(listLocations(this.db).map((l) => [l.id, l]));
      const perLocation = this.db
        .prepare(`SELECT e.device_id AS deviceId, e.location_id AS locationId, count(*) AS files, coalesce(sum(e.size), 0) AS bytes,
                    sum(CASE WHEN ${VERIFIED} THEN 1 ELSE 0 END) AS verified,
                    sum(CASE WHEN c.counting < c.wanted THEN 1 ELSE 0 END) AS atRiskFiles
                  FROM entries e
                  LEFT JOIN copy_checks k ON k.entry_id = e.id
                  LEFT JOIN temp.guardian_counts c ON c.contentId = e.content_id
                  WHERE e.kind = 'file' GROUP BY e.device_id, e.location_id ORDER BY e.device_id, e.location_id`)
        .all() as Array<{ deviceId: string; locationId: number; files: number; bytes: number; verified: number; atRiskFiles: number }>;
      const risk = this.db
        .prepare(`SELECT count(*) AS contents, coalesce(sum(files), 0) AS files, coalesce(sum(size), 0) AS bytes ${AT_RISK}`)
        .get() as { contents: number; files: number; bytes: number };
      // One row per kind of shortfall (riskOf's reason depends on the counts only), reasons named in content id order.
      const kinds = this.db
        .prepare(`SELECT devices, trusted, fresh, counting, wanted, count(*) AS n ${AT_RISK} GROUP BY devices, trusted, fresh, counting, wanted ORDER BY min(contentId)`)
        .all() as Array<CopyCount & { wanted: number; n: number }>;
      const byReason: Partial<Record<RiskCode, number>> = {};
      for (const k of kinds) {
        const code = riskOf(k, k.wanted, staleDays)!.code;
        byReason[code] = (byReason[code] ?? 0) + k.n;
      }
      const name = (id: string) => devices.get(id)?.slug ?? id;
      return {
        byCopies,
        unidentified,
        locations: perLocation.map((r) => ({ device: name(r.deviceId), location: locationNames.get(r.locationId)?.name ?? String(r.locationId), files: r.files, bytes: r.bytes, verified: r.verified, atRiskFiles: r.atRiskFiles })),
        atRisk: { contents: risk.contents, files: risk.files, bytes: risk.bytes, byReason },
        policies: this.settings.policies().map((p) => ({ target: this.describeTarget(p.target), copies: p.copies })),
        untrusted: this.settings.untrusted().map(name),
        staleDevices: this.staleDevices(options).map(name),
        staleDays,
      };
    });
  }

  /** This device's files a scrub found corrupt (bit rot) and not repaired since, as SdPaths. */
  corruptFiles(limit = 1000): string[] {
    return this.sdPathsOf(new CopyChecks(this.db).corruptEntries(this.localDeviceId, limit));
  }

  /** A policy target as a user names it: 'library', an SdPath, or 'tag:NAME'. */
  describeTarget(t: PolicyTarget): string {
    if (t.kind === 'library') return 'library';
    if (t.kind === 'tag') return `tag:${t.tag}`;
    const device = listDevices(this.db).find((d) => d.id === t.deviceId);
    return `sd://${device?.slug ?? t.deviceId}/${t.location}${t.path ? `/${t.path}` : ''}`;
  }

  /**
   * Fills `temp.guardian_devices` (whose copies are trusted, and which count) for one
   * query, inside its transaction, and empties it after.
   */
  private withDevices<T>(options: GuardianOptions, query: () => T): T {
    const db = this.db;
    return db.transaction(() => {
      db.exec('DELETE FROM temp.guardian_devices');
      try {
        const untrusted = new Set(this.settings.untrusted());
        const stale = new Set(this.staleDevices(options));
        const put = db.prepare('INSERT INTO temp.guardian_devices (id, trusted, counts) VALUES (?, ?, ?)');
        for (const id of new Set([...listDevices(db).map((d) => d.id), ...untrusted])) {
          put.run(id, untrusted.has(id) ? 0 : 1, untrusted.has(id) || stale.has(id) ? 0 : 1);
        }
        return query();
      } finally {
        db.exec('DELETE FROM temp.guardian_devices');
      }
    })();
  }

  /**
   * Fills a temp table of per-content counts and wanted copies for one query, and empties
   * it after: a file's wanted copies come from its tags' policies, else the deepest folder
   * policy above it (through the closure table), else the library's; files no folder or
   * tag policy names are not looked up one by one.
   */
  private withCounts<T>(options: GuardianOptions, query: () => T): T {
    const db = this.db;
    return this.withDevices(options, () => {
      db.exec('DELETE FROM temp.guardian_counts; DELETE FROM temp.guardian_file_wanted; DELETE FROM temp.guardian_tag;');
      try {
        let fallback = DEFAULT_COPIES;
        const folders: Array<{ id: number; depth: number; copies: number }> = [];
        const setTag = db.prepare('INSERT OR REPLACE INTO temp.guardian_tag (tag_id, copies) SELECT id, ? FROM tags WHERE name = ?');
        for (const p of this.settings.policies()) {
          if (p.target.kind === 'library') fallback = p.copies;
          else if (p.target.kind === 'tag') setTag.run(p.copies, p.target.tag);
          else {
            const entry = this.entryAt(p.target);
            if (entry) folders.push({ id: entry.id, depth: this.store.ancestorIds(entry.id).length, copies: p.copies });
          }
        }
        // Shallow folders first: a deeper folder's policy overwrites its files' rows; then tags overwrite folders.
        const setFolder = db.prepare('INSERT OR REPLACE INTO temp.guardian_file_wanted (entry_id, copies) SELECT descendant, ? FROM entry_closure WHERE ancestor = ?');
        for (const f of folders.sort((a, b) => a.depth - b.depth)) setFolder.run(f.copies, f.id);
        db.exec(`INSERT OR REPLACE INTO temp.guardian_file_wanted (entry_id, copies)
                 SELECT et.entry_id, max(t.copies) FROM temp.guardian_tag t JOIN entry_tags et ON et.tag_id = t.tag_id GROUP BY et.entry_id`);
        const perFile = (db.prepare('SELECT EXISTS (SELECT 1 FROM temp.guardian_file_wanted)').pluck().get() as number) === 1;
        db.prepare(`INSERT INTO temp.guardian_counts (contentId, size, files, bytes, devices, trusted, fresh, counting, wanted) ${countsSql('', perFile)}`).run({ fallback });
        return query();
      } finally {
        db.exec('DELETE FROM temp.guardian_counts; DELETE FROM temp.guardian_file_wanted; DELETE FROM temp.guardian_tag;');
      }
    });
  }

  /** The folder or location a path policy names, if this library has it. */
  private entryAt(t: Extract<PolicyTarget, { kind: 'path' }>): Entry | undefined {
    const location = listLocations(this.db).find((l) => l.deviceId === t.deviceId && l.name === t.location);
    if (!location?.rootEntryId) return undefined;
    return this.store.resolve(location.rootEntryId, t.path ? t.path.split('/') : []);
  }

  private pathsOf(contentId: string, limit: number): string[] {
    return this.sdPathsOf(this.s.filesOf.all(contentId, limit) as number[]);
  }

  /** The SdPath of one entry of any device (undefined when it is not in the index). */
  sdPathOf(entryId: number): string | undefined {
    return this.sdPathsOf([entryId])[0];
  }

  /** SdPaths of entries (devices and locations looked up once for all of them). */
  private sdPathsOf(entryIds: readonly number[]): string[] {
    const devices = new Map(listDevices(this.db).map((d) => [d.id, d]));
    const locations = new Map(listLocations(this.db).map((l) => [l.id, l]));
    const paths: string[] = [];
    for (const id of entryIds) {
      const entry = this.store.get(id);
      const device = entry && devices.get(entry.deviceId);
      const location = entry && locations.get(entry.locationId);
      if (device && location) paths.push(entrySdPath(device, location, this.store.relativePath(id).split('/').filter(Boolean)));
    }
    return paths;
  }

  private locationOf(entry: Entry): Location | undefined {
    return listLocations(this.db).find((l) => l.id === entry.locationId);
  }
}

/** Why a content with these copies falls short of `wanted`; undefined when it does not. */
export function riskOf(c: CopyCount, wanted: number, staleDays: number): Risk | undefined {
  if (c.counting >= wanted) return undefined;
  if (c.devices > 0 && c.trusted === 0) return { code: 'untrusted-only', reason: 'copies only on untrusted devices' };
  if (c.trusted > 0 && c.fresh === 0) return { code: 'stale-only', reason: `copies only on devices offline for more than ${staleDays} days` };
  if (c.fresh <= 1 && wanted > 1) return { code: 'one-copy', reason: c.counting === 1 ? 'one copy' : 'one copy, not verified' };
  if (c.fresh >= wanted) return { code: 'unverified', reason: `${c.fresh - c.counting} of ${c.fresh} copies not verified (no full BLAKE3 check of that copy)` };
  return { code: 'too-few', reason: `${c.counting} of ${wanted} copies` };
}

/** Resolves what a user names as a policy target: nothing (the library), an SdPath to a location or folder, or tag:NAME. */
export function parsePolicyTarget(text: string | undefined, resolveDir: (sdPath: string) => { device: Device; location: Location; relPath: string[]; entry: Entry }): PolicyTarget {
  if (text === undefined || text === '') return { kind: 'library' };
  if (text.startsWith('tag:')) return parseTargetKey(text);
  const at = resolveDir(text);
  if (at.entry.kind !== 'dir') throw new SdError('USAGE', `${text} is a file; a policy is set on a location, a folder or a tag`);
  return { kind: 'path', deviceId: at.device.id, location: at.location.name, path: at.relPath.join('/') };
}
