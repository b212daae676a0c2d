// The delete action: each target moves into its location's trash folder,
// `.sd-trash/<time>/<path in the location>`, so it can be taken back; --permanent
// removes it for good. A location root is never deleted (use 'sd location rm').
// Files whose removal the guardian stands against (the last copy of a content, or one its
// policy counts on) stop the action unless it is forced (sd rm --force).
import fs from 'node:fs';
import path from 'node:path';
import { LastCopyGuard, type GuardedFile } from '../../guardian/last-copy.js';
import { EntryStore } from '../entries.js';
import type { Library } from '../library.js';
import { resolveLocal, type LocalPath } from './local-path.js';
import { pathInfo } from './plan-transfer.js';
import { emptyPreview, errCode, problem, settle } from './preview.js';
import { trashPathOf, trashRootOf, trashStamp } from './trash.js';
import type { ActionPreview, DeleteInput, GuardedRemovals, Plan, PlanItem } from './types.js';

/** Guarded files a preview names (the rest are counted). */
const GUARDED_SAMPLES = 5;

function tally(abs: string, counts: { files: number; dirs: number; bytes: number }): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(abs);
  } catch {
    return;
  }
  if (!st.isDirectory()) {
    counts.files++;
    if (st.isFile()) counts.bytes += st.size;
    return;
  }
  counts.dirs++;
  let names: string[] = [];
  try {
    names = fs.readdirSync(abs);
  } catch {
    return;
  }
  for (const name of names) tally(path.join(abs, name), counts);
}

export function planDelete(library: Library, input: DeleteInput, now = new Date()): Plan {
  const preview = emptyPreview('delete');
  const items: PlanItem[] = [];
  const stamp = trashStamp(now);
  const counts = { files: 0, dirs: 0, bytes: 0 };
  const targets: LocalPath[] = [];
  const removedEntries: number[] = [];
  const store = new EntryStore(library.db);
  for (const given of input.targets) {
    let target: LocalPath;
    try {
      target = resolveLocal(library, given);
    } catch (err) {
      preview.problems.push(problem(errCode(err), (err as Error).message));
      continue;
    }
    targets.push(target);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(target.abs);
    } catch {
      preview.problems.push(problem('NOT_FOUND', `${given} does not exist`));
      continue;
    }
    if (target.location && target.rel === '') {
      preview.problems.push(problem('BUSY', `${given} is the root of location '${target.location.name}'; 'sd location rm' forgets a location (its files stay)`));
      continue;
    }
    try {
      fs.accessSync(path.dirname(target.abs), fs.constants.W_OK | fs.constants.X_OK);
    } catch (err) {
      preview.permissionProblems.push({ path: path.dirname(target.abs), need: 'write', errno: (err as NodeJS.ErrnoException).code ?? String(err) });
    }
    tally(target.abs, counts);
    const entry = target.location?.rootEntryId != null && target.rel !== undefined ? store.resolve(target.location.rootEntryId, target.rel.split('/')) : undefined;
    if (entry) removedEntries.push(entry.id);
    if (input.permanent) {
      items.push({ seq: items.length, op: 'remove', src: target.abs, dst: null, size: st.isFile() ? st.size : 0, contentId: null });
      continue;
    }
    if (!target.location || target.rel === undefined) {
      preview.problems.push(problem('INVALID', `${given} is not inside a location, so it has no trash; pass --permanent to delete it for good`));
      continue;
    }
    if (fs.lstatSync(target.location.rootPath).dev !== st.dev) {
      preview.problems.push(problem('CROSS_DEVICE', `${given} is on another file system than its location's trash; pass --permanent to delete it for good`));
      continue;
    }
    preview.trash = trashRootOf(target.location.rootPath, stamp);
    items.push({ seq: items.length, op: 'trash', src: target.abs, dst: trashPathOf(target.location.rootPath, target.rel, stamp), size: st.isFile() ? st.size : 0, contentId: null });
  }
  const guard = new LastCopyGuard(library.db, library.device);
  preview.guarded = guardedRemovals(guard, guard.check(removedEntries), input.force === true);
  if (preview.guarded.files > 0 && !input.force) preview.problems.push(guardProblem(preview.guarded));
  preview.sources = targets.map(pathInfo);
  preview.files = counts.files;
  preview.dirs = counts.dirs;
  preview.bytes = counts.bytes;
  preview.estimatedSeconds = Math.round(items.length * 0.001 * 10) / 10;
  const where = targets.map((t) => t.sdpath ?? t.abs).join(', ');
  return {
    preview: settle(preview),
    items,
    payload: {
      action: { kind: 'delete', input },
      onConflict: 'abort',
      verify: false,
      bwlimit: 0,
      summary: `${input.permanent ? 'delete for good' : 'move to trash'} ${input.targets.join(', ')}${preview.guarded.forced ? ` (forced: ${files(preview.guarded.files)} the guardian stood against)` : ''}`,
      target: where,
    },
  };
}

function files(n: number): string {
  return `${n} file${n === 1 ? '' : 's'}`;
}

/** The preview's account of guarded files: how many, their bytes, a few of them and why. */
function guardedRemovals(guard: LastCopyGuard, guarded: readonly GuardedFile[], force: boolean): GuardedRemovals {
  return {
    files: guarded.length,
    bytes: guarded.reduce((n, g) => n + g.size, 0),
    lastCopies: guarded.filter((g) => g.lastCopy).length,
    samples: guarded.slice(0, GUARDED_SAMPLES).map((g) => ({ path: guard.sdPathOf(g.entryId), contentId: g.contentId, why: g.why })),
    forced: force && guarded.length > 0,
  };
}

/** The one line a refused delete answers: how many, what it means, and the way past it. */
function guardProblem(g: GuardedRemovals): ReturnType<typeof problem> {
  const what =
    g.lastCopies === g.files
      ? `${g.files === 1 ? 'is the last copy of its content' : 'are the last copies of their content'} on any device`
      : `${g.files === 1 ? 'is' : 'are'} the last copy or would leave ${g.files === 1 ? 'its content' : 'their content'} below ${g.files === 1 ? 'its' : 'their'} copy policy`;
  return problem('NOT_PERMITTED', `${files(g.files)} ${what}; pass --force to delete anyway`);
}

/** What the delete would do; writes nothing. */
export function previewDelete(library: Library, input: DeleteInput): ActionPreview {
  return planDelete(library, input).preview;
}
