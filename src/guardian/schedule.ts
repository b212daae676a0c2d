// The scrub schedule of this device (not shared: each device reads its own disks): how
// often the running mount scrubs all of its locations, and at what read speed. The mount
// checks every config.scrubCheckMs whether one is due: none has run since `everyMs` ago
// and none is queued or running.
import { config } from '../config.js';
import type { Db } from '../vdfs/db/database.js';

export interface ScrubSchedule {
  everyMs: number;
  /** Bytes per second. */
  rate: number;
}

export function scrubSchedule(db: Db): ScrubSchedule | undefined {
  const row = db.prepare('SELECT every_ms AS everyMs, rate FROM scrub_schedule WHERE id = 1').get() as ScrubSchedule | undefined;
  return row;
}

export function setScrubSchedule(db: Db, schedule: ScrubSchedule | undefined): void {
  if (!schedule) db.prepare('DELETE FROM scrub_schedule').run();
  else db.prepare('INSERT OR REPLACE INTO scrub_schedule (id, every_ms, rate) VALUES (1, ?, ?)').run(schedule.everyMs, schedule.rate || config.scrubDefaultRate);
}

/** When the last scrub job was committed (any state but cancelled), and whether one is waiting or running. */
export function lastScrub(db: Db): { at: number | null; active: boolean } {
  const at = db.prepare("SELECT max(created_at) FROM jobs WHERE kind = 'scrub' AND status != 'cancelled'").pluck().get() as number | null;
  const active = db.prepare("SELECT 1 FROM jobs WHERE kind = 'scrub' AND status IN ('queued', 'running', 'paused') LIMIT 1").get() !== undefined;
  return { at, active };
}

/** Whether a scheduled scrub is due now. */
export function scrubDue(db: Db, now = Date.now()): ScrubSchedule | undefined {
  const schedule = scrubSchedule(db);
  if (!schedule) return undefined;
  const last = lastScrub(db);
  if (last.active || (last.at !== null && now - last.at < schedule.everyMs)) return undefined;
  return schedule;
}

/** Reads "90m", "24h", "7d" (a bare number is hours) as milliseconds; undefined when not a positive duration. */
export function parseEvery(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([mhd]?)$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * ({ m: 60_000, h: 3_600_000, d: 86_400_000, '': 3_600_000 } as const)[m[2] as 'm' | 'h' | 'd' | ''];
  return n > 0 ? Math.round(n) : undefined;
}
