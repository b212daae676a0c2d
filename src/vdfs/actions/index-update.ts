// Keeps the index true after a change that sdfs itself made on disk, in a few SQL
// statements instead of a rescan: place a new entry, refresh one, remove or move a
// subtree, with folder sizes and the closure table exact. Callers wrap calls in a transaction.
import fs from 'node:fs';
import path from 'node:path';
import { contentHashOfFd } from '../content/identity.js';
import { ContentStore } from '../content/store.js';
import { CopyChecks } from '../content/copy-checks.js';
import type { Entry, EntryFields, EntryKind } from '../entries.js';
import { EntryStore } from '../entries.js';
import { IgnoreRules } from '../indexer/ignore.js';
import type { Library } from '../library.js';
import type { Location } from '../locations.js';

/** How long the ignore rules of a folder (its .gitignore chain) are trusted without re-reading. */
const IGNORE_CACHE_MS = 5000;
const IGNORE_CACHE_MAX = 1000;

export function kindOf(st: fs.Stats): EntryKind | undefined {
  return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : undefined;
}

/** The fields the indexer records for a stat result (the same values, so a later scan sees no change). */
export function fieldsOf(name: string, kind: EntryKind, st: fs.Stats): EntryFields {
  return { name, kind, size: kind === 'dir' ? 0 : st.size, mtime: st.mtimeMs, inode: st.ino, mode: st.mode };
}

/** What an entry adds to the aggregate size of its folders. */
function contribution(e: Entry): number {
  return e.kind === 'file' ? e.size : e.kind === 'dir' ? e.aggregateSize : 0;
}

export function splitRel(rel: string): string[] {
  return rel === '' ? [] : rel.split('/');
}

