// Checks shared by the tests that change the index: the closure table holds exactly the
// rows parent_id implies, folder sizes are the sums of the files below, and SdErrors
// carry the code and message a caller relies on.
import type Database from 'better-sqlite3';
import type { Test } from 'tap';
import { SdError } from '../src/errors.js';

type Db = Database.Database;
/** A database, or anything holding one (a Library). */
type HasDb = Db | { db: Db };

function dbOf(x: HasDb): Db {
  return 'prepare' in x ? x : x.db;
}

/** Rows of a query, each joined with commas, for comparing with t.same. */
export function sqlRows(from: HasDb, sql: string, ...params: unknown[]): string[] {
  return (dbOf(from).prepare(sql).raw().all(...params) as unknown[][]).map((r) => r.join(','));
}

export function assertClosureExact(t: Test, from: HasDb, what = ''): void {
  const expected = sqlRows(from, `WITH RECURSIVE c(ancestor, descendant, depth) AS (
      SELECT id, id, 0 FROM entries
      UNION ALL
      SELECT e.parent_id, c.descendant, c.depth + 1 FROM c JOIN entries e ON e.id = c.ancestor WHERE e.parent_id IS NOT NULL)
    SELECT ancestor, descendant, depth FROM c ORDER BY 1, 2`);
  t.same(sqlRows(from, 'SELECT ancestor, descendant, depth FROM entry_closure ORDER BY 1, 2'), expected, `closure table matches parent links exactly${what}`);
}

export function assertAggregatesExact(t: Test, from: HasDb, what = ''): void {
  const wrong = sqlRows(from, `SELECT d.id, d.name, d.aggregate_size, coalesce(sum(f.size), 0) AS real FROM entries d
      JOIN entry_closure c ON c.ancestor = d.id
      LEFT JOIN entries f ON f.id = c.descendant AND f.kind = 'file'
      WHERE d.kind = 'dir' GROUP BY d.id HAVING d.aggregate_size != real`);
  t.same(wrong, [], `folder sizes are the sums of the files below them${what}`);
}

export function throwsSdError(t: Test, fn: () => unknown, code: string, message: RegExp, what: string): void {
  try {
    fn();
    t.fail(`${what}: no error`);
  } catch (err) {
    t.ok(err instanceof SdError && err.code === code && message.test(err.message), `${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
