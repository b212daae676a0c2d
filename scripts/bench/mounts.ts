// `sd mount` processes as the benches run them: started through bin/sd as a user starts
// them, waited for until a device's folder lists, watched for memory and CPU from /proc,
// let settle, and stopped (unmounted whatever happened).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { forceUnmount, isMounted } from '../../src/fuse/mount.js';
import { SD_BIN, SD_MAIN, cpuSecondsOf, sdEnv } from './common.js';

/** Peak and current resident memory of a process (VmHWM, VmRSS), in bytes. */
export function memoryOf(pid: number): { peak: number; now: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { peak: kb('VmHWM'), now: kb('VmRSS') };
}

export interface StartedMount {
  child: ChildProcess;
  /** Where it is mounted. */
  at: string;
  /** Seconds from spawn until the device's folder lists through the mount. */
  upSeconds: number;
  /** Seconds from spawn until it says every location is compared with the disk (the start-up diff, after the mount is up). */
  upToDate: Promise<number>;
  /** The last few KB it wrote to stderr. */
  stderr(): string;
}

/** Starts `sd ARGS… mount AT EXTRA…` through bin/sd and waits until `device`'s folder lists through it. */
export async function startMount(at: string, device: string, env: NodeJS.ProcessEnv, extra: readonly string[] = [], timeoutMs = 300_000): Promise<StartedMount> {
  fs.mkdirSync(at, { recursive: true });
  const started = performance.now();
  const child = spawn(SD_BIN, ['mount', at, ...extra], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  const upToDate = new Promise<number>((resolve) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout = (stdout + d).slice(-4000);
      if (stdout.includes('up to date with the disk')) resolve((performance.now() - started) / 1000);
    });
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sd mount ${at} exited: ${stderr}`);
    if (Date.now() > until) throw new Error(`sd mount ${at} was not up within ${timeoutMs / 1000} s: ${stderr}`);
    try {
      if (fs.readdirSync(path.join(at, device)).length > 0) break;
    } catch {
      // not mounted yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, at, upSeconds: (performance.now() - started) / 1000, upToDate, stderr: () => stderr };
}

/** Waits until a process's start-up work is done: under 5 % of a core for a second (at most `maxSeconds`). */
export async function settled(pid: number, maxSeconds = 600): Promise<void> {
  let last = cpuSecondsOf(pid);
  for (let i = 0; i < maxSeconds; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = cpuSecondsOf(pid);
    if (now - last < 0.05) return;
    last = now;
  }
}

/** Stops a child with SIGINT (SIGKILL after 30 s) and unmounts `at` if it is still mounted. */
export async function stopChild(child: ChildProcess, at?: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  if (at && isMounted(at)) await forceUnmount(at);
}

/** The first JSON document a child prints on stdout (one line, or pretty-printed over several). */
export function firstJson<T>(child: ChildProcess, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    let text = '';
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      text += line;
      try {
        resolve(JSON.parse(text) as T);
      } catch {
        // not whole yet
      }
    });
    child.once('exit', (code) => reject(new Error(`${what} ended before it printed its answer (exit ${code})`)));
  });
}

/** Runs `sd --library LIBRARY ARGS…` to its end; its stdout (its stderr in the error when it fails). */
export function sdRun(library: string, argv: readonly string[], env: NodeJS.ProcessEnv = sdEnv()): Promise<string> {
  const child = spawn(process.execPath, [SD_MAIN, '--library', library, ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`sd ${argv.join(' ')} failed: ${err.trim() || `exit ${code}`}`)))));
}

/** `sd pair` on the member's library, `sd pair join` on the newcomer's, as a user would (their mounts may run). */
export async function pairThroughCli(memberLibrary: string, newcomerLibrary: string, bootstrap: string): Promise<void> {
  const shower = spawn(process.execPath, [SD_MAIN, '--library', memberLibrary, '--json', 'pair', '--bootstrap', bootstrap], { env: sdEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  shower.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | null>((resolve) => shower.on('exit', resolve));
  try {
    const words = await Promise.race([
      firstJson<{ words: string[] }>(shower, 'sd pair').then((shown) => shown.words),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`sd pair showed no words within 30 s: ${err}`)), 30_000)),
    ]);
    await sdRun(newcomerLibrary, ['pair', 'join', ...words, '--bootstrap', bootstrap]);
    if ((await exited) !== 0) throw new Error(`sd pair failed: ${err}`);
  } finally {
    if (shower.exitCode === null) shower.kill('SIGKILL');
  }
}
