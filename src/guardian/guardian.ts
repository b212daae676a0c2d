// The Data Guardian's view of redundancy: for every content id, which devices hold a copy
// and which of those copies count toward its policy (a current full-hash check equal to the
// content's, on a trusted device seen within the stale limit), what each file's policy
// wants, and so what is at risk and why. Everything is computed from the library (this
// device's index, the mirrors of its peers, the shared settings). One content's count is
// read from its files; the whole library's (status, at-risk) from the copy summary, which
// each such query brings up to date first, so a peer's change counts as soon as its log is
// applied here.
import { SdError } from '../errors.js';
import { CopyChecks } from '../vdfs/content/copy-checks.js';
import type { Db } from '../vdfs/db/database.js';
import type { Statement } from 'better-sqlite3';
import { listDevices, type Device } from '../vdfs/device.js';
import { EntryStore, type Entry } from '../vdfs/entries.js';
import { listLocations, type Location } from '../vdfs/locations.js';
import { entrySdPath } from '../vdfs/sdpath.js';
import { bitCount, CopySummary, VERIFIED } from './copy-summary.js';
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

export { VERIFIED };

/** A group of contents with the same holders, verified holders and wanted copies, and their totals. */
interface Group {
  holders: bigint;
  verified: bigint;
  wanted: number;
  contents: number;
  files: number;
  bytes: number;
  size: number;
}

/** Devices as bit sets (CopySummary's bits): whose copies are trusted, and which count (trusted, seen lately). */
interface DeviceSets {
  trusted: bigint;
  fresh: bigint;
}

/** What one query sees: the device sets, the library's fallback policy, and the groups of contents. */
interface Snapshot {
  sets: DeviceSets;
  fallback: number;
  groups: Group[];
  /** Whether some content wants other than the fallback (temp.guardian_content_wanted has rows). */
  overrides: boolean;
}

/** One content at risk, as the at-risk order yields it. */
type AtRiskRow = CopyCount & { contentId: string; size: number; files: number; wanted: number };

const PAGE = 500;
/** Contents brought up to date per transaction before a query (about 0.4 s of work each at most). */
const FLUSH_CHUNK = 20_000;

export class Guardian {
  readonly settings: GuardianSettings;
  readonly summary: CopySummary;
  private readonly store: EntryStore;
  private readonly s;

