// What a scrub concludes from a file's full BLAKE3, read now, and its last check.
import { isCurrent, type CopyCheck } from '../content/copy-checks.js';

export interface ScrubVerdict {
  /** The hash the file's bytes should have: the last check's when the file is unchanged since, else what was read. */
  expected: string;
  /** The bytes differ from what they were when last checked, while size and mtime did not change: bit rot. */
  corrupt: boolean;
}

/**
 * A check made when the file had the size and mtime it has now is what its bytes must
 * still hash to; anything else is rot (an edit changes the mtime). Without such a check
 * (never read whole, or changed since), what was read becomes the check. A file found
 * corrupt stays so until its bytes hash to the expected value again (a repair).
 */
export function scrubVerdict(last: CopyCheck | undefined, now: { size: number; mtime: number }, hash: string): ScrubVerdict {
  if (!isCurrent(last, now)) return { expected: hash, corrupt: false };
  return { expected: last.fullHash, corrupt: hash !== last.fullHash };
}
