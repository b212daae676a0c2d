// What an index or watcher pass did: counts per kind of change, warnings, timing.

export interface IndexCounts {
  /** Entries looked at on disk. */
  scanned: number;
  new: number;
  modified: number;
  moved: number;
  deleted: number;
  unchanged: number;
  /** Files given a content id. */
  identified: number;
  /** Files given a full BLAKE3 (deep mode). */
  fullHashed: number;
  /** Names skipped by ignore rules. */
  ignored: number;
}

export interface IndexWarning {
  path: string;
  reason: string;
}

export interface IndexSummary {
  location: string;
  mode: string;
  seconds: number;
  counts: IndexCounts;
  warnings: number;
  /** The first warnings, for the user to act on. */
  warningSamples: IndexWarning[];
  errors: number;
}

export const MAX_WARNING_SAMPLES = 20;

export function emptyCounts(): IndexCounts {
  return { scanned: 0, new: 0, modified: 0, moved: 0, deleted: 0, unchanged: 0, identified: 0, fullHashed: 0, ignored: 0 };
}

export class WarningList {
  count = 0;
  readonly samples: IndexWarning[] = [];

  add(path: string, reason: string): void {
    this.count++;
    if (this.samples.length < MAX_WARNING_SAMPLES) this.samples.push({ path, reason });
  }
}

export type IndexPhase = 'discovery' | 'processing' | 'aggregation' | 'content' | 'finalize';

export interface IndexProgress {
  phase: IndexPhase;
  done: number;
  total?: number;
}