export function parentRel(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export function baseName(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

export class IndexUpdater {
  readonly store: EntryStore;
  readonly contents: ContentStore;
  /** Each copy's own full-hash check (a verified copy records one for what it put in place). */
  readonly checks: CopyChecks;
  private readonly ignoreCache = new Map<string, { rules: IgnoreRules; at: number }>();

  constructor(readonly library: Library) {
    this.store = new EntryStore(library.db);
    this.contents = new ContentStore(library.db);
    this.checks = new CopyChecks(library.db);
  }

  /** The entry at a path relative to the location root ('' is the root), if indexed. */
  entryAt(location: Location, rel: string): Entry | undefined {
    if (location.rootEntryId === null) return undefined;
    return this.store.resolve(location.rootEntryId, splitRel(rel));
  }

  /** Whether the indexer skips `name` inside the folder parentRel (built-in names, hidden, rules, .gitignore). */
  ignores(location: Location, dirRel: string, name: string, isDir: boolean): boolean {
    const key = `${location.id}\0${dirRel}`;
    const now = Date.now();
    let cached = this.ignoreCache.get(key);
    if (!cached || now - cached.at > IGNORE_CACHE_MS) {
      if (this.ignoreCache.size >= IGNORE_CACHE_MAX) this.ignoreCache.clear();
      cached = { rules: IgnoreRules.forDirectory(location, dirRel), at: now };
      this.ignoreCache.set(key, cached);
    }
    return cached.rules.ignores(dirRel, name, isDir);
  }

  /** Forget cached ignore rules (a .gitignore changed). */
  forgetIgnoreRules(): void {
    this.ignoreCache.clear();
  }

  /**
   * Records what is now at rel (stat given): inserts it under its indexed parent or
   * refreshes the entry there. Returns the entry id, or undefined when the path is not
   * indexed (ignored, or its folder is not in the index). A folder that is new here is
   * recorded alone; `indexSubtree` fills in what is inside it.
   * contentId: a known content id; undefined recomputes it when size or time changed.
   */
  place(location: Location, rel: string, st: fs.Stats, contentId?: string | null, knownParent?: Entry): number | undefined {
    const kind = kindOf(st);
    if (!kind || rel === '') return undefined;
    const name = baseName(rel);
    const dirRel = parentRel(rel);
    const parent = knownParent ?? this.entryAt(location, dirRel);
    if (!parent || parent.kind !== 'dir') return undefined;
    if (this.ignores(location, dirRel, name, kind === 'dir')) {
      const stale = this.store.child(parent.id, name);
      if (stale) this.remove(stale);
      return undefined;
    }
    if (name === '.gitignore') this.forgetIgnoreRules();
    const existing = this.store.child(parent.id, name);
    if (existing && existing.kind === kind) {
      this.refresh(location, existing, st, rel, contentId);
      return existing.id;
    }
    if (existing) this.remove(existing);
    const fields = fieldsOf(name, kind, st);
    const id = this.store.insert(location.deviceId, location.id, parent.id, fields);
    if (kind === 'file') {
      this.store.addToAncestors(id, fields.size);
      const cid = contentId === undefined ? this.identify(location, rel, st) : contentId;
      if (cid) this.store.setContentId(id, cid);
    }
    return id;
  }

  /** Rewrites an entry from a fresh stat; the content id is kept, given, or recomputed when the bytes changed. */
  refresh(location: Location, entry: Entry, st: fs.Stats, rel: string, contentId?: string | null): void {
    const kind = kindOf(st);
    if (!kind) return;
    if (kind !== entry.kind) {
      // Another kind of thing under the same name (changed behind our back): a new entry.
      this.remove(entry);
      this.place(location, rel, st, contentId);
      return;
    }
    const f = fieldsOf(entry.name, kind, st);
    let cid = entry.contentId;
    if (kind !== 'file') cid = null;
    else if (contentId !== undefined) cid = contentId;
    else if (entry.size !== f.size || entry.mtime !== f.mtime || entry.inode !== f.inode) cid = this.identify(location, rel, st);
    if (entry.size === f.size && entry.mtime === f.mtime && entry.inode === f.inode && entry.mode === f.mode && entry.contentId === cid) return;
    this.store.update(entry.id, f, cid);
    if (kind === 'file') this.store.addToAncestors(entry.id, f.size - entry.size);
  }

  /** Re-stats a folder (its time changes when names come and go) and records it. */
  touchDir(location: Location, dirRel: string, known?: Entry): void {
    const entry = known ? this.store.get(known.id) : this.entryAt(location, dirRel);
    if (!entry || entry.kind !== 'dir') return;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(this.absolute(location, dirRel));
    } catch {
      return;
    }
    if (!st.isDirectory()) return;
    if (entry.mtime === st.mtimeMs && entry.inode === st.ino && entry.mode === st.mode) return;
    this.store.update(entry.id, { kind: 'dir', size: 0, mtime: st.mtimeMs, inode: st.ino, mode: st.mode }, null);
  }

  /** Removes an entry and everything below it, taking its size off its folders. */
  remove(entry: Entry): void {
    this.store.addToAncestors(entry.id, -contribution(entry));
    this.store.deleteSubtree(entry.id);
  }

  removeAt(location: Location, rel: string): void {
    const entry = this.entryAt(location, rel);
    if (entry && entry.parentId !== null) this.remove(entry);
  }

  /** Moves an entry (and its subtree) to newParent/newName, replacing what the index had there. */
  move(entry: Entry, newParent: Entry, newName: string): void {
    const replaced = this.store.child(newParent.id, newName);
    if (replaced && replaced.id === entry.id) return;
    if (replaced) this.remove(replaced);
    const fresh = this.store.get(entry.id) ?? entry;
    const c = contribution(fresh);
    this.store.addToAncestors(fresh.id, -c);
    this.store.move(fresh.id, newParent.id, newName);
    this.store.addToAncestors(fresh.id, c);
  }

  /**
   * Records a whole subtree that appeared at rel (a folder moved in from elsewhere):
   * places it and walks it. Runs outside the caller's transaction is fine; it uses its own.
   */
  indexSubtree(location: Location, rel: string): void {
    const abs = this.absolute(location, rel);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch {
      return;
    }
    const id = this.place(location, rel, st);
    if (id !== undefined && st.isDirectory()) this.walkInto(location, rel);
  }

  private walkInto(location: Location, rel: string): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.absolute(location, rel));
    } catch {
      return;
    }
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      let st: fs.Stats;
      try {
        st = fs.lstatSync(this.absolute(location, childRel));
      } catch {
        continue;
      }
      const id = this.place(location, childRel, st);
      if (id !== undefined && st.isDirectory()) this.walkInto(location, childRel);
    }
  }

  absolute(location: Location, rel: string): string {
    return rel === '' ? location.rootPath : path.join(location.rootPath, rel);
  }

  /** The sampled content id of a file as it is now (recorded in content_identities); null in shallow locations. */
  identify(location: Location, rel: string, st: fs.Stats): string | null {
    if (location.indexMode === 'shallow' || !st.isFile() || st.size === 0) return null;
    let fd: number;
    try {
      fd = fs.openSync(this.absolute(location, rel), 'r');
    } catch {
      return null;
    }
    try {
      const size = fs.fstatSync(fd).size;
      const hash = contentHashOfFd(fd, size);
      if (!hash) return null;
      this.contents.record(hash.contentId, size, hash.sampledHash);
      return hash.contentId;
    } catch {
      return null;
    } finally {
      fs.closeSync(fd);
    }
  }
}
