// Plans a copy or a move without writing anything: where each source goes (into an
// existing folder, or to a new name), the steps in order (folders before what is in
// them), conflicts and what --on-conflict does with them, dedup against the target
// location, permissions, free space and an estimated time.
import fs from 'node:fs';
import path from 'node:path';
import { contentHashOfFile } from '../content/identity.js';
import type { Library } from '../library.js';
import { ContentLookup, freeBytes, measuredThroughput, nearestExistingDir } from './estimate.js';
import { renameTarget } from './conflict.js';
import { IndexUpdater, kindOf } from './index-update.js';
import { describeAbs, resolveLocal, type LocalPath } from './local-path.js';
import { errCode, problem } from './preview.js';
import type { ActionPreview, Conflict, ConflictMode, CopyInput, DedupHit, PathInfo, PermissionProblem, Plan, PlanItem, PlanOp, Problem } from './types.js';
import { lstatOrUndefined, statOrUndefined } from '../fs-stat.js';

/** Names sdfs keeps for itself inside a location; never copied or moved. */
export const OWN_FOLDERS = new Set(['.sd-trash', '.sd-staging']);
/** Unindexed source files hashed for the dedup report at most (beyond: reported as partial). */
const DEDUP_HASH_LIMIT = 2000;
const SAMPLE_LIMIT = 100;

