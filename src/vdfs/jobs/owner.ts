// Which process runs a job: 'pid:starttime' (the start time from /proc tells a live
// process from a later one that got the same pid), and whether that process still lives.
import fs from 'node:fs';

function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22, counted after the ')' that closes the command name (which may hold spaces).
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

let self: string | undefined;

export function ownerToken(): string {
  return (self ??= `${process.pid}:${startTime(process.pid) ?? '0'}`);
}

export function ownerPid(token: string): number {
  return Number(token.split(':')[0]);
}

export function isOwnerAlive(token: string): boolean {
  if (token === ownerToken()) return true;
  const [pidText, started] = token.split(':');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = startTime(pid);
  return now === undefined || started === '0' || now === started;
}

let boot: string | undefined;

/** This boot of the machine: a checkpoint from another boot may have lost unsynced bytes. */
export function bootId(): string {
  if (boot === undefined) {
    try {
      boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      boot = '';
    }
  }
  return boot;
}
