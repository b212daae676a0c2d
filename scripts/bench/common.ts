// Shared machinery of the benchmarks: argument flags, generated trees in a temp dir that
// is removed at exit, timing of functions and of async child processes, and printing of
// figures (one line each, or one JSON document with --json).
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------- arguments

export interface BenchArgs {
  json: boolean;
  /** Keep the generated data (for profiling); its path is printed. */
  keep: boolean;
  /** Numeric overrides given as --name N (e.g. --files 1000 for a quick run). */
  numbers: Map<string, number>;
  /** Word options given as --name WORD, for the names a benchmark declares (e.g. --only ls). */
  words: Map<string, string>;
  /** Everything that is not a flag. */
  positional: string[];
}

/** The built `sd` command the benches run (`npm run setup` builds it). */
export const SD_MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'sd.cjs');
/**
 * The checkout's `sd` as a user runs it: the benches start `sd mount` through it, which
 * gives the mount its node flags (see bin/sd); bench/scale times the CLI's start-up through
 * it, against `node -e 0`.
 */
export const SD_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'sd');

/** The environment of an `sd` child: this one's, less NODE_OPTIONS (a profiler's flags are for the bench, not its children), plus `extra`. */
export function sdEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  return env;
}

export function parseArgs(argv: readonly string[] = process.argv.slice(2), wordFlags: readonly string[] = []): BenchArgs {
  const args: BenchArgs = { json: false, keep: false, numbers: new Map(), words: new Map(), positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') args.json = true;
    else if (a === '--keep') args.keep = true;
    else if (a.startsWith('--') && wordFlags.includes(a.slice(2)) && i + 1 < argv.length) args.words.set(a.slice(2), argv[++i]!);
    else if (a.startsWith('--') && i + 1 < argv.length && /^[0-9_.e]+$/i.test(argv[i + 1]!)) {
      args.numbers.set(a.slice(2), Number(argv[++i]!.replace(/_/g, '')));
    } else if (a.startsWith('--')) {
      process.stderr.write(`unknown flag ${a}\n`);
      process.exit(2);
    } else args.positional.push(a);
  }
  return args;
}

export function numberArg(args: BenchArgs, name: string, fallback: number): number {
  const v = args.numbers.get(name);
  return v === undefined || !Number.isFinite(v) ? fallback : v;
}

// ---------------------------------------------------------------- temp dirs

const tempDirs = new Set<string>();
let cleanupInstalled = false;
let keepTempDirs = false;

