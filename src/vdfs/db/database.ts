// Opens the library's SQLite file (WAL, foreign keys, busy timeout) and brings its
// schema up to date with the versioned migrations.
import { createRequire } from 'node:module';
// Imported, so that scripts/bundle-cli.ts bundles it with the quick commands: as 14
// CommonJS modules it took ~8 ms CPU of an `sd ls`. From the modules, imported or
// required cost the same (49.8 / 49.2 ms CPU to load it, 31 runs each, Node 20.20; it
// was required to spare a measured 8 ms that this did not find).
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import { config } from '../../config.js';
import { fromSqliteError } from '../../errors.js';
import { MIGRATIONS } from './migrations.js';

const require = createRequire(import.meta.url);

/**
 * better-sqlite3's addon where its build puts it: its own search (the bindings package)
 * loads two modules and reads a stack trace to find its root, 2 ms of each command's
 * start-up (measured). Elsewhere (another build), it searches as usual.
 */
const nativeBinding = ((): { nativeBinding?: string } => {
  try {
    return { nativeBinding: require.resolve('better-sqlite3/build/Release/better_sqlite3.node') };
  } catch {
    return {};
  }
})();

export type Db = BetterSqlite3.Database;

export function openDatabase(file: string, options: { create: boolean }): Db {
  let db: Db | undefined;
  try {
    db = new Database(file, { fileMustExist: !options.create, timeout: config.dbBusyTimeoutMs, ...nativeBinding });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('temp_store = MEMORY');
    db.pragma('cache_size = -32000');
    migrate(db);
    return db;
  } catch (err) {
    db?.close();
    throw fromSqliteError(err, file);
  }
}

/**
 * `make(db)` made once per connection and kept as long as the connection is: for prepared
 * statements that code on a hot path would otherwise prepare again and again (preparing one
 * against this schema costs ~0.6 ms). The statements must not be iterated by two callers at
 * once.
 */
export function perConnection<T>(make: (db: Db) => T): (db: Db) => T {
  const made = new WeakMap<Db, T>();
  return (db) => {
    let value = made.get(db);
    if (value === undefined) made.set(db, (value = make(db)));
    return value;
  };
}

/**
 * A second, read-only connection to a library's database, for a long read (a snapshot)
 * that must not hold the main connection: in WAL mode it reads one consistent picture
 * while the main connection goes on writing. Sorts and temporary tables spill to disk.
 */
export function openReader(file: string): Db {
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: config.dbBusyTimeoutMs, ...nativeBinding });
  db.pragma('temp_store = FILE');
  return db;
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

function migrate(db: Db): void {
  const current = schemaVersion(db);
  // Run in array order above user_version: a version out of order would be skipped for good.
  MIGRATIONS.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.version} stands at place ${i + 1}: the migrations must be numbered 1, 2, 3... in order`);
  });
  for (const migration of MIGRATIONS) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.pragma(`user_version = ${migration.version}`);
    }).immediate();
  }
}
