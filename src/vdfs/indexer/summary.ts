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
  /** Contents whose bytes were parsed for their kind, text and metadata (extraction). */
  extracted: number;
  /** Contents whose bytes could not be parsed (each also a warning). */
  extractFailed: number;
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
  return { scanned: 0, new: 0, modified: 0, moved: 0, deleted: 0, unchanged: 0, identified: 0, fullHashed: 0, ignored: 0, extracted: 0, extractFailed: 0 };
}

export class WarningList {
  count = 0;
  readonly samples: IndexWarning[] = [];

  add(path: string, reason: string): void {
    this.count++;
    if (this.samples.length < MAX_WARNING_SAMPLES) this.samples.push({ path, reason });
  }
}

export type IndexPhase = 'discovery' | 'processing' | 'aggregation' | 'content' | 'extraction' | 'finalize';

export interface IndexProgress {
  phase: IndexPhase;
  done: number;
  total?: number;
}

/** The summary of an index pass with its extraction phase's counts, warnings and time added. */
export function withExtraction(s: IndexSummary, counts: { extracted: number; failed: number }, warnings: WarningList, seconds: number): IndexSummary {
  const room = MAX_WARNING_SAMPLES - s.warningSamples.length;
  return {
    ...s,
    seconds: Math.round((s.seconds + seconds) * 1000) / 1000,
    counts: { ...s.counts, extracted: counts.extracted, extractFailed: counts.failed },
    warnings: s.warnings + warnings.count,
    warningSamples: [...s.warningSamples, ...warnings.samples.slice(0, Math.max(0, room))],
  };
}
