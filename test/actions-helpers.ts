// Shared checks of the action tests: the index is exactly what a fresh index run makes
// of the disk (closure from parent_id, folder sizes, every indexed field).
import type { Test } from 'tap';
import { SdError } from '../src/errors.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import type { Library } from '../src/vdfs/library.js';
import type { Location } from '../src/vdfs/locations.js';

function rows(library: Library, sql: string): string[] {
  return (library.db.prepare(sql).raw().all() as unknown[][]).map((r) => r.join(','));
}

/** entry_closure holds exactly the rows parent_id implies; folder sizes are the sums of the files below. */
export function assertIndexConsistent(t: Test, library: Library, what = ''): void {
  const expected = rows(library, `WITH RECURSIVE c(ancestor, descendant, depth) AS (
      SELECT id, id, 0 FROM entries
      UNION ALL
      SELECT e.parent_id, c.descendant, c.depth + 1 FROM c JOIN entries e ON e.id = c.ancestor WHERE e.parent_id IS NOT NULL)
    SELECT ancestor, descendant, depth FROM c ORDER BY 1, 2`);
  t.same(rows(library, 'SELECT ancestor, descendant, depth FROM entry_closure ORDER BY 1, 2'), expected, `closure table matches parent links exactly${what}`);
  const wrong = rows(library, `SELECT d.id, d.name, d.aggregate_size, coalesce(sum(f.size), 0) AS real FROM entries d
      JOIN entry_closure c ON c.ancestor = d.id
      LEFT JOIN entries f ON f.id = c.descendant AND f.kind = 'file'
      WHERE d.kind = 'dir' GROUP BY d.id HAVING d.aggregate_size != real`);
  t.same(wrong, [], `folder sizes match the files below them${what}`);
}

/** Every indexed field of every entry, for comparing the index before and after a fresh index run. */
function snapshot(library: Library): string[] {
  return rows(library, 'SELECT id, parent_id, name, kind, size, mtime, inode, mode, content_id, aggregate_size FROM entries ORDER BY id');
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

