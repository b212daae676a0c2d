// A library: its directory, its database and this device. `initLibrary` creates one;
// `openLibrary` opens an existing one with a clear error when there is none.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SdError, systemCode } from '../errors.js';
import { openDatabase, type Db } from './db/database.js';
import { commitGrouped } from './db/group-commit.js';
import { createLocalDevice, localDevice, type Device } from './device.js';

export const DATABASE_FILE = 'library.db';

export interface Library {
  dir: string;
  dbPath: string;
  db: Db;
  device: Device;
  close(): void;
}

export function initLibrary(dir: string, name?: string): { library: Library; created: boolean } {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new SdError('PERMISSION', `cannot create the library directory ${dir}: ${systemCode(err) ?? String(err)}`);
  }
  const dbPath = path.join(dir, DATABASE_FILE);
  const db = openDatabase(dbPath, { create: true });
  const existing = localDevice(db);
  if (existing) {
    if (name !== undefined && name !== existing.name) {
      db.close();
      throw new SdError('EXISTS', `library ${dir} already belongs to device '${existing.name}'; it keeps its name`);
    }
    return { library: makeLibrary(dir, dbPath, db, existing), created: false };
  }
  const device = createLocalDevice(db, name ?? os.hostname(), dir);
  return { library: makeLibrary(dir, dbPath, db, device), created: true };
}

export function openLibrary(dir: string): Library {
  const dbPath = path.join(dir, DATABASE_FILE);
  if (!fs.existsSync(dbPath)) {
    throw new SdError('NO_LIBRARY', `no library at ${dir}; run 'sd init' first (or pass --library DIR / set SD_LIBRARY)`);
  }
  const db = openDatabase(dbPath, { create: false });
  const device = localDevice(db);
  if (!device) {
    db.close();
    throw new SdError('LIBRARY_CORRUPT', `library ${dir} has no local device; run 'sd init' to finish creating it`);
  }
  return makeLibrary(dir, dbPath, db, device);
}

function makeLibrary(dir: string, dbPath: string, db: Db, device: Device): Library {
  return {
    dir,
    dbPath,
    db,
    device,
    close: () => {
      commitGrouped(db);
      db.close();
    },
  };
}
