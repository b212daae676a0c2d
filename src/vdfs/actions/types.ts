// The actions as data: their typed inputs, the preview each one answers (what would
// happen, with zero writes) and the plan of steps a committed action leaves in its job.
import type { SdErrorCode } from '../../errors.js';

export type ConflictMode = 'overwrite' | 'rename' | 'skip' | 'abort';
export const CONFLICT_MODES: readonly ConflictMode[] = ['overwrite', 'rename', 'skip', 'abort'];

export interface CopyInput {
  /** SdPaths, sd://content/<id> or plain local paths; folders are copied whole. */
  sources: string[];
  /** An existing folder (sources go inside it) or, for one source, the new name. */
  target: string;
  onConflict?: ConflictMode;
  /** Compare the full BLAKE3 of source and copy (default: size + sampled content id). */
  verify?: boolean;
  /** Bytes per second at most (0 or absent: as fast as the disks go). */
  bwlimit?: number;
  /**
   * One source file's full BLAKE3, checked by the caller just before (a peer's bytes that
   * arrived): the copy's check is recorded from it even when the move is a rename, so the
   * new copy counts as verified at once.
   */
  fullHash?: string;
}

export type MoveInput = CopyInput;

export interface DeleteInput {
  targets: string[];
  /** Remove for good instead of moving to the location's .sd-trash folder. */
  permanent?: boolean;
  /** Go ahead even when it removes the last copy of a content, or one its copy policy counts on (sd rm --force). */
  force?: boolean;
}

export interface MkdirInput {
  target: string;
  /** Create missing parents too, and accept an existing folder (mkdir -p). */
  parents?: boolean;
  mode?: number;
}

export interface ScrubInput {
  /** Names of this device's locations to scrub; empty: all of them. */
  locations: string[];
  /** Bytes per second read at most (0 or absent: as fast as the disk goes). */
  rate?: number;
}

export interface RepairInput {
  /** This device's corrupt files (SdPaths or local paths); empty: every corrupt file of this device. */
  targets: string[];
}

export interface FetchInput {
  /** Contents to put on this device, each at a new path in one of its locations (a file there already is kept: the copy gets a numbered name). */
  copies: Array<{ contentId: string; target: string }>;
}

export type Action =
  | { kind: 'fetch'; input: FetchInput }
  | { kind: 'copy'; input: CopyInput }
  | { kind: 'move'; input: MoveInput }
  | { kind: 'delete'; input: DeleteInput }
  | { kind: 'mkdir'; input: MkdirInput }
  | { kind: 'scrub'; input: ScrubInput }
  | { kind: 'repair'; input: RepairInput };

export type ActionKind = Action['kind'];

/**
 * One step of a job, in the order it runs.
 *  mkdir    create the folder dst (or merge into an existing one)
 *  copy     copy the file src to dst (chunked, resumable, verified)
 *  symlink  recreate the link src at dst
 *  rename   move src to dst with one rename(2) (same file system; files or whole folders)
 *  move     move the file src to dst across file systems: copy, verify, delete the source
 *  rmdir    remove the source folder src once a move emptied it (left when not empty)
 *  trash    move src into the location's .sd-trash folder (dst)
 *  remove   delete src for good (folders whole)
 *  scrub    read the file src whole and check its full BLAKE3 against its last check (bit rot)
 *  repair   replace the corrupt file dst with a verified copy of its bytes (src: where they come from)
 *  fetch    put the content contentId at dst, fetched from paired devices and checked by full BLAKE3
 */
export type PlanOp = 'mkdir' | 'copy' | 'symlink' | 'rename' | 'move' | 'rmdir' | 'trash' | 'remove' | 'scrub' | 'repair' | 'fetch';

export interface PlanItem {
  seq: number;
  op: PlanOp;
  src: string | null;
  dst: string | null;
  /** Bytes this step copies or moves (for progress). */
  size: number;
  /** The source's content id when the index knew it (a hint; jobs hash what they copy). */
  contentId: string | null;
}

export interface PathInfo {
  given: string;
  path: string;
  sdpath: string | null;
  location: string | null;
}

export interface Conflict {
  /** The destination that exists already. */
  path: string;
  sdpath: string | null;
  existing: 'file' | 'dir' | 'symlink' | 'other';
  /** Same size and content id as the source: nothing needs copying (skipped in every mode). */
  identical: boolean;
  /** What the chosen --on-conflict mode does with it. */
  resolution: string;
}

export interface PermissionProblem {
  path: string;
  need: 'read' | 'write';
  errno: string;
}

export interface DedupHit {
  path: string;
  contentId: string;
  /** Where the target location already holds that content. */
  existing: string;
}

/** Something that stops the action, with the error code committing it would fail with. */
export interface Problem {
  code: SdErrorCode;
  message: string;
}

/** Files a delete would remove that the guardian stands against: the last copy of a content, or a copy its policy counts on. */
export interface GuardedRemovals {
  files: number;
  bytes: number;
  /** Of those, files whose content no device would hold any more. */
  lastCopies: number;
  /** A few of them, and why: "the last copy", "2 → 1 of 2 copies". */
  samples: Array<{ path: string; contentId: string; why: string }>;
  /** The delete goes ahead anyway (--force). */
  forced: boolean;
}

export interface ActionPreview {
  action: ActionKind;
  sources: PathInfo[];
  target: PathInfo | null;
  onConflict: ConflictMode | null;
  /** Files (and links) the action copies, moves or deletes. */
  files: number;
  /** Folders it creates (copy, mkdir) or deletes. */
  dirs: number;
  /** Bytes of all files involved. */
  bytes: number;
  /** Bytes that must be written on the target (0 for renames and deletes). */
  bytesToCopy: number;
  /** Free bytes for this user on the target's file system (statfs), when known. */
  freeBytes: number | null;
  fits: boolean;
  /** Move: whether source and target share a file system (then it is a rename). */
  sameFileSystem: boolean | null;
  conflicts: Conflict[];
  conflictCount: number;
  /** Files whose content the target location already holds (same content id). */
  dedup: { files: number; bytes: number; samples: DedupHit[]; partial: boolean };
  permissionProblems: PermissionProblem[];
  /** Things that stop the action (missing sources, a folder into itself, no space...). */
  problems: Problem[];
  estimatedSeconds: number;
  throughputBytesPerSec: number;
  throughputSource: 'measured' | 'default';
  /** Delete: where the files go (null for --permanent). */
  trash: string | null;
  /** Delete: the guarded files among those it removes (null for other actions). */
  guarded: GuardedRemovals | null;
  /** Commit would go ahead: no problems, no permission trouble, it fits, no conflict under abort. */
  ok: boolean;
}

/** A plan: the preview plus the steps and what the job needs to know to run them. */
export interface Plan {
  preview: ActionPreview;
  items: PlanItem[];
  payload: JobPayload;
}

/** What a job row keeps besides its items (JSON in jobs.payload). */
export interface JobPayload {
  action: Action;
  onConflict: ConflictMode;
  verify: boolean;
  bwlimit: number;
  /** A short line for listings: "copy 3 files (1.2 GiB) to sd://laptop/docs/x". */
  summary: string;
  /** Where the target is (SdPath or path), for the audit log. */
  target: string;
}
