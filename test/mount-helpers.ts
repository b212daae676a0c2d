// Running a real `sd mount` in a child process for tests: started against a library,
// waited for until the tree answers, and always unmounted in teardown — even when the
// test fails or the process died.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Test } from 'tap';
import { forceUnmount, isMounted } from '../src/fuse/mount.js';
import { SD_MAIN, cleanEnv, runSd, tempDir, waitFor, writeTree } from './helpers.js';

export interface MountedDevice {
  library: string;
  mountpoint: string;
  process: ChildProcess;
  /** What it printed so far. */
  stdout(): string;
  stderr(): string;
  /** Stops the mount process (SIGINT) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * `sd mount` of a library, returned once it serves and (unless `upToDate` is false) has
 * compared every location with the disk: a test then finds what changed while nothing
 * watched, as before the start-up diff ran after the mount came up. `nodeArgs` go to node
 * itself (--cpu-prof: NODE_OPTIONS refuses it).
 */
export async function startMount(t: Test, library: string, args: string[] = [], mountpoint = path.join(tempDir(t, 'sd-mnt-'), 'mnt'), env: NodeJS.ProcessEnv = {}, { upToDate = true, nodeArgs = [] as string[] } = {}): Promise<MountedDevice> {
  const child = spawn(process.execPath, [...nodeArgs, SD_MAIN, 'mount', mountpoint, ...args], {
    env: { ...cleanEnv(), ...env, SD_LIBRARY: library },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      const done = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))]);
      if (!done) child.kill('SIGKILL');
    }
    if (isMounted(mountpoint)) await forceUnmount(mountpoint);
  });
  // The process says so once it serves the tree (a stale mount listed before does not count).
  const up = await waitFor(() => stdout.includes('Mounted at') || child.exitCode !== null, 30_000, 50);
  if (!up || !isMounted(mountpoint)) throw new Error(`sd mount did not come up: ${stderr.trim()}`);
  if (upToDate && !(await waitFor(() => stdout.includes('up to date with the disk') || child.exitCode !== null, 60_000, 20))) {
    throw new Error(`sd mount did not compare its locations with the disk within 60 s: ${stderr.trim()}`);
  }
  return {
    library,
    mountpoint,
    process: child,
    stderr: () => stderr,
    stdout: () => stdout,
    async stop(signal: NodeJS.Signals = 'SIGINT') {
      child.kill(signal);
      return exited;
    },
  };
}

/**
 * A library with one location over a fresh folder, made through the real CLI. `files` are
 * written first, or made by a function given the folder (big or special files).
 */
export async function libraryWithLocation(t: Test, files: Record<string, string | Buffer> | ((root: string) => void | Promise<void>), name = 'box', location = 'data', mode = 'content'): Promise<{ library: string; root: string }> {
  const base = tempDir(t, 'sd-dev-');
  const library = path.join(base, 'library');
  const root = path.join(base, location);
  fs.mkdirSync(root, { recursive: true });
  if (typeof files === 'function') await files(root);
  else writeTree(root, files);
  for (const args of [['init', '--name', name], ['location', 'add', root, '--mode', mode]]) {
    const r = await runSd(args, { library });
    if (r.code !== 0) throw new Error(`sd ${args.join(' ')} failed: ${r.stderr}`);
  }
  return { library, root };
}
