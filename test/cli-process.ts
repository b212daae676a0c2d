// Runs the real `sd` command (bin/sd, a shell script that runs node) as a child process
// the way a user's shell does. Under the tap runner every spawned node inherits tap's
// --import hooks through NODE_OPTIONS (re-added by @tapjs/processinfo's spawn wrapper),
// which the CLI's node is not meant to run with; so the command goes through
// `env -u NODE_OPTIONS`, which the wrapper cannot reach.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Test } from 'tap';
import { REPO_ROOT, SD_BIN, tempDir, type SdResult } from './helpers.js';

export interface SdOptions {
  library?: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  input?: string;
  timeoutMs?: number;
  cwd?: string;
  /** The `sd` to run (default: this checkout's bin/sd); see sdForAnyUser. */
  bin?: string;
}

/** Starts `sd ARGS` and returns the child (for tests that kill it). */
export function spawnSd(args: string[], options: SdOptions = {}): ChildProcess {
  const env = { ...process.env, ...options.env };
  if (options.library) env.SD_LIBRARY = options.library;
  return spawn('env', ['-u', 'NODE_OPTIONS', options.bin ?? SD_BIN, ...args], {
    env,
    uid: options.uid,
    gid: options.gid,
    cwd: options.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Runs `sd ARGS` to the end: exit code, stdout and stderr (as UTF-8 text). */
export function sd(args: string[], options: SdOptions = {}): Promise<SdResult> {
  return sdRaw(args, options).then((r) => ({ code: r.code, stdout: r.stdout.toString('utf8'), stderr: r.stderr }));
}

/** Like sd(), with stdout as bytes (for `sd cat`). */
export function sdRaw(args: string[], options: SdOptions = {}): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnSd(args, options);
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr });
    });
    // A command that ends before it reads its input (bin/sd that cannot even be run, as
    // another user) closes the pipe first: its exit code tells what happened, not EPIPE.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(options.input ?? '');
  });
}

/** Runs `sd --json ARGS`, asserts exit 0 and parses its one JSON document. */
export async function sdJson<T = unknown>(t: Test, args: string[], options: SdOptions = {}): Promise<T> {
  const r = await sd(['--json', ...args], options);
  t.equal(r.code, 0, `sd ${args.join(' ')} exits 0${r.code ? `: ${r.stderr.trim()}` : ''}`);
  return JSON.parse(r.stdout) as T;
}

/**
 * A copy of the installed program (bin/, build/, node_modules/, package.json) in a fresh
 * temporary folder every user can read, for tests that run `sd` as another user: the
 * checkout may sit in a private folder (a mode-700 home) that user cannot enter. Files
 * every user may read already are hard links (no copy of node_modules' bytes); the others,
 * and all files when the temporary folder is on another file system, are copied and made
 * readable. Returns the copy's bin/sd; removed when the test ends.
 */
export function sdForAnyUser(t: Test, checkout = REPO_ROOT): string {
  const root = tempDir(t, 'sd-program-');
  fs.chmodSync(root, 0o755);
  copyProgram(checkout, root);
  return path.join(root, 'bin', 'sd');
}

/** Copies what runs `sd` (bin/, build/, node_modules/, package.json) from a checkout into `to`. */
export function copyProgram(checkout: string, to: string): void {
  for (const name of ['bin', 'build', 'node_modules', 'package.json']) shareTree(path.join(checkout, name), path.join(to, name));
}

function shareTree(from: string, to: string): void {
  const st = fs.lstatSync(from);
  if (st.isSymbolicLink()) return fs.symlinkSync(fs.readlinkSync(from), to);
  if (st.isDirectory()) {
    fs.mkdirSync(to, { mode: 0o755 });
    fs.chmodSync(to, 0o755);
    for (const name of fs.readdirSync(from)) shareTree(path.join(from, name), path.join(to, name));
    return;
  }
  if (st.mode & 0o004) {
    try {
      return fs.linkSync(from, to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    }
  }
  fs.copyFileSync(from, to);
  fs.chmodSync(to, (st.mode & 0o7777) | 0o444 | (st.mode & 0o100 ? 0o111 : 0));
}
