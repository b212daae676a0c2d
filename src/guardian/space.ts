// Free space of every device's locations: each device measures its own (statfs of each
// location's root) and shares the figure through its log, so any device can tell where
// copies fit (sd guardian protect puts them where there is the most room). A figure goes
// into the log only when it moved by more than SPACE_STEP or is older than SPACE_REFRESH_MS.
import fs from 'node:fs';
import { log } from '../log.js';
import type { Db } from '../vdfs/db/database.js';
import { listLocations } from '../vdfs/locations.js';

export interface Space {
  free: number;
  total: number;
  /** When the device measured it (ms since the epoch). */
  at: number;
}

/** A change of more than this share of the file system is shared again. */
const SPACE_STEP = 0.01;
const SPACE_REFRESH_MS = 6 * 3600 * 1000;

/** Stores a location's free space (this device's measure or a peer's from its log). */
export function recordSpace(db: Db, locationId: number, space: Space): void {
  db.prepare(
    `INSERT INTO location_space (location_id, free_bytes, total_bytes, measured_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (location_id) DO UPDATE SET free_bytes = excluded.free_bytes, total_bytes = excluded.total_bytes, measured_at = excluded.measured_at
     WHERE excluded.measured_at >= location_space.measured_at`,
  ).run(locationId, space.free, space.total, space.at);
}

/** The last known free space of every location (any device's) that has one. */
export function spaceByLocation(db: Db): Map<number, Space> {
  const rows = db.prepare('SELECT location_id AS id, free_bytes AS free, total_bytes AS total, measured_at AS at FROM location_space').all() as Array<Space & { id: number }>;
  return new Map(rows.map((r) => [r.id, { free: r.free, total: r.total, at: r.at }]));
}

/**
 * Measures this device's locations now; a figure that moved enough (or is old) is stored
 * and queued for the log. Returns how many were shared. A location whose root is not
 * there (an unplugged disk) is skipped.
 */
export function measureLocalSpace(db: Db, deviceId: string, now = Date.now()): number {
  const known = spaceByLocation(db);
  const outbox = db.prepare(`INSERT INTO index_outbox (op, id, extra) VALUES ('space', ?, ?)`);
  let shared = 0;
  for (const location of listLocations(db, deviceId)) {
    let st: fs.StatsFs;
    try {
      st = fs.statfsSync(location.rootPath);
    } catch (err) {
      log.debug({ op: 'space', location: location.name, err: String(err) }, 'location root not reachable; its free space is not measured');
      continue;
    }
    const space: Space = { free: st.bavail * st.bsize, total: st.blocks * st.bsize, at: now };
    const before = known.get(location.id);
    if (before && Math.abs(before.free - space.free) <= SPACE_STEP * space.total && now - before.at < SPACE_REFRESH_MS) continue;
    db.transaction(() => {
      recordSpace(db, location.id, space);
      outbox.run(location.id, JSON.stringify(space));
    })();
    shared++;
  }
  return shared;
}
