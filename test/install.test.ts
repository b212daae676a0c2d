// Installs are exact: `npm ci` takes package-lock.json as it is on every machine. npm ci
// refuses a lock that lacks a package some locked package names, optional platform
// builds included (@napi-rs/blake-hash 1.3.6 names builds never published at 1.3.6).
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { REPO_ROOT } from './helpers.js';

interface LockPackage {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { lockfileVersion: number; packages: Record<string, LockPackage> };
const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };

/** Where node would find `name` from the package at `from` (its own node_modules, then each parent's). */
function resolveIn(from: string, name: string): string | undefined {
  for (let dir = from; ; dir = dir.includes('/node_modules/') ? dir.slice(0, dir.lastIndexOf('/node_modules/')) : '') {
    const candidate = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (!dir) return undefined;
  }
}

t.test('the lock file names every package a locked package depends on, optional platform builds included', async (t) => {
  t.equal(lock.lockfileVersion, 3, 'lockfile version 3');
  const missing: string[] = [];
  for (const [at, pkg] of Object.entries(lock.packages)) {
    if (at === '') continue;
    for (const name of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
      if (!resolveIn(at, name)) missing.push(`${name} (of ${at.replace(/^.*node_modules\//, '')})`);
    }
  }
  t.same(missing, [], 'nothing npm ci would call missing');
});

t.test('the lock matches package.json', async (t) => {
  const root = lock.packages['']!;
  t.same(root.dependencies, manifest.dependencies, 'dependencies');
  t.same((root as { devDependencies?: Record<string, string> }).devDependencies, manifest.devDependencies, 'devDependencies');
  for (const name of Object.keys(manifest.dependencies)) t.ok(lock.packages[`node_modules/${name}`], `${name} is locked`);
});
