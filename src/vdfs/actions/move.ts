// The move action: one rename(2) per source on the same file system; across file
// systems a verified copy, then the source is deleted.
import type { Library } from '../library.js';
import { planTransfer } from './plan-transfer.js';
import type { ActionPreview, MoveInput, Plan } from './types.js';

export function planMove(library: Library, input: MoveInput): Plan {
  return planTransfer(library, 'move', input);
}

/** What the move would do; reads the disk and the index, writes nothing. */
export function previewMove(library: Library, input: MoveInput): ActionPreview {
  return planMove(library, input).preview;
}
