// The content phase of indexing: gives every non-empty file without one a content id
// (and in deep mode a full BLAKE3), in small transactions, so a killed run resumes with
// the files still missing an id.
import fs from 'node:fs';
import path from 'node:path';
import { config } from '../../config.js';
import { log } from '../../log.js';
import { contentHashOfFd, fullHashOfFile } from '../content/identity.js';
import { CopyChecks } from '../content/copy-checks.js';
import { ContentStore } from '../content/store.js';
import type { Db } from '../db/database.js';
import type { EntryStore } from '../entries.js';
import type { Location } from '../locations.js';
import type { IndexCounts, WarningList } from './summary.js';
import { WriteBatch } from './write-batch.js';

interface Pending {
  id: number;
  parent_id: number;
  name: string;
  size: number;
  mtime: number;
}

export function countUnidentified(db: Db, locationId: number): number {
  return db.prepare(`SELECT count(*) FROM entries WHERE location_id = ? AND kind = 'file' AND size > 0 AND content_id IS NULL`).pluck().get(locationId) as number;
}

export function identifyContent(
  db: Db,
  store: EntryStore,
  location: Location,
  counts: IndexCounts,
  warnings: WarningList,
  onFile?: () => void,
): void {
  const contents = new ContentStore(db);
  const checks = new CopyChecks(db);
  const next = db.prepare(`SELECT id, parent_id, name, size, mtime FROM entries
                           WHERE location_id = ? AND kind = 'file' AND size > 0 AND content_id IS NULL AND id > ?
                           ORDER BY id LIMIT ?`);
  const dirPath = folderPaths(store, location);
  const batch = new WriteBatch(db, config.contentBatchSize);
  let lastId = 0;
  try {
    for (;;) {
      const rows = next.all(location.id, lastId, config.contentBatchSize) as Pending[];
      if (rows.length === 0) break;
      for (const row of rows) {
        lastId = row.id;
        const file = path.join(dirPath(row.parent_id), row.name);
        const hashed = hashIfUnchanged(file, row, location.indexMode === 'deep', warnings);
        onFile?.();
        if (!hashed) continue;
        batch.write(() => {
          contents.record(hashed.contentId, row.size, hashed.sampledHash);
          store.setContentId(row.id, hashed.contentId);
          if (hashed.fullHash) {
            contents.recordFullHash(hashed.contentId, hashed.fullHash);
            checks.recordCurrent(row.id, hashed.fullHash);
          }
        });
        counts.identified++;
        if (hashed.fullHash) counts.fullHashed++;
      }
      batch.commit();
    }
  } catch (err) {
    batch.rollback();
    throw err;
  }
}

function hashIfUnchanged(file: string, row: Pending, deep: boolean, warnings: WarningList) {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') warnings.add(file, `not readable (${code ?? String(err)}); no content id`);
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    // Changed since it was indexed: the next pass updates the entry and hashes it then.
    if (st.size !== row.size || st.mtimeMs !== row.mtime) return undefined;
    const sampled = contentHashOfFd(fd, st.size);
    if (!sampled) return undefined;
    const fullHash = deep ? fullHashOfFile(file) : undefined;
    return { ...sampled, fullHash };
  } catch (err) {
    log.debug({ op: 'identify', file, err: String(err) }, 'hash failed');
    warnings.add(file, `could not be read while hashing (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The real path of a location's folder by its entry id, each folder's path looked up once
 * (the content phases go through files folder by folder).
 */
export function folderPaths(store: EntryStore, location: Location): (folderId: number) => string {
  const paths = new Map<number, string>();
  return (id) => {
    let p = paths.get(id);
    if (p === undefined) paths.set(id, (p = path.join(location.rootPath, store.relativePath(id))));
    return p;
  };
}
