// Shared checks of the action tests: the index is exactly what a fresh index run makes
// of the disk (closure from parent_id, folder sizes, every indexed field).
import type { Test } from 'tap';
import { SdError } from '../src/errors.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import type { Library } from '../src/vdfs/library.js';
import type { Location } from '../src/vdfs/locations.js';
import { assertAggregatesExact, assertClosureExact, sqlRows } from './index-assertions.js';

/** entry_closure holds exactly the rows parent_id implies; folder sizes are the sums of the files below. */
export function assertIndexConsistent(t: Test, library: Library, what = ''): void {
  assertClosureExact(t, library, what);
  assertAggregatesExact(t, library, what);
}

/** Every indexed field of every entry, for comparing the index before and after a fresh index run. */
function snapshot(library: Library): string[] {
  return sqlRows(library, 'SELECT id, parent_id, name, kind, size, mtime, inode, mode, content_id, aggregate_size FROM entries ORDER BY id');
}

/** The index equals what a full index run makes of the disk now: the run changes nothing. */
export function assertIndexExact(t: Test, library: Library, locations: Location[], what = ''): void {
  assertIndexConsistent(t, library, what);
  const before = snapshot(library);
  for (const l of locations) indexLocation(library, l);
  t.same(snapshot(library), before, `a fresh index run changes nothing${what}`);
}

/** fn throws an SdError with this code (and a message matching). */
export function throwsCode(t: Test, fn: () => unknown, code: string, message: RegExp, what: string): void {
  try {
    fn();
    t.fail(`${what}: it did not throw`);
  } catch (err) {
    t.ok(err instanceof SdError && err.code === code && message.test(err.message), `${what} (${err instanceof SdError ? `${err.code}: ${err.message}` : String(err)})`);
  }
}

