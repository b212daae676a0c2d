// The processing heart of indexing and watching: compares folders on disk with their
// entries and writes the difference — new, modified (size/mtime), moved (same inode
// whose old path is gone), deleted (deferred to the end so moves can claim them first)
// — and keeps directory aggregate sizes true. A whole-location scan can read folders
// ahead in a worker thread (this same module; see "walking ahead" below).
import fs from 'node:fs';
import path from 'node:path';
import { MessageChannel, type MessagePort, Worker, isMainThread, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { systemCode } from '../../errors.js';
import type { Entry, EntryFields, EntryKind, EntryStore } from '../entries.js';
import type { Location } from '../locations.js';
import { IgnoreRules } from './ignore.js';
import type { IndexCounts, WarningList } from './summary.js';
import type { WriteBatch } from './write-batch.js';
import { lstatOrUndefined } from '../fs-stat.js';

interface Missing {
  id: number;
  parentId: number;
  name: string;
}

/** The inode numbers indexed in a location: a Set in memory, or lookups in the index. */
export interface InodeSet {
  has(inode: number): boolean;
  add(inode: number): void;
}

export interface ScanOptions {
  location: Location;
  store: EntryStore;
  batch: WriteBatch;
  counts: IndexCounts;
  warnings: WarningList;
  /** Inodes already indexed in this location: only these can be moves. */
  inodes: InodeSet;
  onEntry?: () => void;
  /**
   * Let scanTree read folders ahead in a worker thread (readdir and lstat, the location's
   * own ignore rules) while this thread diffs and writes. Only for a whole location from
   * its root with IgnoreRules.forLocation: the walker applies exactly those rules.
   */
  parallelWalk?: boolean;
}

export class Scanner {
  private readonly missing: Missing[] = [];
  /** Directories whose aggregate size must be recomputed from their children, with their ancestors. */
  private readonly touched = new Set<number>();
  private readonly deviceId: string;
  private walker: WalkAhead | undefined;
  /** This scan may start a walker once it has read WALK_START_FOLDERS folders itself. */
  private walkerWanted = false;
  /** Folders listed so far in this scan, in walk order: the walker numbers them the same way. */
  private listed = 0;

  constructor(private readonly o: ScanOptions) {
    this.deviceId = o.location.deviceId;
  }

  /** Scans a whole subtree; returns the directory's aggregate size. */
  scanTree(dir: Entry, dirRel: string, rules: IgnoreRules): number {
    this.walkerWanted = this.o.parallelWalk === true && dirRel === '' && dir.parentId === null;
    this.listed = 0;
    try {
      return this.scanDir(dir, dirRel, this.o.store.ancestorIds(dir.id), rules, true, false);
    } finally {
      this.walkerWanted = false;
      this.walker?.stop();
      this.walker = undefined;
    }
  }

  /** Diffs one folder's direct children (descending only into folders that are new here). */
  scanShallow(dir: Entry, dirRel: string, rules: IgnoreRules): void {
    this.scanDir(dir, dirRel, this.o.store.ancestorIds(dir.id), rules, false, false);
    this.touched.add(dir.id);
  }

  /**
   * Diffs only these names of one folder (the names a watcher's events gave), each as its
   * folder's listing would, and true; or false, with nothing changed, when a name needs
   * the whole folder: one that is a folder on disk or in the index (its subtree), its
   * .gitignore (the rules change), one not valid UTF-8, or a folder that cannot be read.
   * Names the events did not give are taken as unchanged: the caller vouches for that.
   */
  scanNames(dir: Entry, dirRel: string, names: Iterable<string>, rules: IgnoreRules): boolean {
    const { location, store, counts } = this.o;
    const dirAbs = dirRel === '' ? location.rootPath : path.join(location.rootPath, dirRel);
    const prefix = dirAbs.endsWith('/') ? dirAbs : `${dirAbs}/`;
    const looks: Array<{ name: string; st: fs.Stats | undefined; entry: Entry | undefined }> = [];
    for (const name of names) {
      if (name === '.gitignore' || name === '' || name.includes('/') || name.includes('\ufffd')) return false;
      const entry = store.child(dir.id, name);
      if (entry?.kind === 'dir') return false;
      const st = lstatNamed(prefix + name);
      if (st === 'unreadable' || st?.isDirectory()) return false;
      looks.push({ name, st, entry });
    }
    // A folder gone since the batch began answers ENOENT for every name: its entries are not
    // deleted here but left, as by a listing that failed, to its parent's diff.
    if (looks.some((look) => look.st === undefined)) {
      const here = lstatNamed(dirAbs);
      if (here === undefined || here === 'unreadable' || !here.isDirectory()) return false;
    }
    const chain = store.ancestorIds(dir.id);
    for (const { name, st, entry } of looks) {
      // As in readListing: ignored names, sockets, fifos and devices are skipped (so their entry goes).
      const ignored = st !== undefined && rules.ignores(dirRel, name, false);
      const fields = st && !ignored ? statFields(name, st) : undefined;
      if (st && !fields) counts.ignored++;
      if (fields) this.diffName(dir, dirRel, chain, rules, false, fields, entry);
      else if (entry) this.missing.push({ id: entry.id, parentId: dir.id, name });
    }
    this.touched.add(dir.id);
    return true;
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

  /** The folder as on disk: from the walker when it has read it already, else read here. */
  private list(dirAbs: string, dirRel: string, parentRules: IgnoreRules): { listing: Listing; rules: IgnoreRules } {
    const seq = this.listed++;
    // Small trees are done before a thread would have started: only bigger ones get one.
    if (this.walkerWanted && seq === WALK_START_FOLDERS) this.walker = WalkAhead.start(this.o.location);
    const walked = this.walker?.take(seq, dirRel);
    if (walked) return { listing: walked, rules: walked.failed ? parentRules : parentRules.enter(dirAbs, dirRel, walked.hasGitignore) };
    return readListing(dirAbs, dirRel, parentRules);
  }

  /** `chain`: the ids from the location root down to dir itself (the closure rows of its new children). */
  private scanDir(dir: Entry, dirRel: string, chain: number[], parentRules: IgnoreRules, recursive: boolean, knownEmpty: boolean): number {
    const { location, store, batch, counts, warnings } = this.o;
    const dirAbs = dirRel === '' ? location.rootPath : path.join(location.rootPath, dirRel);
    const { listing, rules } = this.list(dirAbs, dirRel, parentRules);
    if (listing.failed) {
      const code = listing.errorCode;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        // Gone since it was listed: the parent's pass (or the next one) removes it.
        return dir.aggregateSize;
      }
      // Unreadable: keep what we knew about it, index around it and say so.
      warnings.add(dirAbs, `not readable (${code ?? listing.errorText}); its contents were left as they were`);
      return dir.aggregateSize;
    }
    counts.ignored += listing.ignored;
    const existing = new Map<string, Entry>();
    if (!knownEmpty) for (const child of store.childrenOf(dir)) existing.set(child.name, child);

    let aggregate = 0;
    for (let i = 0; i < listing.names.length; i++) {
      const fields = listedFields(listing, i);
      if (!fields) {
        warnings.add(path.join(dirAbs, listing.names[i]!), 'name is not valid UTF-8; skipped (rename it to index it)');
        continue;
      }
      const entry = existing.get(fields.name);
      existing.delete(fields.name);
      aggregate += this.diffName(dir, dirRel, chain, rules, recursive, fields, entry);
    }
    for (const gone of existing.values()) this.missing.push({ id: gone.id, parentId: dir.id, name: gone.name });

    if (recursive) {
      const dirId = dir.id;
      if (dir.aggregateSize !== aggregate) batch.write(() => store.setAggregate(dirId, aggregate));
    }
    return aggregate;
  }

  /**
   * Brings one name of a folder in line with the disk: `fields` is the name as on disk,
   * `entry` the folder's entry of that name (if any). Returns the name's share of the
   * folder's aggregate size. The one path for a listed name and for a name an event gave.
   */
  private diffName(dir: Entry, dirRel: string, chain: number[], rules: IgnoreRules, recursive: boolean, fields: EntryFields, entry: Entry | undefined): number {
    const { location, store, batch, counts } = this.o;
    const { name, kind, inode: ino } = fields;
    counts.scanned++;
    this.o.onEntry?.();

    if (entry && entry.kind !== kind) {
      const gone = entry;
      counts.deleted += batch.write(() => store.deleteSubtree(gone.id));
      entry = undefined;
    }
    // Folders that are new or moved here are walked whole even in a shallow pass.
    let walkWhole = false;
    if (!entry && this.o.inodes.has(ino)) {
      entry = this.claimMoved(dir.id, fields);
      walkWhole = entry !== undefined;
    }
    let isNew = false;
    if (entry) {
      this.updateIfChanged(entry, fields);
    } else {
      const id = batch.write(() => store.insertBelow(chain, this.deviceId, location.id, fields));
      entry = { id, deviceId: this.deviceId, locationId: location.id, parentId: dir.id, ...fields, contentId: null, aggregateSize: 0 };
      this.o.inodes.add(ino);
      counts.new++;
      isNew = walkWhole = true;
    }

    if (kind === 'dir') {
      const childRel = dirRel === '' ? name : `${dirRel}/${name}`;
      return recursive || walkWhole ? this.scanDir(entry, childRel, [...chain, entry.id], rules, recursive || walkWhole, isNew) : entry.aggregateSize;
    }
    return kind === 'file' ? fields.size : 0;
  }

  /** An unknown name whose inode we know: a move when the old path no longer holds that inode. */
  private claimMoved(parentId: number, fields: EntryFields): Entry | undefined {
    const { location, store, batch, counts } = this.o;
    for (const candidate of store.byInode(location.id, fields.inode)) {
      if (candidate.kind !== fields.kind || candidate.parentId === null) continue;
      // A move keeps a file's size and mtime; a new file that got a freed inode number does not.
      if (fields.kind !== 'dir' && (candidate.size !== fields.size || candidate.mtime !== fields.mtime)) continue;
      const oldAbs = path.join(location.rootPath, store.relativePath(candidate.id));
      const there = lstatOrUndefined(oldAbs);
      if (there && there.ino === fields.inode) continue; // still there: a hard link, not a move
      const oldParent = candidate.parentId;
      // Moving a folder under itself cannot happen on disk; guard the closure table anyway.
      if (store.ancestorIds(parentId).includes(candidate.id)) continue;
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
      const depth = store.ancestorIds(id).length - 1;
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

// ---------------------------------------------------------------- reading folders
// A folder's listing: what survives the ignore rules, with its lstat, in readdir order,
// as flat arrays (names, and LISTING_FIELDS numbers per name) so that the walker thread
// can hand listings over cheaply. The same code reads folders in both threads.

const KINDS: readonly EntryKind[] = ['file', 'dir', 'symlink'];
/** Kind code of a name that is not valid UTF-8: skipped with a warning, in its place. */
const BAD_NAME = 3;
/** Per name: kind code, size, mtimeMs, inode, mode. */
const LISTING_FIELDS = 5;

export interface Listing {
  rel: string;
  /** readdir failed: errorCode is its errno code (when it has one), errorText its message. */
  failed: boolean;
  errorCode: string | undefined;
  errorText: string;
  /** The folder holds a .gitignore (whether or not the rules skip it). */
  hasGitignore: boolean;
  /** Names skipped by ignore rules, and sockets, fifos and devices. */
  ignored: number;
  names: string[];
  nums: Float64Array | number[];
  /** Where this folder's numbers start in nums. */
  offset: number;
}

function kindCode(st: fs.Stats): number {
  return st.isDirectory() ? 1 : st.isFile() ? 0 : st.isSymbolicLink() ? 2 : -1;
}

/** A name's lstat as the index holds it (as listedFields gives it), or undefined for sockets, fifos and devices. */
function statFields(name: string, st: fs.Stats): EntryFields | undefined {
  const code = kindCode(st);
  if (code < 0) return undefined;
  const kind = KINDS[code]!;
  return { name, kind, size: kind === 'dir' ? 0 : st.size, mtime: st.mtimeMs, inode: st.ino, mode: st.mode };
}

/** A named path's lstat; undefined when nothing is there, 'unreadable' when it cannot be told (its folder gone or not readable). */
function lstatNamed(p: string): fs.Stats | undefined | 'unreadable' {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    return systemCode(err) === 'ENOENT' ? undefined : 'unreadable';
  }
}

/**
 * Name i of a listing as the index holds it (a folder's size is 0), or undefined for a
 * name that is not valid UTF-8 (never indexed).
 */
export function listedFields(listing: Listing, i: number): EntryFields | undefined {
  const n = listing.offset + i * LISTING_FIELDS;
  const { nums } = listing;
  const code = nums[n]!;
  if (code === BAD_NAME) return undefined;
  const kind = KINDS[code]!;
  return { name: listing.names[i]!, kind, size: kind === 'dir' ? 0 : nums[n + 1]!, mtime: nums[n + 2]!, inode: nums[n + 3]!, mode: nums[n + 4]! };
}

/** Reads one folder: readdir, its .gitignore, the ignore rules, an lstat per name kept. */
export function readListing(dirAbs: string, dirRel: string, parentRules: IgnoreRules): { listing: Listing; rules: IgnoreRules } {
  const listing: Listing = { rel: dirRel, failed: false, errorCode: undefined, errorText: '', hasGitignore: false, ignored: 0, names: [], nums: [], offset: 0 };
  let dirents: fs.Dirent<Buffer>[];
  try {
    dirents = fs.readdirSync(dirAbs, { withFileTypes: true, encoding: 'buffer' });
  } catch (err) {
    listing.failed = true;
    listing.errorCode = systemCode(err);
    listing.errorText = String(err);
    return { listing, rules: parentRules };
  }
  listing.hasGitignore = dirents.some((d) => d.name.length === 10 && d.name.toString() === '.gitignore');
  const rules = parentRules.enter(dirAbs, dirRel, listing.hasGitignore);
  // Names never hold '/', and dirAbs is normalised: plain concatenation is path.join here.
  const prefix = dirAbs.endsWith('/') ? dirAbs : `${dirAbs}/`;
  const nums = new Float64Array(dirents.length * LISTING_FIELDS);
  let n = 0;
  for (const dirent of dirents) {
    const name = dirent.name.toString('utf8');
    if (name.includes('\ufffd') && !Buffer.from(name, 'utf8').equals(dirent.name)) {
      listing.names.push(name);
      nums[n] = BAD_NAME;
      n += LISTING_FIELDS;
      continue;
    }
    if (rules.ignores(dirRel, name, dirent.isDirectory())) {
      listing.ignored++;
      continue;
    }
    const st = lstatOrUndefined(prefix + name);
    if (!st) continue; // vanished between listing and stat
    const code = kindCode(st);
    if (code < 0) {
      listing.ignored++; // sockets, fifos and devices are not content
      continue;
    }
    listing.names.push(name);
    nums[n] = code;
    nums[n + 1] = st.size;
    nums[n + 2] = st.mtimeMs;
    nums[n + 3] = st.ino;
    nums[n + 4] = st.mode;
    n += LISTING_FIELDS;
  }
  listing.nums = nums;
  return { listing, rules };
}

// ---------------------------------------------------------------- walking ahead
// A whole-location scan spends about as long in readdir/lstat as in SQLite. Once a scan
// has read WALK_START_FOLDERS folders (a small tree never gets there), a worker thread
// walks the tree from the root in the scan's own order (depth first, readdir order) and
// posts the listings; the scan takes each folder's listing from it. Until the worker has
// read its first folder the scan reads folders itself; after that it waits for the one
// it needs, which the worker then posts at once.
// When the tree changed between the two looks (the walker's listing is not the folder
// the scan expects) the walker is dropped. Either way the scan sees one listing per
// folder, read once, so the result is the same as without the walker.

/** Folders a scan reads itself before it starts a walker (which starts over from the root). */
const WALK_START_FOLDERS = 64;
/** Folders, and names in them, the walker may read ahead of the scan (bound the memory of queued listings). */
const WALK_AHEAD_FOLDERS = 4096;
const WALK_AHEAD_NAMES = 65536;
/** A batch is posted when it holds this many names or folders, or the scan waits for it. */
const WALK_BATCH_NAMES = 2048;
const WALK_BATCH_FOLDERS = 256;
/** The scan stops waiting and reads the folder itself when the walker shows no progress for this long. */
const WALK_STALL_MS = 2000;

/** Slots of the state shared by the scan and the walker (an Int32Array over a SharedArrayBuffer). */
const NEEDED = 0; // the folder number the scan needs now (written by the scan)
const LISTED = 1; // folders the walker has read
const POSTED = 2; // folders the walker has posted
const ENDED = 3; // 1: the walker is done, 2: it failed

interface WalkerData {
  sdfsWalker: true;
  location: Location;
  port: MessagePort;
  shared: Int32Array;
}

interface WalkBatch {
  /** Walk order number of the first folder. */
  first: number;
  /** Per folder: rel, failed (0/1), errorCode ('' when none), errorText, hasGitignore (0/1), ignored, names. */
  folders: Array<[string, number, string, string, number, number, number]>;
  /** The names of all folders, joined by '/' (which no name holds). */
  names: string;
  nums: Float64Array;
}

interface ReceivedBatch {
  first: number;
  listings: Listing[];
}

class WalkAhead {
  private queue: ReceivedBatch[] = [];
  private stopped = false;

  private constructor(
    private readonly worker: Worker,
    private readonly port: MessagePort,
    private readonly shared: Int32Array,
  ) {}

  static start(location: Location): WalkAhead | undefined {
    try {
      const { port1, port2 } = new MessageChannel();
      const shared = new Int32Array(new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT));
      const data: WalkerData = { sdfsWalker: true, location, port: port2, shared };
      const worker = new Worker(new URL(import.meta.url), { workerData: data, transferList: [port2] });
      // A failed walker only means the scan reads every folder itself.
      worker.on('error', () => Atomics.store(shared, ENDED, 2));
      worker.unref();
      return new WalkAhead(worker, port1, shared);
    } catch {
      return undefined;
    }
  }

  /** The listing of folder number seq from the walker; undefined means read it here. */
  take(seq: number, rel: string): Listing | undefined {
    if (this.stopped) return undefined;
    const shared = this.shared;
    Atomics.store(shared, NEEDED, seq);
    Atomics.notify(shared, NEEDED);
    let lastProgress = -1;
    let since = 0;
    for (;;) {
      while (this.queue.length > 0 && this.queue[0]!.first + this.queue[0]!.listings.length <= seq) this.queue.shift();
      if (this.queue.length > 0) break;
      const received = receiveMessageOnPort(this.port);
      if (received) {
        this.queue.push(unpackBatch(received.message as WalkBatch));
        continue;
      }
      const posted = Atomics.load(shared, POSTED);
      const listed = Atomics.load(shared, LISTED);
      if (posted > seq) continue; // posted between our two looks
      // Not started yet, or finished without this folder.
      if (listed === 0 || Atomics.load(shared, ENDED) !== 0) return this.dropIfEnded();
      // It has read this folder, or will soon: it posts as soon as it sees we wait. (Reading
      // it here instead would only race the walker over the same folders.)
      const progress = listed + posted;
      if (progress !== lastProgress) {
        lastProgress = progress;
        since = performance.now();
      } else if (performance.now() - since > WALK_STALL_MS) {
        this.stop();
        return undefined;
      }
      Atomics.wait(shared, POSTED, posted, 50);
    }
    const head = this.queue[0]!;
    const listing = head.first <= seq ? head.listings[seq - head.first] : undefined;
    if (!listing || listing.rel !== rel) {
      // The tree changed between the walker's look and ours: go on without it.
      this.stop();
      return undefined;
    }
    return listing;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.queue = [];
    this.port.close();
    void this.worker.terminate();
  }

  private dropIfEnded(): undefined {
    if (Atomics.load(this.shared, ENDED) !== 0) this.stop();
    return undefined;
  }
}

function unpackBatch(batch: WalkBatch): ReceivedBatch {
  const names = batch.names === '' ? [] : batch.names.split('/');
  const listings: Listing[] = [];
  let at = 0;
  for (const [rel, failed, errorCode, errorText, hasGitignore, ignored, count] of batch.folders) {
    listings.push({
      rel,
      failed: failed === 1,
      errorCode: errorCode === '' ? undefined : errorCode,
      errorText,
      hasGitignore: hasGitignore === 1,
      ignored,
      names: names.slice(at, at + count),
      nums: batch.nums,
      offset: at * LISTING_FIELDS,
    });
    at += count;
  }
  return { first: batch.first, listings };
}

/** The worker thread: walks the location in scan order and posts listings in batches. */
function runWalker({ location, port, shared }: WalkerData): void {
  let listed = 0;
  /** Names in the folders before folder number i (so the names ahead of the scan are known). */
  const namesBefore: number[] = [0];
  let batch: WalkBatch = { first: 0, folders: [], names: '', nums: new Float64Array(0) };
  let names: string[] = [];
  let nums: number[] = [];
  const post = () => {
    if (batch.folders.length === 0) return;
    batch.names = names.join('/');
    batch.nums = Float64Array.from(nums);
    port.postMessage(batch, [batch.nums.buffer as ArrayBuffer]);
    batch = { first: listed, folders: [], names: '', nums: new Float64Array(0) };
    names = [];
    nums = [];
    Atomics.store(shared, POSTED, listed);
    Atomics.notify(shared, POSTED);
  };
  /** The scan waits for a folder in the batch being filled. */
  const scanWaits = () => {
    const needed = Atomics.load(shared, NEEDED);
    return needed >= batch.first && needed < listed;
  };
  const walk = (dirAbs: string, dirRel: string, parentRules: IgnoreRules): void => {
    const ahead = (needed: number) => listed - needed > WALK_AHEAD_FOLDERS || namesBefore[listed]! - namesBefore[needed]! > WALK_AHEAD_NAMES;
    for (let needed = Atomics.load(shared, NEEDED); needed < listed && ahead(needed); needed = Atomics.load(shared, NEEDED)) {
      if (scanWaits()) post();
      Atomics.wait(shared, NEEDED, needed, 100);
    }
    const { listing, rules } = readListing(dirAbs, dirRel, parentRules);
    const count = listing.names.length;
    batch.folders.push([dirRel, listing.failed ? 1 : 0, listing.errorCode ?? '', listing.errorText, listing.hasGitignore ? 1 : 0, listing.ignored, count]);
    for (let i = 0; i < count; i++) names.push(listing.names[i]!);
    for (let i = 0; i < count * LISTING_FIELDS; i++) nums.push(listing.nums[i]!);
    namesBefore.push(namesBefore[listed]! + count);
    Atomics.store(shared, LISTED, ++listed);
    if (names.length >= WALK_BATCH_NAMES || batch.folders.length >= WALK_BATCH_FOLDERS || scanWaits()) post();
    if (listing.failed) return;
    const prefix = dirAbs.endsWith('/') ? dirAbs : `${dirAbs}/`;
    for (let i = 0; i < count; i++) {
      if (listing.nums[i * LISTING_FIELDS] !== 1) continue;
      const name = listing.names[i]!;
      walk(prefix + name, dirRel === '' ? name : `${dirRel}/${name}`, rules);
    }
  };
  try {
    walk(location.rootPath, '', IgnoreRules.forLocation(location));
    post();
    Atomics.store(shared, ENDED, 1);
  } catch {
    Atomics.store(shared, ENDED, 2);
  }
  Atomics.notify(shared, POSTED);
}

if (!isMainThread && (workerData as Partial<WalkerData> | null)?.sdfsWalker === true) runWalker(workerData as WalkerData);