export function pathInfo(p: LocalPath): PathInfo {
  return { given: p.given, path: p.abs, sdpath: p.sdpath, location: p.location?.name ?? null };
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

/** Collects the problems and facts a plan reports, with capped sample lists. */
class Findings {
  readonly problems: Problem[] = [];
  readonly permissions: PermissionProblem[] = [];
  readonly conflicts: Conflict[] = [];
  conflictCount = 0;
  readonly dedup = { files: 0, bytes: 0, samples: [] as DedupHit[], partial: false };

  permission(p: string, need: 'read' | 'write', errno: string): void {
    if (this.permissions.length < SAMPLE_LIMIT && !this.permissions.some((x) => x.path === p && x.need === need)) this.permissions.push({ path: p, need, errno });
  }

  checkAccess(p: string, need: 'read' | 'write', isDir: boolean): boolean {
    const mode = need === 'read' ? fs.constants.R_OK | (isDir ? fs.constants.X_OK : 0) : fs.constants.W_OK | fs.constants.X_OK;
    try {
      fs.accessSync(p, mode);
      return true;
    } catch (err) {
      this.permission(p, need, errnoOf(err));
      return false;
    }
  }
}

export function planTransfer(library: Library, kind: 'copy' | 'move', input: CopyInput): Plan {
  const onConflict: ConflictMode = input.onConflict ?? 'abort';
  const index = new IndexUpdater(library);
  const f = new Findings();
  const sources: LocalPath[] = [];
  for (const given of input.sources) {
    try {
      sources.push(resolveLocal(library, given));
    } catch (err) {
      f.problems.push(problem(errCode(err), (err as Error).message));
    }
  }
  let target = resolveLocal(library, input.target);
  const targetStat = statOrUndefined(target.abs);
  const intoFolder = targetStat?.isDirectory() === true;
  if (intoFolder && lstatOrUndefined(target.abs)?.isSymbolicLink()) target = { ...describeAbs(library, fs.realpathSync(target.abs)), given: target.given };
  if (!intoFolder && input.sources.length > 1) {
    f.problems.push(problem('NOT_A_DIRECTORY', `${input.target} is not an existing folder; with several sources the target must be one`));
  }
  if (!intoFolder && !statOrUndefined(path.dirname(target.abs))?.isDirectory()) {
    f.problems.push(problem('NOT_FOUND', `the folder ${path.dirname(target.abs)} does not exist; create it first ('sd mkdir -p')`));
  }

  const items: PlanItem[] = [];
  const add = (op: PlanOp, src: string | null, dst: string | null, size = 0, contentId: string | null = null) => {
    items.push({ seq: items.length, op, src, dst, size, contentId });
  };
  const targetDirStat = statOrUndefined(intoFolder ? target.abs : nearestExistingDir(path.dirname(target.abs)));
  let sameFs: boolean | null = null;
  let files = 0;
  let dirs = 0;
  let bytes = 0;
  let bytesToCopy = 0;
  const dedupLookup = new ContentLookup(library.db);
  let hashed = 0;
  const renamedTo = new Set<string>();

  /** Content id of a source file: from the index when it is current, else hashed (up to a limit). */
  const sourceId = (abs: string, st: fs.Stats): { id: string | null; entryId?: number } => {
    const where = describeAbs(library, abs);
    const entry = where.location && where.rel !== undefined ? index.entryAt(where.location, where.rel) : undefined;
    if (entry && entry.kind === 'file' && entry.size === st.size && entry.mtime === st.mtimeMs && entry.contentId) return { id: entry.contentId, entryId: entry.id };
    if (st.size === 0) return { id: null };
    if (hashed >= DEDUP_HASH_LIMIT) {
      f.dedup.partial = true;
      return { id: null, entryId: entry?.id };
    }
    hashed++;
    try {
      return { id: contentHashOfFile(abs)?.contentId ?? null, entryId: entry?.id };
    } catch {
      return { id: null };
    }
  };

  /** Records a conflict at dst when something is there; returns whether the step copies bytes. */
  const conflictAt = (op: PlanOp, dst: string, st: fs.Stats, id: string | null): boolean => {
    const there = lstatOrUndefined(dst);
    if (!there) return true;
    if (op === 'mkdir' && there.isDirectory()) return false; // folders merge
    const existing = kindOf(there) ?? 'other';
    const sameAs = (file: string, fileSt: fs.Stats) => st.isFile() && fileSt.isFile() && fileSt.size === st.size && (st.size === 0 || (id !== null && sourceId(file, fileSt).id === id));
    let identical = sameAs(dst, there);
    let resolution: string;
    if (identical) resolution = 'identical: skipped';
    else if (onConflict === 'overwrite') {
      resolution = there.isDirectory() && !st.isDirectory() ? 'cannot replace a folder with a file' : 'overwrite';
      if (there.isDirectory() && !st.isDirectory()) f.problems.push(problem('IS_A_DIRECTORY', `${dst} is a folder; --on-conflict overwrite never replaces a folder with a file (remove it first)`));
    } else if (onConflict === 'rename') {
      const alt = renameTarget(dst, (candidate) => sameAs(candidate, fs.lstatSync(candidate)), renamedTo);
      renamedTo.add(alt.path);
      identical = alt.identical;
      resolution = alt.identical ? `identical: skipped (same as ${path.basename(alt.path)})` : `rename to ${path.basename(alt.path)}`;
    } else resolution = onConflict;
    f.conflictCount++;
    if (f.conflicts.length < SAMPLE_LIMIT) f.conflicts.push({ path: dst, sdpath: describeAbs(library, dst).sdpath, existing, identical, resolution });
    return !identical && onConflict !== 'skip' && onConflict !== 'abort';
  };

  const dedupCheck = (abs: string, st: fs.Stats, id: string | null, entryId: number | undefined) => {
    if (!id || !target.location) return;
    const holder = dedupLookup.holder(id, target.location.id, new Set(entryId === undefined ? [] : [entryId]));
    if (holder === undefined) return;
    f.dedup.files++;
    f.dedup.bytes += st.size;
    if (f.dedup.samples.length < SAMPLE_LIMIT) f.dedup.samples.push({ path: abs, contentId: id, existing: index.store.relativePath(holder) });
  };

  /** Walks a source (pre-order: a folder before what is in it) into steps. */
  const walk = (src: string, dst: string, st: fs.Stats, fileOp: 'copy' | 'rename' | 'move', removeDirs: string[]) => {
    if (st.isDirectory()) {
      dirs++;
      f.checkAccess(src, 'read', true);
      conflictAt('mkdir', dst, st, null);
      add('mkdir', src, dst);
      let names: string[] = [];
      try {
        names = fs.readdirSync(src).sort();
      } catch (err) {
        f.permission(src, 'read', errnoOf(err));
      }
      for (const name of names) {
        if (OWN_FOLDERS.has(name)) continue;
        const childSrc = path.join(src, name);
        const childSt = lstatOrUndefined(childSrc);
        if (childSt) walk(childSrc, path.join(dst, name), childSt, fileOp, removeDirs);
      }
      removeDirs.push(src);
      return;
    }
    if (!st.isFile() && !st.isSymbolicLink()) return; // fifos, sockets, devices are not copied
    files++;
    const { id, entryId } = st.isFile() ? sourceId(src, st) : { id: null, entryId: undefined };
    if (st.isFile()) f.checkAccess(src, 'read', false);
    const copies = conflictAt(fileOp, dst, st, id);
    const size = st.isFile() ? st.size : 0;
    bytes += size;
    if (copies && fileOp !== 'rename') bytesToCopy += size;
    if (st.isFile()) dedupCheck(src, st, id, entryId);
    add(st.isSymbolicLink() && fileOp === 'copy' ? 'symlink' : fileOp, src, dst, size, id);
  };

  /** Counts files and bytes below a folder moved whole (one rename). */
  const countTree = (dir: string) => {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch (err) {
      f.permission(dir, 'read', errnoOf(err));
    }
    for (const name of names) {
      const st = lstatOrUndefined(path.join(dir, name));
      if (!st) continue;
      if (st.isDirectory()) {
        dirs++;
        countTree(path.join(dir, name));
      } else {
        files++;
        if (st.isFile()) bytes += st.size;
      }
    }
  };

  for (const source of sources) {
    const st = lstatOrUndefined(source.abs);
    if (!st) {
      f.problems.push(problem('NOT_FOUND', `${source.given} does not exist`));
      continue;
    }
    const dst = intoFolder ? path.join(target.abs, path.basename(source.abs)) : target.abs;
    if (path.resolve(dst) === path.resolve(source.abs)) {
      f.problems.push(problem('INVALID', `${source.given} and its destination are the same`));
      continue;
    }
    if (st.isDirectory() && isInside(dst, source.abs)) {
      f.problems.push(problem('INVALID', `cannot ${kind} the folder ${source.given} into itself (${dst})`));
      continue;
    }
    if (kind === 'move' && source.location && source.rel === '') {
      f.problems.push(problem('BUSY', `${source.given} is the root of location '${source.location.name}'; 'sd location rm' forgets a location`));
      continue;
    }
    if (kind === 'copy') {
      walk(source.abs, dst, st, 'copy', []);
      continue;
    }
    f.checkAccess(path.dirname(source.abs), 'write', true);
    const same = targetDirStat !== undefined && targetDirStat.dev === st.dev;
    sameFs = sameFs === null ? same : sameFs && same;
    const there = lstatOrUndefined(dst);
    if (same && (!there || !(there.isDirectory() && st.isDirectory()))) {
      // One rename moves it whole (replacing a file there per --on-conflict).
      if (st.isDirectory()) {
        dirs++;
        countTree(source.abs);
      } else {
        files++;
        bytes += st.isFile() ? st.size : 0;
      }
      const { id } = st.isFile() ? sourceId(source.abs, st) : { id: null };
      if (there) conflictAt('rename', dst, st, id);
      add('rename', source.abs, dst, st.isFile() ? st.size : 0, id);
      continue;
    }
    // A folder merging into an existing one, or another file system: step by step.
    const removeDirs: string[] = [];
    walk(source.abs, dst, st, same ? 'rename' : 'move', removeDirs);
    for (const dir of removeDirs) add('rmdir', dir, null);
  }

  const writableDir = intoFolder ? target.abs : nearestExistingDir(path.dirname(target.abs));
  f.checkAccess(writableDir, 'write', true);
  const free = freeBytes(writableDir);
  const fits = free === null || bytesToCopy <= free;
  if (!fits) f.problems.push(problem('DISK_FULL', `needs ${bytesToCopy} bytes on ${writableDir} but only ${free} are free; free some space or copy less`));
  if (onConflict === 'abort' && f.conflicts.some((c) => !c.identical)) {
    const first = f.conflicts.find((c) => !c.identical)!;
    f.problems.push(problem('EXISTS', `${first.path} exists already${f.conflictCount > 1 ? ` (and ${f.conflictCount - 1} more conflicts)` : ''}; choose --on-conflict overwrite|rename|skip`));
  }
  const speed = measuredThroughput(library.db);
  const preview: ActionPreview = {
    action: kind,
    sources: sources.map(pathInfo),
    target: pathInfo(target),
    onConflict,
    files,
    dirs,
    bytes,
    bytesToCopy,
    freeBytes: free,
    fits,
    sameFileSystem: kind === 'move' ? sameFs : null,
    conflicts: f.conflicts,
    conflictCount: f.conflictCount,
    dedup: f.dedup,
    permissionProblems: f.permissions,
    problems: f.problems,
    estimatedSeconds: Math.round((bytesToCopy / speed.bytesPerSec + items.length * 0.0005) * 10) / 10,
    throughputBytesPerSec: speed.bytesPerSec,
    throughputSource: speed.source,
    trash: null,
    guarded: null,
    ok: f.problems.length === 0 && f.permissions.length === 0 && fits,
  };
  const where = target.sdpath ?? target.abs;
  const verb = kind === 'copy' ? 'copy' : 'move';
  return {
    preview,
    items,
    payload: {
      action: { kind, input },
      onConflict,
      verify: input.verify === true,
      bwlimit: input.bwlimit ?? 0,
      summary: `${verb} ${sources.map((s) => s.sdpath ?? s.abs).join(', ')} to ${where}`,
      target: where,
    },
  };
}
