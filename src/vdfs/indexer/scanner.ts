// The processing heart of indexing and watching: compares folders on disk with their
// entries and writes the difference — new, modified (size/mtime), moved (same inode
// whose old path is gone), deleted (deferred to the end so moves can claim them first)
// — and keeps directory aggregate sizes true.
import fs from 'node:fs';
import path from 'node:path';
import { systemCode } from '../../errors.js';
import type { Entry, EntryFields, EntryKind, EntryStore } from '../entries.js';
import type { Location } from '../locations.js';
import { IgnoreRules } from './ignore.js';
import type { IndexCounts, WarningList } from './summary.js';
import type { WriteBatch } from './write-batch.js';

interface Missing {
  id: number;
  parentId: number;
  name: string;
}

export interface ScanOptions {
  location: Location;
  store: EntryStore;
  batch: WriteBatch;
  counts: IndexCounts;
  warnings: WarningList;
  /** Inodes already indexed in this location: only these can be moves. */
  inodes: Set<number>;
  onEntry?: () => void;
}

export class Scanner {
  private readonly missing: Missing[] = [];
  /** Directories whose aggregate size must be recomputed from their children, with their ancestors. */
  private readonly touched = new Set<number>();
  private readonly deviceId: string;

  constructor(private readonly o: ScanOptions) {
    this.deviceId = o.location.deviceId;
  }

  /** Scans a whole subtree; returns the directory's aggregate size. */
  scanTree(dir: Entry, dirRel: string, rules: IgnoreRules): number {
    return this.scanDir(dir, dirRel, rules, true, false);
  }

  /** Diffs one folder's direct children (descending only into folders that are new here). */
  scanShallow(dir: Entry, dirRel: string, rules: IgnoreRules): void {
    this.scanDir(dir, dirRel, rules, false, false);
    this.touched.add(dir.id);
  }

  /** Applies the deferred deletes and recomputes the aggregate sizes they and moves changed. */
  finish(): void {
    const { store, batch, counts } = this.o;
    for (const m of this.missing) {
      const current = store.get(m.id);
      // A moved entry was claimed by its new place; only what is still where it vanished goes.
      if (!current || current.parentId !== m.parentId || current.name !== m.name) continue;
      counts.deleted += batch.write(() => store.deleteSubtree(m.id));
      this.touched.add(m.parentId);
    }
    this.missing.length = 0;
    this.recomputeAggregates();
  }

  private scanDir(dir: Entry, dirRel: string, parentRules: IgnoreRules, recursive: boolean, knownEmpty: boolean): number {
    const { location, store, batch, counts, warnings } = this.o;
    const dirAbs = dirRel === '' ? location.rootPath : path.join(location.rootPath, dirRel);
    let listing: fs.Dirent<Buffer>[];
    try {
      listing = fs.readdirSync(dirAbs, { withFileTypes: true, encoding: 'buffer' });
    } catch (err) {
      const code = systemCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        // Gone since it was listed: the parent's pass (or the next one) removes it.
        return dir.aggregateSize;
      }
      // Unreadable: keep what we knew about it, index around it and say so.
      warnings.add(dirAbs, `not readable (${code ?? String(err)}); its contents were left as they were`);
      return dir.aggregateSize;
    }
    const rules = parentRules.enter(dirAbs, dirRel, listing.some((d) => d.name.length === 10 && d.name.toString() === '.gitignore'));
    const existing = new Map<string, Entry>();
    if (!knownEmpty) for (const child of store.children(dir.id)) existing.set(child.name, child);

