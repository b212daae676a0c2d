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
import { DEFAULT_COPIES, GuardianSettings, parseTargetKey, type PolicyTarget } from './settings.js';

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

/** A file's copy in the per-content aggregate: verified = a current check equal to the content's full hash. */
const VERIFIED = 'k.entry_id IS NOT NULL AND k.corrupt = 0 AND k.size = e.size AND k.mtime = e.mtime AND k.full_hash = ci.full_hash';

function countsSql(where: string): string {
  return `SELECT e.content_id AS contentId, max(e.size) AS size, count(*) AS files,
            count(DISTINCT e.device_id) AS devices,
            count(DISTINCT CASE WHEN e.device_id NOT IN (SELECT value FROM json_each(@untrusted)) THEN e.device_id END) AS trusted,
            count(DISTINCT CASE WHEN e.device_id NOT IN (SELECT value FROM json_each(@untrusted)) AND e.device_id NOT IN (SELECT value FROM json_each(@stale)) THEN e.device_id END) AS fresh,
            count(DISTINCT CASE WHEN e.device_id NOT IN (SELECT value FROM json_each(@untrusted)) AND e.device_id NOT IN (SELECT value FROM json_each(@stale)) AND ${VERIFIED} THEN e.device_id END) AS counting
          FROM entries e
          LEFT JOIN copy_checks k ON k.entry_id = e.id
          LEFT JOIN content_identities ci ON ci.id = e.content_id
          WHERE e.kind = 'file' AND e.content_id IS NOT NULL ${where}
          GROUP BY e.content_id`;
}

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
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      countOne: p(countsSql('AND e.content_id = @contentId')),
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

  private params(options: GuardianOptions): { untrusted: string; stale: string } {
    return { untrusted: JSON.stringify(this.settings.untrusted()), stale: JSON.stringify(this.staleDevices(options)) };
  }

  /** How the copies of one content stand (what user.sd.copies shows: `counting`). */
  count(contentId: string, options: GuardianOptions = {}): CopyCount {
    const row = this.s.countOne.get({ ...this.params(options), contentId }) as CopyCount | undefined;
    return row ?? { devices: 0, trusted: 0, fresh: 0, counting: 0 };
  }

  /**
   * The copies a file wants: its tags' policies (the most demanding), else the deepest
   * folder or location with a policy, else the library's, else DEFAULT_COPIES.
   */
  wanted(entry: Entry): number {
    const policies = this.policyMap();
    let fromTags = 0;
    for (const tag of this.s.tagsOf.all(entry.id) as string[]) fromTags = Math.max(fromTags, policies.get(`tag:${tag}`) ?? 0);
    if (fromTags > 0) return fromTags;
    const location = this.locationOf(entry);
    if (location && policies.size > 0) {
      const names = this.store.relativePath(entry.id).split('/').filter(Boolean);
      for (let depth = names.length; depth >= 0; depth--) {
        const key = `path:${entry.deviceId}/${location.name}${depth > 0 ? `/${names.slice(0, depth).join('/')}` : ''}`;
        const copies = policies.get(key);
        if (copies !== undefined) return copies;
      }
    }
    return policies.get('') ?? DEFAULT_COPIES;
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
    return this.withWanted(options, () => {
      const rows = this.db
        .prepare(`SELECT c.*, w.wanted FROM temp.guardian_counts c JOIN temp.guardian_wanted w ON w.content_id = c.contentId
                  WHERE c.counting < w.wanted
                  ORDER BY c.counting, w.wanted - c.counting DESC, c.size DESC, c.contentId`)
        .all() as Array<CopyCount & { contentId: string; size: number; files: number; wanted: number }>;
      const items: AtRiskContent[] = [];
      for (const r of rows.slice(0, options.limit ?? rows.length)) {
        items.push({ ...r, risk: riskOf(r, r.wanted, staleDays)!, paths: this.pathsOf(r.contentId, options.pathsPerContent ?? 10) });
      }
      return { items, total: rows.length };
    });
  }

  /** Entry ids of the files whose content is at risk (for /sd/.guardian/at-risk), at most `limit`. */
  atRiskFiles(limit: number, options: GuardianOptions = {}): number[] {
    return this.withWanted(options, () =>
      this.db
        .prepare(`SELECT e.id FROM entries e JOIN temp.guardian_counts c ON c.contentId = e.content_id JOIN temp.guardian_wanted w ON w.content_id = e.content_id
                  WHERE e.kind = 'file' AND c.counting < w.wanted ORDER BY c.counting, e.id LIMIT ?`)
        .pluck()
        .all(limit) as number[],
    );
  }

  status(options: GuardianOptions = {}): GuardianStatus {
    const staleDays = options.staleDays ?? DEFAULT_STALE_DAYS;
    return this.withWanted(options, () => {
      const byCopies = this.db
        .prepare(`SELECT min(c.counting, 3) AS copies, count(*) AS files, coalesce(sum(e.size), 0) AS bytes
                  FROM entries e JOIN temp.guardian_counts c ON c.contentId = e.content_id
                  WHERE e.kind = 'file' GROUP BY min(c.counting, 3) ORDER BY copies`)
        .all() as Array<{ copies: number; files: number; bytes: number }>;
      const unidentified = this.db.prepare("SELECT count(*) FROM entries WHERE kind = 'file' AND content_id IS NULL").pluck().get() as number;
      const devices = new Map(listDevices(this.db).map((d) => [d.id, d]));
      const locationNames = new Map(listLocations(this.db).map((l) => [l.id, l]));
      const perLocation = this.db
        .prepare(`SELECT e.device_id AS deviceId, e.location_id AS locationId, count(*) AS files, coalesce(sum(e.size), 0) AS bytes,
                    sum(CASE WHEN ${VERIFIED} THEN 1 ELSE 0 END) AS verified,
                    sum(CASE WHEN c.counting < w.wanted THEN 1 ELSE 0 END) AS atRiskFiles
                  FROM entries e
                  LEFT JOIN copy_checks k ON k.entry_id = e.id
                  LEFT JOIN content_identities ci ON ci.id = e.content_id
                  LEFT JOIN temp.guardian_counts c ON c.contentId = e.content_id
                  LEFT JOIN temp.guardian_wanted w ON w.content_id = e.content_id
                  WHERE e.kind = 'file' GROUP BY e.device_id, e.location_id ORDER BY e.device_id, e.location_id`)
        .all() as Array<{ deviceId: string; locationId: number; files: number; bytes: number; verified: number; atRiskFiles: number }>;
      const risky = this.db
        .prepare(`SELECT c.*, w.wanted FROM temp.guardian_counts c JOIN temp.guardian_wanted w ON w.content_id = c.contentId WHERE c.counting < w.wanted`)
        .all() as Array<CopyCount & { size: number; files: number; wanted: number }>;
      const byReason: Partial<Record<RiskCode, number>> = {};
      for (const r of risky) {
        const code = riskOf(r, r.wanted, staleDays)!.code;
        byReason[code] = (byReason[code] ?? 0) + 1;
      }
      const name = (id: string) => devices.get(id)?.slug ?? id;
      return {
        byCopies,
        unidentified,
        locations: perLocation.map((r) => ({ device: name(r.deviceId), location: locationNames.get(r.locationId)?.name ?? String(r.locationId), files: r.files, bytes: r.bytes, verified: r.verified, atRiskFiles: r.atRiskFiles })),
        atRisk: { contents: risky.length, files: risky.reduce((n, r) => n + r.files, 0), bytes: risky.reduce((n, r) => n + r.size, 0), byReason },
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
   * Fills temp tables of per-content counts and wanted copies for one query, and drops
   * them after: a file's wanted copies come from its tags' policies, else the deepest
   * folder policy above it (through the closure table), else the library's.
   */
  private withWanted<T>(options: GuardianOptions, query: () => T): T {
    const db = this.db;
    return db.transaction(() => {
      db.exec(`CREATE TEMP TABLE IF NOT EXISTS guardian_counts (contentId TEXT PRIMARY KEY, size INTEGER, files INTEGER, devices INTEGER, trusted INTEGER, fresh INTEGER, counting INTEGER);
               CREATE TEMP TABLE IF NOT EXISTS guardian_folder (entry_id INTEGER PRIMARY KEY, copies INTEGER);
               CREATE TEMP TABLE IF NOT EXISTS guardian_tag (tag_id INTEGER PRIMARY KEY, copies INTEGER);
               CREATE TEMP TABLE IF NOT EXISTS guardian_wanted (content_id TEXT PRIMARY KEY, wanted INTEGER);
               DELETE FROM temp.guardian_counts; DELETE FROM temp.guardian_folder; DELETE FROM temp.guardian_tag; DELETE FROM temp.guardian_wanted;`);
      try {
        db.prepare(`INSERT INTO temp.guardian_counts ${countsSql('')}`).run(this.params(options));
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
        // Shallow folders first: a deeper folder's policy overwrites its files' rows.
        const setFolder = db.prepare('INSERT OR REPLACE INTO temp.guardian_folder (entry_id, copies) SELECT descendant, ? FROM entry_closure WHERE ancestor = ?');
        for (const f of folders.sort((a, b) => a.depth - b.depth)) setFolder.run(f.copies, f.id);
        db.prepare(`INSERT INTO temp.guardian_wanted (content_id, wanted)
                    SELECT e.content_id, max(coalesce((SELECT max(t.copies) FROM entry_tags et JOIN temp.guardian_tag t ON t.tag_id = et.tag_id WHERE et.entry_id = e.id), f.copies, ?))
                    FROM entries e LEFT JOIN temp.guardian_folder f ON f.entry_id = e.id
                    WHERE e.kind = 'file' AND e.content_id IS NOT NULL GROUP BY e.content_id`).run(fallback);
        return query();
      } finally {
        db.exec('DELETE FROM temp.guardian_counts; DELETE FROM temp.guardian_folder; DELETE FROM temp.guardian_tag; DELETE FROM temp.guardian_wanted;');
      }
    })();
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

  private policyMap(): Map<string, number> {
    return new Map(this.settings.policies().map((p) => [p.key, p.copies]));
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
