// Waits out another process that holds the library past SQLite's busy timeout, for changes
// that must not be lost (a mirror's batch, a new file's copy job, a job's records): tried
// again until they go.
import { config } from '../../config.js';
import { SdError, isLibraryBusy } from '../../errors.js';
import { log } from '../../log.js';

/** Whether the error is another process holding the library past the busy timeout (SQLite's word, or LIBRARY_LOCKED). */
export function heldByAnotherProcess(err: unknown): boolean {
  return isLibraryBusy(err) || (err instanceof SdError && err.code === 'LIBRARY_LOCKED');
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `change` at once and, while another process holds the library past the busy timeout,
 * again every config.libraryBusyRetryMs; any other error rejects. True once it went through,
 * false when `stopped()` said to give up meanwhile (asked before each wait and after it).
 * `what` names the change in the two log lines: when it starts waiting, and when it went
 * through after waiting; `onWaiting` is told once, when it starts waiting (a command says so),
 * unless stopped already.
 */
export async function whenLibraryFree(what: { op: string } & Record<string, unknown>, change: () => void, stopped: () => boolean, onWaiting?: () => void): Promise<boolean> {
  for (let waited = false; ; waited = true) {
    try {
      change();
      if (waited) log.info(what, 'the library is free again: done');
      return true;
    } catch (err) {
      if (!heldByAnotherProcess(err)) throw err;
      if (stopped()) return false;
      if (!waited) {
        log.warn({ ...what, err: err instanceof Error ? err.message : String(err) }, 'the library is busy with another process: trying again shortly');
        onWaiting?.();
      }
      await sleep(config.libraryBusyRetryMs);
      if (stopped()) return false;
    }
  }
}
