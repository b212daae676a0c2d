// The delete action: each target moves into its location's trash folder,
// `.sd-trash/<time>/<path in the location>`, so it can be taken back; --permanent
// removes it for good. A location root is never deleted (use 'sd location rm').
import fs from 'node:fs';
import path from 'node:path';
import type { Library } from '../library.js';
import { resolveLocal, type LocalPath } from './local-path.js';
import { pathInfo } from './plan-transfer.js';
import { emptyPreview, errCode, problem, settle } from './preview.js';
import type { ActionPreview, DeleteInput, Plan, PlanItem } from './types.js';

export const TRASH_FOLDER = '.sd-trash';

/** A trash folder name for now: sortable, safe in file names. */
export function trashStamp(now = new Date()): string {
  return now.toISOString().replace(/:/g, '-');
}

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
    if (input.permanent) {
      items.push({ seq: items.length, op: 'remove', src: target.abs, dst: null, size: st.isFile() ? st.size : 0, contentId: null });
      continue;
    }
    if (!target.location || target.rel === undefined) {
      preview.problems.push(problem('INVALID', `${given} is not inside a location, so it has no trash; pass --permanent to delete it for good`));
      continue;
    }
    const trashRoot = path.join(target.location.rootPath, TRASH_FOLDER, stamp);
    if (fs.lstatSync(target.location.rootPath).dev !== st.dev) {
      preview.problems.push(problem('CROSS_DEVICE', `${given} is on another file system than its location's trash; pass --permanent to delete it for good`));
      continue;
    }
    preview.trash = path.join(target.location.rootPath, TRASH_FOLDER, stamp);
    items.push({ seq: items.length, op: 'trash', src: target.abs, dst: path.join(trashRoot, ...target.rel.split('/')), size: st.isFile() ? st.size : 0, contentId: null });
  }
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
      summary: `${input.permanent ? 'delete for good' : 'move to trash'} ${input.targets.join(', ')}`,
      target: where,
    },
  };
}

/** What the delete would do; writes nothing. */
export function previewDelete(library: Library, input: DeleteInput): ActionPreview {
  return planDelete(library, input).preview;
}
