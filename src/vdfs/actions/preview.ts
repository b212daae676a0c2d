// A preview with nothing in it yet, for the actions that fill in only part of it.
import { SdError, type SdErrorCode } from '../../errors.js';
import type { ActionKind, ActionPreview, PlanItem, Problem } from './types.js';
import { DEFAULT_THROUGHPUT } from './estimate.js';

export function emptyPreview(action: ActionKind): ActionPreview {
  return {
    action,
    sources: [],
    target: null,
    onConflict: null,
    files: 0,
    dirs: 0,
    bytes: 0,
    bytesToCopy: 0,
    freeBytes: null,
    fits: true,
    sameFileSystem: null,
    conflicts: [],
    conflictCount: 0,
    dedup: { files: 0, bytes: 0, samples: [], partial: false },
    permissionProblems: [],
    problems: [],
    estimatedSeconds: 0,
    throughputBytesPerSec: DEFAULT_THROUGHPUT,
    throughputSource: 'default',
    trash: null,
    guarded: null,
    ok: true,
  };
}

/** Sets `ok` from what the preview found. */
export function settle(preview: ActionPreview): ActionPreview {
  preview.ok = preview.problems.length === 0 && preview.permissionProblems.length === 0 && preview.fits;
  return preview;
}

/** A plan of one step per file that copies it (repair, fetch): its preview counts them, then settles. */
export function settleCopies(preview: ActionPreview, items: readonly PlanItem[]): ActionPreview {
  preview.files = items.length;
  preview.bytes = items.reduce((n, i) => n + i.size, 0);
  preview.bytesToCopy = preview.bytes;
  return settle(preview);
}

export function problem(code: SdErrorCode, message: string): Problem {
  return { code, message };
}

/** The code of an error met while planning (a path that did not resolve). */
export function errCode(err: unknown): SdErrorCode {
  return err instanceof SdError ? err.code : 'IO';
}