/** A fresh directory under os.tmpdir(), removed when the process ends (unless --keep). */
export function makeTempDir(prefix: string, keep = false): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  keepTempDirs ||= keep;
  if (!cleanupInstalled) {
    cleanupInstalled = true;
    process.on('exit', removeTempDirs);
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.on(sig, () => {
        removeTempDirs();
        process.exit(130);
      });
    }
  }
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs) {
    if (keepTempDirs) process.stderr.write(`kept ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
  tempDirs.clear();
}

// ---------------------------------------------------------------- generated data

/** A small fast PRNG so generated trees are the same from run to run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TreeSpec {
  files: number;
  folders: number;
  /** Sub-folders per folder: folders fill a tree level by level (10: 10, 100, 1,000, ...). */
  fanout?: number;
  /** File sizes are drawn uniformly in [minBytes, maxBytes]. */
  minBytes?: number;
  maxBytes?: number;
  seed?: number;
}

export interface GeneratedTree {
  root: string;
  files: number;
  folders: number;
  bytes: number;
  /** Entries an indexer sees below the root: files + folders. */
  entries: number;
  seconds: number;
}

/**
 * Generates `folders` folders (a balanced tree of the given fanout) holding `files`
 * files spread round-robin over them, each with small random contents.
 */
export function generateTree(root: string, spec: TreeSpec): GeneratedTree {
  const started = performance.now();
  const fanout = spec.fanout ?? 10;
  const minBytes = spec.minBytes ?? 0;
  const maxBytes = spec.maxBytes ?? 4096;
  const random = seededRandom(spec.seed ?? 1);
  const pool = crypto.randomBytes(1 << 20);
  fs.mkdirSync(root, { recursive: true });
  // Folder i (1-based) is child number (i-1) % fanout of folder floor((i-1) / fanout); 0 is the root.
  const dirs: string[] = [root];
  for (let i = 1; i <= spec.folders; i++) {
    const parent = dirs[Math.floor((i - 1) / fanout)]!;
    const dir = path.join(parent, `d${(i - 1) % fanout}`);
    fs.mkdirSync(dir);
    dirs.push(dir);
  }
  let bytes = 0;
  for (let k = 0; k < spec.files; k++) {
    const dir = spec.folders === 0 ? root : dirs[1 + (k % spec.folders)]!;
    const size = minBytes + Math.floor(random() * (maxBytes - minBytes + 1));
    const file = path.join(dir, `f${k}.dat`);
    if (size === 0) {
      fs.closeSync(fs.openSync(file, 'w'));
    } else {
      const offset = Math.floor(random() * (pool.length - size));
      fs.writeFileSync(file, pool.subarray(offset, offset + size));
    }
    bytes += size;
  }
  return { root, files: spec.files, folders: spec.folders, bytes, entries: spec.files + spec.folders, seconds: (performance.now() - started) / 1000 };
}

/**
 * Writes `size` bytes of random-looking data to a new file: a random stamp first (so
 * equal-sized files differ), then the pool from a random offset, wrapping around.
 */
export function writeRandomFile(file: string, size: number, pool: Buffer, random: () => number): void {
  const fd = fs.openSync(file, 'w');
  try {
    const stamp = crypto.randomBytes(Math.min(32, size));
    fs.writeSync(fd, stamp, 0, stamp.length, 0);
    let written = stamp.length;
    let offset = Math.floor(random() * pool.length);
    while (written < size) {
      const n = Math.min(size - written, pool.length - offset, 8 << 20);
      fs.writeSync(fd, pool, offset, n, written);
      written += n;
      offset = (offset + n) % pool.length;
    }
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------- timing

export function timeSync<T>(fn: () => T): { value: T; seconds: number } {
  const started = performance.now();
  const value = fn();
  return { value, seconds: (performance.now() - started) / 1000 };
}

export interface CommandRun {
  seconds: number;
  stdout: string;
}

/**
 * Runs a command as an async child process and times it from spawn to exit. stdout is
 * discarded (as with `> /dev/null`) unless captured.
 */
export function timeCommand(cmd: string, args: readonly string[], options: { captureStdout?: boolean; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CommandRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', options.captureStdout ? 'pipe' : 'ignore', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0) reject(new Error(`${cmd} exited with ${code}: ${Buffer.concat(err).toString().trim().slice(0, 500)}`));
      else resolve({ seconds, stdout: Buffer.concat(out).toString() });
    });
  });
}

/** GNU time: `-f %M` prints a child's peak resident set (its rusage maxrss, KiB) once it exits. */
const GNU_TIME = '/usr/bin/time';
let gnuTime: Promise<boolean> | undefined;
let peakRssRuns = 0;

/** Whether GNU time is installed here (`apt-get install time`); BusyBox's has no -f %M. */
export function hasGnuTime(): Promise<boolean> {
  gnuTime ??= timeCommand(GNU_TIME, ['-f', '%M', 'true']).then(() => true, () => false);
  return gnuTime;
}

/**
 * timeCommand, and the child's peak resident set (bytes) as the kernel counted it, through
 * GNU time when it is installed (undefined otherwise). GNU time adds one fork and exec.
 */
export async function timeCommandWithPeakRss(cmd: string, args: readonly string[], options: { captureStdout?: boolean; cwd?: string } = {}): Promise<CommandRun & { peakRssBytes?: number }> {
  if (!(await hasGnuTime())) return timeCommand(cmd, args, options);
  const out = path.join(os.tmpdir(), `sdfs-bench-rss-${process.pid}-${peakRssRuns++}`);
  try {
    const run = await timeCommand(GNU_TIME, ['-f', '%M', '-o', out, cmd, ...args], options);
    const kib = Number(fs.readFileSync(out, 'utf8').trim().split('\n').pop());
    return Number.isFinite(kib) ? { ...run, peakRssBytes: kib * 1024 } : run;
  } finally {
    fs.rmSync(out, { force: true });
  }
}

/**
 * Writes generated data out to disk (`sync`) so that its writeback does not run during a
 * timed part: freshly written files make every fsync (SQLite checkpoints) wait for them.
 */
export async function flushToDisk(): Promise<number> {
  return (await timeCommand('sync', [])).seconds;
}

/** CPU seconds (user + system, all threads) a process used so far, from /proc (Linux). */
export function cpuSecondsOf(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime: fields 14 and 15, in ticks of 1/100 s
}

export async function commandExists(cmd: string): Promise<boolean> {
  try {
    await timeCommand('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/** Best (lowest) time of `runs` runs of fn, with the value of that run. */
export async function bestOf<T extends { seconds: number }>(runs: number, fn: () => T | Promise<T>): Promise<T> {
  let best: T | undefined;
  for (let i = 0; i < runs; i++) {
    const r = await fn();
    if (!best || r.seconds < best.seconds) best = r;
  }
  return best!;
}

// ---------------------------------------------------------------- figures

export interface Aim {
  /** '>=': at least value; '<=': at most value. */
  op: '>=' | '<=';
  value: number;
}

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** How it was measured, the reference, counts. */
  note?: string;
  aim?: Aim;
  met?: boolean;
}

/** Collects figures; prints each at once (human) or all at the end (--json). */
export class Report {
  readonly figures: Figure[] = [];
  readonly notes: string[] = [];
  readonly setup: Record<string, unknown> = {};

  constructor(
    readonly bench: string,
    readonly json: boolean,
  ) {
    this.setup.machine = machine();
  }

  figure(f: Figure): Figure {
    if (f.aim) f.met = f.aim.op === '>=' ? f.value >= f.aim.value : f.value <= f.aim.value;
    this.figures.push(f);
    if (!this.json) process.stdout.write(formatFigure(f) + '\n');
    return f;
  }

  /** A remark that is not a figure (a skipped reference, the data set). */
  note(text: string): void {
    this.notes.push(text);
    if (!this.json) process.stdout.write(`# ${text}\n`);
  }

  /**
   * The machine and how busy it is (1-minute load average), for reading the figures:
   * other work on a 2-core box slows everything, the references included.
   */
  noteMachine(when: 'start' | 'end'): void {
    const load = os.loadavg()[0] ?? 0;
    this.setup[`loadAverage${when === 'start' ? 'Start' : 'End'}`] = load;
    const m = machine();
    if (when === 'start') this.note(`machine: ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, node ${m.node}; load average ${load.toFixed(2)}`);
    else this.note(`load average at the end: ${load.toFixed(2)}`);
  }

  /** Progress for the person waiting; stderr, human mode only. */
  progress(text: string): void {
    if (!this.json) process.stderr.write(`.. ${text}\n`);
  }

  finish(): void {
    if (this.json) {
      process.stdout.write(JSON.stringify({ bench: this.bench, setup: this.setup, figures: this.figures, notes: this.notes }, null, 2) + '\n');
    }
  }
}

