// Extraction in the running node: what new contents' bytes say, read in the background as
// the watcher and actions index files (one file at a time on a worker thread, so FUSE
// requests never wait for a PDF to parse). A pass runs when something is pending.
import { config } from '../../config.js';
import { SdError } from '../../errors.js';
import { log } from '../../log.js';
import { EntryStore } from '../entries.js';
import { ExtractThread } from '../extract/extract-thread.js';
import type { Library } from '../library.js';
import { listLocations } from '../locations.js';
import { anyUnextracted, dropOrphanPending, extractLocation } from './extract-phase.js';
import { WarningList } from './summary.js';

export class BackgroundExtraction {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private thread: ExtractThread | undefined;
  private stopped = false;

  constructor(private readonly library: Library) {}

  start(intervalMs = config.extractIntervalMs): void {
    const tick = () => {
      this.pass();
      if (!this.stopped) this.timer = setTimeout(tick, intervalMs).unref();
    };
    this.timer = setTimeout(tick, Math.min(intervalMs, 500)).unref();
  }

  /** Runs a pass now unless one is running; resolves when the pass (or the running one) ends. */
  pass(): Promise<void> {
    if (this.running || this.stopped) return this.running ?? Promise.resolve();
    const { db, device } = this.library;
    if (!anyUnextracted(db)) return Promise.resolve();
    this.running = this.run(db, device.id).finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(db: Library['db'], deviceId: string): Promise<void> {
    const started = performance.now();
    const warnings = new WarningList();
    let extracted = 0;
    let failed = 0;
    try {
      dropOrphanPending(db, deviceId);
      this.thread ??= new ExtractThread({ timeoutMs: config.extractTimeoutMs });
      const store = new EntryStore(db);
      for (const location of listLocations(db, deviceId)) {
        if (this.stopped) break;
        if (location.indexMode === 'shallow') continue;
        const counts = await extractLocation(db, deviceId, store, location, { thread: this.thread, warnings, shouldStop: () => this.stopped });
        extracted += counts.extracted;
        failed += counts.failed;
      }
    } catch (err) {
      // Another writer holding the library is passing: the next pass goes on.
      const level = err instanceof SdError && err.code === 'LIBRARY_LOCKED' ? 'debug' : 'warn';
      log[level]({ op: 'extract', err: err instanceof Error ? err.message : String(err) }, 'extraction pass stopped');
    }
    if (extracted + failed > 0) {
      log.info({ op: 'extract', extracted, failed, warnings: warnings.samples.slice(0, 5), seconds: Math.round(performance.now() - started) / 1000 }, 'contents read');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.thread?.close();
  }
}
