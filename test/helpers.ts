// Shared test plumbing: temporary folders and libraries cleaned up after each test,
// and running the real `sd` command as a child process.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { initLibrary, type Library } from '../src/vdfs/library.js';
import NoiseSecretStream from '@hyperswarm/secret-stream';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SD_BIN = path.join(REPO_ROOT, 'bin', 'sd');
/**
 * What most tests run as `sd`: the built CLI that bin/sd runs, started with this node
 * (bin/sd itself is run by cli-process, as a user's shell runs it).
 */
export const SD_MAIN = path.join(REPO_ROOT, 'build', 'src', 'cli', 'sd.cjs');

/** A fresh temporary folder, removed when the test ends. */
export function tempDir(t: Test, prefix = 'sd-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  // Retried: a write still landing (a block cache's read-ahead) can refill a folder as it goes (ENOTEMPTY).
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }));
  return dir;
}

/** Writes files given as { 'a/b.txt': 'content' } below root; returns root. */
export function writeTree(root: string, files: Record<string, string | Buffer>): string {
  for (const [rel, data] of Object.entries(files)) {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, data);
  }
  return root;
}

/** A new library in a temporary folder, closed when the test ends. */
export function tempLibrary(t: Test, name = 'test-device'): Library {
  const { library } = initLibrary(path.join(tempDir(t, 'sd-lib-'), 'library'), name);
  t.teardown(() => library.close());
  return library;
}

/** The environment for child `sd` processes: without the test runner's loader hooks. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

export interface SdResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `sd ARGS` (async, never blocking a mount served by this process). */
export function runSd(args: string[], options: { library?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number; input?: string; timeoutMs?: number } = {}): Promise<SdResult> {
  const env = { ...cleanEnv(), ...options.env };
  if (options.library) env.SD_LIBRARY = options.library;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SD_MAIN, ...args], { env, uid: options.uid, gid: options.gid, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Runs `sd --json ARGS` and parses its one JSON document; fails the test on a non-zero exit. */
export async function sdJson<T = unknown>(t: Test, args: string[], options: Parameters<typeof runSd>[1] = {}): Promise<T> {
  const r = await runSd(['--json', ...args], options);
  t.equal(r.code, 0, `sd ${args.join(' ')} exits 0${r.code ? `: ${r.stderr.trim()}` : ''}`);
  return JSON.parse(r.stdout) as T;
}

/** Polls until check() returns true or the time is up; returns whether it did. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, everyMs = 25): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A connected Noise pair (an in-memory device connection), destroyed when the test ends. */
export function noisePair(t: Test): [NoiseSecretStream, NoiseSecretStream] {
  const a = new NoiseSecretStream(true);
  const b = new NoiseSecretStream(false);
  a.rawStream.pipe(b.rawStream).pipe(a.rawStream);
  for (const s of [a, b]) s.on('error', () => undefined);
  t.teardown(() => {
    a.destroy();
    b.destroy();
  });
  return [a, b];
}