  constructor(
    private readonly db: Db,
    private readonly localDeviceId: string,
  ) {
    this.settings = new GuardianSettings(db, localDeviceId);
    this.summary = new CopySummary(db);
    this.store = new EntryStore(db);
    // Connection-local scratch tables, filled for one query at a time (withSnapshot): the
    // files and contents whose policy is other than the library's.
    db.exec(`CREATE TEMP TABLE IF NOT EXISTS guardian_file_wanted (entry_id INTEGER PRIMARY KEY, copies INTEGER);
             CREATE TEMP TABLE IF NOT EXISTS guardian_tag (tag_id INTEGER PRIMARY KEY, copies INTEGER);
             CREATE TEMP TABLE IF NOT EXISTS guardian_content_wanted (content_id TEXT PRIMARY KEY, wanted INTEGER) WITHOUT ROWID;`);
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      holdersOf: p(`SELECT e.device_id AS deviceId, max(CASE WHEN ${VERIFIED} THEN 1 ELSE 0 END) AS verified
                    FROM entries e LEFT JOIN copy_checks k ON k.entry_id = e.id
                    WHERE e.content_id = ? AND e.kind = 'file' GROUP BY e.device_id`),
      tagsOf: p('SELECT t.name FROM entry_tags et JOIN tags t ON t.id = et.tag_id WHERE et.entry_id = ?').pluck(),
      filesOf: p("SELECT id FROM entries WHERE content_id = ? AND kind = 'file' ORDER BY device_id, id LIMIT ?").pluck(),
      overrideGroups: p(`SELECT c.holders, c.verified, w.wanted, count(*) AS contents, sum(c.files) AS files, sum(c.bytes) AS bytes, sum(c.size) AS size
                         FROM temp.guardian_content_wanted w CROSS JOIN guardian_contents c ON c.content_id = w.content_id
                         GROUP BY c.holders, c.verified, w.wanted`).safeIntegers(true),
      overrideLocations: p(`SELECT l.location_id AS locationId, c.holders, c.verified, w.wanted, sum(l.files) AS files
                            FROM temp.guardian_content_wanted w CROSS JOIN guardian_contents c ON c.content_id = w.content_id
                            CROSS JOIN guardian_location_copies l ON l.content_id = w.content_id
                            GROUP BY l.location_id, c.holders, c.verified, w.wanted`).safeIntegers(true),
      // One group's contents, largest first, after (size, content_id) of the page before.
      pageDefault: p(`SELECT content_id AS contentId, size, files FROM guardian_contents c
                      WHERE holders = @holders AND verified = @verified AND (size, content_id) < (@size, @id)
                        AND NOT EXISTS (SELECT 1 FROM temp.guardian_content_wanted w WHERE w.content_id = c.content_id)
                      ORDER BY size DESC, content_id DESC LIMIT ${PAGE}`),
      pageOverride: p(`SELECT c.content_id AS contentId, c.size, c.files FROM guardian_contents c
                       JOIN temp.guardian_content_wanted w ON w.content_id = c.content_id AND w.wanted = @wanted
                       WHERE c.holders = @holders AND c.verified = @verified AND (c.size, c.content_id) < (@size, @id)
                       ORDER BY c.size DESC, c.content_id DESC LIMIT ${PAGE}`),
      unidentified: p("SELECT location_id AS locationId, count(*) AS files, coalesce(sum(size), 0) AS bytes FROM entries WHERE kind = 'file' AND content_id IS NULL GROUP BY location_id"),
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

  /** How the copies of one content stand (what user.sd.copies shows: `counting`), read from its files. */
  count(contentId: string, options: GuardianOptions = {}): CopyCount {
    const untrusted = new Set(this.settings.untrusted());
    const stale = new Set(this.staleDevices(options));
    const count: CopyCount = { devices: 0, trusted: 0, fresh: 0, counting: 0 };
    for (const h of this.s.holdersOf.all(contentId) as Array<{ deviceId: string; verified: number }>) {
      count.devices++;
      if (untrusted.has(h.deviceId)) continue;
      count.trusted++;
      if (stale.has(h.deviceId)) continue;
      count.fresh++;
      if (h.verified) count.counting++;
    }
    return count;
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
    const limit = options.limit ?? Number.MAX_SAFE_INTEGER;
    const rows: AtRiskRow[] = [];
    const total = this.forEachAtRisk(options, (row) => rows.push(row) < limit);
    const items = rows.map((r) => ({ ...r, risk: riskOf(r, r.wanted, staleDays)!, paths: this.pathsOf(r.contentId, options.pathsPerContent ?? 10) }));
    return { items, total };
  }

  /** Entry ids of the files whose content is at risk (for /sd/.guardian/at-risk), most at risk first, at most `limit`. */
  atRiskFiles(limit: number, options: GuardianOptions = {}): number[] {
    const ids: number[] = [];
    if (limit <= 0) return ids;
    this.forEachAtRisk(options, (row) => {
      for (const id of this.s.filesOf.all(row.contentId, limit - ids.length) as number[]) ids.push(id);
      return ids.length < limit;
    });
    return ids;
  }

  /** The ids of every content at risk (for a search's is:at-risk). */
  atRiskContentIds(options: GuardianOptions = {}): string[] {
    const ids: string[] = [];
    this.forEachAtRisk(options, (row) => void ids.push(row.contentId));
    return ids;
  }

  /**
   * Calls `visit` with each content at risk, most at risk first: fewest counting copies,
   * then the largest shortfall, then the largest; stops when it returns false. Returns how
   * many contents are at risk in all.
   */
  forEachAtRisk(options: GuardianOptions, visit: (row: AtRiskRow) => boolean | void): number {
    return this.withSnapshot(options, (snap) => {
      const atRisk = snap.groups.flatMap((g) => {
        const count = countOf(g, snap.sets);
        return count.counting < g.wanted ? [{ ...g, count }] : [];
      });
      const total = atRisk.reduce((n, g) => n + g.contents, 0);
      // Groups with the same counting copies and shortfall are merged by size, largest first.
      const key = (g: (typeof atRisk)[number]) => `${g.count.counting}/${g.wanted - g.count.counting}`;
      const buckets = new Map<string, typeof atRisk>();
      for (const g of atRisk.sort((x, y) => x.count.counting - y.count.counting || y.wanted - y.count.counting - (x.wanted - x.count.counting))) {
        buckets.set(key(g), [...(buckets.get(key(g)) ?? []), g]);
      }
      for (const groups of buckets.values()) {
        const cursors = groups.map((g) => new GroupCursor(g.wanted === snap.fallback ? this.s.pageDefault : this.s.pageOverride, g, g.count));
        for (;;) {
          let best: GroupCursor | undefined;
          for (const c of cursors) if (c.head() && (!best || c.isBefore(best))) best = c;
          if (!best) break;
          if (visit(best.take()) === false) return total;
        }
      }
      return total;
    });
  }

  status(options: GuardianOptions = {}): GuardianStatus {
    const staleDays = options.staleDays ?? DEFAULT_STALE_DAYS;
    return this.withSnapshot(options, (snap) => {
      const byCopies = new Map<number, { copies: number; files: number; bytes: number }>();
      const atRisk = { contents: 0, files: 0, bytes: 0, byReason: {} as Partial<Record<RiskCode, number>> };
      for (const g of snap.groups) {
        const count = countOf(g, snap.sets);
        const copies = Math.min(count.counting, 3);
        const b = byCopies.get(copies) ?? { copies, files: 0, bytes: 0 };
        byCopies.set(copies, { copies, files: b.files + g.files, bytes: b.bytes + g.bytes });
        const risk = riskOf(count, g.wanted, staleDays);
        if (!risk) continue;
        atRisk.contents += g.contents;
        atRisk.files += g.files;
        atRisk.bytes += g.size;
        atRisk.byReason[risk.code] = (atRisk.byReason[risk.code] ?? 0) + g.contents;
      }
      const devices = new Map(listDevices(this.db).map((d) => [d.id, d]));
      const locations = new Map(listLocations(this.db).map((l) => [l.id, l]));
      const perLocation = new Map<number, { files: number; bytes: number; verified: number; atRiskFiles: number }>();
      const at = (id: number) => perLocation.get(id) ?? perLocation.set(id, { files: 0, bytes: 0, verified: 0, atRiskFiles: 0 }).get(id)!;
      const shortOf = (holders: bigint, verified: bigint, wanted: number) => countOf({ holders, verified }, snap.sets).counting < wanted;
      for (const r of this.summary.locationSignatures()) {
        const l = at(r.locationId);
        l.files += r.files;
        l.bytes += r.bytes;
        l.verified += r.verifiedFiles;
        if (shortOf(r.holders, r.verified, snap.fallback)) l.atRiskFiles += r.files;
      }
      // Contents another policy covers: counted above with the library's, here with their own.
      if (snap.overrides) {
        for (const r of this.s.overrideLocations.all() as Array<{ locationId: bigint; holders: bigint; verified: bigint; wanted: bigint; files: bigint }>) {
          const l = at(Number(r.locationId));
          const files = Number(r.files);
          l.atRiskFiles += (shortOf(r.holders, r.verified, Number(r.wanted)) ? files : 0) - (shortOf(r.holders, r.verified, snap.fallback) ? files : 0);
        }
      }
      let unidentified = 0;
      for (const r of this.s.unidentified.all() as Array<{ locationId: number; files: number; bytes: number }>) {
        const l = at(r.locationId);
        l.files += r.files;
        l.bytes += r.bytes;
        unidentified += r.files;
      }
      const name = (id: string) => devices.get(id)?.slug ?? id;
      const rows = [...perLocation]
        .map(([id, r]) => ({ location: locations.get(id), id, ...r }))
        .sort((x, y) => (x.location?.deviceId ?? '').localeCompare(y.location?.deviceId ?? '') || x.id - y.id);
      return {
        byCopies: [...byCopies.values()].filter((b) => b.files > 0).sort((x, y) => x.copies - y.copies),
        unidentified,
        locations: rows.map((r) => ({
          device: r.location ? name(r.location.deviceId) : '?', location: r.location?.name ?? String(r.id), files: r.files, bytes: r.bytes, verified: r.verified, atRiskFiles: r.atRiskFiles,
        })),
        atRisk,
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

  /** Devices as bit sets: whose copies are trusted, and which of those count (seen within the stale limit). */
  private deviceSets(options: GuardianOptions): DeviceSets {
    const untrusted = new Set(this.settings.untrusted());
    const stale = new Set(this.staleDevices(options));
    const sets = { trusted: 0n, fresh: 0n };
    for (const [id, bit] of this.summary.deviceBits()) {
      if (untrusted.has(id)) continue;
      sets.trusted |= 1n << BigInt(bit);
      if (!stale.has(id)) sets.fresh |= 1n << BigInt(bit);
    }
    return sets;
  }

  /**
   * Runs one query over the whole library in a transaction: brings the copy summary up to
   * date, then finds the contents whose files want other copies than the library's policy
   * (temp.guardian_content_wanted; emptied after) and groups every content by holders,
   * verified holders and wanted copies. A file's wanted copies come from its tags'
   * policies, else the deepest folder policy above it (through the closure table), else
   * the library's; a content's are the most any of its files wants.
   */
  private withSnapshot<T>(options: GuardianOptions, query: (snap: Snapshot) => T): T {
    const db = this.db;
    this.summary.flushInChunks(FLUSH_CHUNK);
    return db.transaction(() => {
      this.summary.flush(); // what changed since
      db.exec('DELETE FROM temp.guardian_file_wanted; DELETE FROM temp.guardian_tag; DELETE FROM temp.guardian_content_wanted;');
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
        // A content wants the most any of its files wants: the most its files with a policy
        // want, or the library's when that is more and some file has none (fewer than all its files).
        db.prepare(`INSERT INTO temp.guardian_content_wanted (content_id, wanted)
                    SELECT content_id, wanted FROM (
                      SELECT a.content_id, CASE WHEN a.most > @fallback OR a.files = c.files THEN a.most ELSE @fallback END AS wanted
                      FROM (SELECT f.content_id, max(x.copies) AS most, count(*) AS files
                            FROM temp.guardian_file_wanted x CROSS JOIN entries f ON f.id = x.entry_id
                            WHERE f.kind = 'file' AND f.content_id IS NOT NULL GROUP BY f.content_id) a
                      CROSS JOIN guardian_contents c ON c.content_id = a.content_id)
                    WHERE wanted <> @fallback`).run({ fallback });
        const overrides = (db.prepare('SELECT EXISTS (SELECT 1 FROM temp.guardian_content_wanted)').pluck().get() as number) === 1;
        return query({ sets: this.deviceSets(options), fallback, groups: this.groups(fallback, overrides), overrides });
      } finally {
        db.exec('DELETE FROM temp.guardian_file_wanted; DELETE FROM temp.guardian_tag; DELETE FROM temp.guardian_content_wanted;');
      }
    }).immediate();
  }

  /** Every content in groups: the summary's totals under the library's policy, less those another policy covers, which get groups of their own. */
  private groups(fallback: number, overrides: boolean): Group[] {
    const groups = new Map<string, Group>();
    const add = (g: Omit<Group, 'contents' | 'files' | 'bytes' | 'size'>, sign: 1 | -1, t: { contents: number; files: number; bytes: number; size: number }) => {
      const key = `${g.holders}/${g.verified}/${g.wanted}`;
      const cur = groups.get(key) ?? { ...g, contents: 0, files: 0, bytes: 0, size: 0 };
      groups.set(key, { ...cur, contents: cur.contents + sign * t.contents, files: cur.files + sign * t.files, bytes: cur.bytes + sign * t.bytes, size: cur.size + sign * t.size });
    };
    for (const t of this.summary.signatures()) add({ holders: t.holders, verified: t.verified, wanted: fallback }, 1, t);
    if (overrides) {
      for (const r of this.s.overrideGroups.all() as Array<Record<keyof Group, bigint>>) {
        const t = { contents: Number(r.contents), files: Number(r.files), bytes: Number(r.bytes), size: Number(r.size) };
        add({ holders: r.holders, verified: r.verified, wanted: fallback }, -1, t);
        add({ holders: r.holders, verified: r.verified, wanted: Number(r.wanted) }, 1, t);
      }
    }
    return [...groups.values()].filter((g) => g.contents > 0);
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

/** How the copies of a group's contents stand, given which devices are trusted and count. */
function countOf(g: { holders: bigint; verified: bigint }, sets: DeviceSets): CopyCount {
  return { devices: bitCount(g.holders), trusted: bitCount(g.holders & sets.trusted), fresh: bitCount(g.holders & sets.fresh), counting: bitCount(g.verified & sets.fresh) };
}

/** Pages through one group's contents, largest first (then by content id, from the end). */
class GroupCursor {
  private rows: Array<{ contentId: string; size: number; files: number }> = [];
  private done = false;
  private after = { size: Number.MAX_SAFE_INTEGER, id: '' };

  constructor(
    private readonly page: Statement,
    private readonly group: Group,
    private readonly count: CopyCount,
  ) {}

  head(): { contentId: string; size: number } | undefined {
    if (this.rows.length === 0 && !this.done) {
      const g = this.group;
      this.rows = (this.page.all({ holders: g.holders, verified: g.verified, wanted: g.wanted, size: this.after.size, id: this.after.id }) as typeof this.rows).reverse();
      this.done = this.rows.length < PAGE;
    }
    return this.rows[this.rows.length - 1];
  }

  /** This cursor's head comes before the other's (call head() on both first). */
  isBefore(other: GroupCursor): boolean {
    const a = this.head()!;
    const b = other.head()!;
    return a.size > b.size || (a.size === b.size && a.contentId > b.contentId);
  }

  take(): AtRiskRow {
    const r = this.rows.pop()!;
    this.after = { size: r.size, id: r.contentId };
    return { ...this.count, contentId: r.contentId, size: r.size, files: r.files, wanted: this.group.wanted };
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