    let aggregate = 0;
    for (const dirent of listing) {
      const name = dirent.name.toString('utf8');
      if (name.includes('\ufffd') && !Buffer.from(name, 'utf8').equals(dirent.name)) {
        warnings.add(path.join(dirAbs, name), 'name is not valid UTF-8; skipped (rename it to index it)');
        continue;
      }
      const isDir = dirent.isDirectory();
      if (rules.ignores(dirRel, name, isDir)) {
        counts.ignored++;
        continue;
      }
      const childAbs = path.join(dirAbs, name);
      const st = lstatOrUndefined(childAbs);
      if (!st) continue; // vanished between listing and stat
      const kind: EntryKind | undefined = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : undefined;
      if (!kind) {
        counts.ignored++; // sockets, fifos and devices are not content
        continue;
      }
      counts.scanned++;
      this.o.onEntry?.();
      const fields: EntryFields = { name, kind, size: kind === 'dir' ? 0 : st.size, mtime: st.mtimeMs, inode: st.ino, mode: st.mode };

      let entry = existing.get(name);
      existing.delete(name);
      if (entry && entry.kind !== kind) {
        const gone = entry;
        counts.deleted += batch.write(() => store.deleteSubtree(gone.id));
        entry = undefined;
      }
      // Folders that are new or moved here are walked whole even in a shallow pass.
      let walkWhole = false;
      if (!entry && this.o.inodes.has(st.ino)) {
        entry = this.claimMoved(dir.id, fields);
        walkWhole = entry !== undefined;
      }
      let isNew = false;
      if (entry) {
        this.updateIfChanged(entry, fields);
      } else {
        const id = batch.write(() => store.insert(this.deviceId, location.id, dir.id, fields));
        entry = { id, deviceId: this.deviceId, locationId: location.id, parentId: dir.id, ...fields, contentId: null, aggregateSize: 0 };
        this.o.inodes.add(st.ino);
        counts.new++;
        isNew = walkWhole = true;
      }

      if (kind === 'dir') {
        const childRel = dirRel === '' ? name : `${dirRel}/${name}`;
        aggregate += recursive || walkWhole ? this.scanDir(entry, childRel, rules, recursive || walkWhole, isNew) : entry.aggregateSize;
      } else if (kind === 'file') {
        aggregate += st.size;
      }
    }
    for (const gone of existing.values()) this.missing.push({ id: gone.id, parentId: dir.id, name: gone.name });

    if (recursive) {
      const dirId = dir.id;
      if (dir.aggregateSize !== aggregate) batch.write(() => store.setAggregate(dirId, aggregate));
    }
    return aggregate;
  }

  /** An unknown name whose inode we know: a move when the old path no longer holds that inode. */
  private claimMoved(parentId: number, fields: EntryFields): Entry | undefined {
    const { location, store, batch, counts } = this.o;
    for (const candidate of store.byInode(location.id, fields.inode)) {
      if (candidate.kind !== fields.kind || candidate.parentId === null) continue;
      const oldAbs = path.join(location.rootPath, store.relativePath(candidate.id));
      const there = lstatOrUndefined(oldAbs);
      if (there && there.ino === fields.inode) continue; // still there: a hard link, not a move
      const oldParent = candidate.parentId;
      // Moving a folder under itself cannot happen on disk; guard the closure table anyway.
      if (store.ancestors(parentId).some((a) => a.id === candidate.id)) continue;
      batch.write(() => store.move(candidate.id, parentId, fields.name));
      this.touched.add(oldParent);
      counts.moved++;
      return { ...candidate, parentId, name: fields.name };
    }
    return undefined;
  }

  private updateIfChanged(entry: Entry, f: EntryFields): void {
    const { store, batch, counts } = this.o;
    if (entry.size === f.size && entry.mtime === f.mtime && entry.inode === f.inode && entry.mode === f.mode) {
      counts.unchanged++;
      return;
    }
    const contentChanged = entry.kind === 'file' && (entry.size !== f.size || entry.mtime !== f.mtime);
    const contentId = contentChanged ? null : entry.contentId;
    batch.write(() => store.update(entry.id, f, contentId));
    if (contentChanged) counts.modified++;
    else counts.unchanged++; // a new inode or mode alone is bookkeeping, not a content change
    entry.size = f.size;
    entry.mtime = f.mtime;
    entry.inode = f.inode;
    entry.mode = f.mode;
    entry.contentId = contentId;
  }

  /** Recomputes aggregates of touched folders from their children, deepest first, up to the root. */
  private recomputeAggregates(): void {
    const { store, batch } = this.o;
    const byDepth = new Map<number, Set<number>>();
    const queue = (id: number, depth: number) => {
      let set = byDepth.get(depth);
      if (!set) byDepth.set(depth, (set = new Set()));
      set.add(id);
    };
    let maxDepth = -1;
    for (const id of this.touched) {
      const depth = store.ancestors(id).length - 1;
      if (depth < 0) continue;
      queue(id, depth);
      maxDepth = Math.max(maxDepth, depth);
    }
    this.touched.clear();
    for (let depth = maxDepth; depth >= 0; depth--) {
      for (const id of byDepth.get(depth) ?? []) {
        const entry = store.get(id);
        if (!entry) continue;
        const size = store.childrenAggregate(id);
        if (size !== entry.aggregateSize) batch.write(() => store.setAggregate(id, size));
        if (entry.parentId !== null) queue(entry.parentId, depth - 1);
      }
    }
  }
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}