export function formatFigure(f: Figure): string {
  let line = `${f.name.padEnd(26)} ${formatNumber(f.value).padStart(12)} ${f.unit}`;
  if (f.note) line += `  (${f.note})`;
  if (f.aim) line += `  [aim ${f.aim.op === '>=' ? '≥' : '≤'} ${formatNumber(f.aim.value)}: ${f.met ? 'met' : 'MISSED'}]`;
  return line;
}

export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 1000) return Math.round(x).toLocaleString('en-US');
  if (abs >= 100) return x.toFixed(0);
  if (abs >= 10) return x.toFixed(1);
  if (abs >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

/** An integer count with thousands separators. */
export function formatCount(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

export function mb(bytes: number): number {
  return bytes / 1e6;
}

export function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

export function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return { node: process.version, cores: cpus.length, cpu: cpus[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), tmpdir: os.tmpdir() };
}

/** The kernel's peak resident set of this process (VmHWM), in bytes. */
export function peakRssBytes(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples process RSS on demand and on a timer; keeps the peak. */
export class RssSampler {
  peak = process.memoryUsage.rss();
  samples = 0;
  private timer: NodeJS.Timeout | undefined;

  start(intervalMs = 50): this {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
    return this;
  }

  sample(): void {
    const rss = process.memoryUsage.rss();
    this.samples++;
    if (rss > this.peak) this.peak = rss;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sample();
  }
}

export function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}
