// The mkdir action: a folder (with its missing parents when asked, like mkdir -p).
import fs from 'node:fs';
import path from 'node:path';
import type { Library } from '../library.js';
import { resolveLocal } from './local-path.js';
import { pathInfo } from './plan-transfer.js';
import { emptyPreview, problem, settle } from './preview.js';
import type { ActionPreview, MkdirInput, Plan, PlanItem } from './types.js';

export function planMkdir(library: Library, input: MkdirInput): Plan {
  const preview = emptyPreview('mkdir');
  const items: PlanItem[] = [];
  const target = resolveLocal(library, input.target);
  preview.target = pathInfo(target);
  const missing: string[] = [];
  let dir = target.abs;
  for (;;) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(dir);
    } catch {
      st = undefined;
    }
    if (st) {
      if (!st.isDirectory()) preview.problems.push(problem('NOT_A_DIRECTORY', `${dir} exists and is not a folder`));
      else if (dir === target.abs && !input.parents) preview.problems.push(problem('EXISTS', `${input.target} exists already`));
      else {
        try {
          if (missing.length > 0) fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
        } catch (err) {
          preview.permissionProblems.push({ path: dir, need: 'write', errno: (err as NodeJS.ErrnoException).code ?? String(err) });
        }
      }
      break;
    }
    missing.unshift(dir);
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  if (missing.length > 1 && !input.parents) preview.problems.push(problem('NOT_FOUND', `the folder ${path.dirname(target.abs)} does not exist; pass -p to create it too`));
  for (const m of missing) items.push({ seq: items.length, op: 'mkdir', src: null, dst: m, size: 0, contentId: null });
  preview.dirs = missing.length;
  return {
    preview: settle(preview),
    items,
    payload: { action: { kind: 'mkdir', input }, onConflict: 'skip', verify: false, bwlimit: 0, summary: `mkdir ${input.target}`, target: target.sdpath ?? target.abs },
  };
}

export function previewMkdir(library: Library, input: MkdirInput): ActionPreview {
  return planMkdir(library, input).preview;
}
