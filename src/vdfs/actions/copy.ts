// The copy action: sources (files or whole folders) into a folder or to a new name,
// chunked, resumable and verified by the copy job.
import type { Library } from '../library.js';
import { planTransfer } from './plan-transfer.js';
import type { ActionPreview, CopyInput, Plan } from './types.js';

export function planCopy(library: Library, input: CopyInput): Plan {
  return planTransfer(library, 'copy', input);
}

/** What the copy would do; reads the disk and the index, writes nothing. */
export function previewCopy(library: Library, input: CopyInput): ActionPreview {
  return planCopy(library, input).preview;
}
