// The bundles `npm run build` makes (scripts/bundle-cli.ts), one file for each command
// module that opens only the library, which sd.cts runs `sd ls`, `sd search`... from:
// they answer as the modules do, byte for byte, and step aside once a module they hold is
// compiled again. Run on a copy of the build, bundled here (needs esbuild, a dev dependency).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { REPO_ROOT, cleanEnv, tempDir, writeTree, type SdResult } from './helpers.js';

/** A copy of this build (src and scripts) with the checkout's packages, bundled. */
function bundledCopy(dir: string): { main: string; manifest: string; stderr: string } {
  for (const part of ['src', 'scripts', 'node_modules']) {
    const from = path.join(REPO_ROOT, 'build', part);
    if (fs.existsSync(from)) fs.cpSync(from, path.join(dir, 'build', part), { recursive: true });
  }
  fs.symlinkSync(fs.realpathSync(path.join(REPO_ROOT, 'node_modules')), path.join(dir, 'node_modules'));
  fs.copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(dir, 'package.json'));
  fs.rmSync(path.join(dir, 'build', 'src', 'cli', 'bundled'), { recursive: true, force: true });
  const made = spawnSync(process.execPath, [path.join(dir, 'build', 'scripts', 'bundle-cli.js')], { env: cleanEnv(), encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`bundle-cli failed: ${made.stderr}`);
  const cli = path.join(dir, 'build', 'src', 'cli');
  return { main: path.join(cli, 'sd.cjs'), manifest: path.join(cli, 'bundled', 'manifest.json'), stderr: made.stderr };
}

function sdWith(main: string, args: string[], library: string): Promise<SdResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main, ...args], { env: { ...cleanEnv(), SD_LIBRARY: library }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Replaces a file by a copy of itself: a new mtime, as a compiler's write gives it. */
function recompile(file: string): void {
  fs.copyFileSync(file, `${file}.new`);
  fs.utimesSync(`${file}.new`, new Date(), new Date(Date.now() + 5000));
  fs.renameSync(`${file}.new`, file);
}

const esbuild = ((): string | undefined => {
  try {
    return import.meta.resolve('esbuild');
  } catch {
    return undefined;
  }
})();

t.test('a bundled command answers as its modules do, and steps aside once one is compiled again', { skip: !esbuild && 'esbuild is not installed (a dev dependency)' }, async (t) => {
  const base = fs.realpathSync(tempDir(t, 'sd-bundle-'));
  const copy = bundledCopy(path.join(base, 'program'));
  t.ok(fs.existsSync(copy.manifest), `bundle-cli made its bundles${copy.stderr ? `: ${copy.stderr.trim()}` : ''}`);
  const manifest = JSON.parse(fs.readFileSync(copy.manifest, 'utf8')) as { commands: Record<string, string> };
  t.match(manifest.commands, { ls: 'bundled/browse.cjs', stat: 'bundled/browse.cjs', cat: 'bundled/browse.cjs', search: 'bundled/find.cjs', dupes: 'bundled/find.cjs' }, 'sd ls, stat, cat, search and dupes are bundled');
  t.notOk(manifest.commands.mount ?? manifest.commands.location, 'commands that load other packages or start worker threads are not');

  const lib = path.join(base, 'library');
  const root = writeTree(path.join(base, 'Pictures'), {
    'beach.jpg': Buffer.alloc(3000, 1),
    'copies/beach.jpg': Buffer.alloc(3000, 1),
    'notes/todo.txt': 'buy milk\n',
  });
  for (const args of [['init', '--name', 'Laptop'], ['location', 'add', root, '--name', 'pics'], ['tag', 'add', 'holiday', 'sd://laptop/pics/beach.jpg'], ['meta', 'set', 'sd://laptop/pics/notes/todo.txt', 'owner', 'me']]) {
    const r = await sdWith(copy.main, args, lib);
    t.equal(r.code, 0, `sd ${args.join(' ')}${r.code ? `: ${r.stderr}` : ''}`);
  }

  const lines: string[][] = [
    ['ls'],
    ['ls', 'sd://laptop'],
    ['ls', 'sd://laptop/pics'],
    ['--json', 'ls', 'sd://laptop/pics/notes'],
    ['ls', path.join(root, 'notes')],
    ['ls', 'sd://nobody'],
    ['ls', 'a', 'b'],
    ['ls', '--bogus'],
    ['ls', '--help'],
    ['stat', 'sd://laptop/pics/beach.jpg'],
    ['--json', 'stat', 'sd://laptop/pics/notes'],
    ['cat', 'sd://laptop/pics/notes/todo.txt'],
    ['cat', 'sd://laptop/pics'],
    ['search', 'beach'],
    ['--json', 'search', 'kind:image', '--limit', '5'],
    ['search', 'size:>lots'],
    ['dupes'],
    ['--json', 'dupes'],
    ['tag', 'ls'],
    ['tag', 'files', 'holiday'],
    ['meta', 'ls', 'sd://laptop/pics/notes/todo.txt'],
    ['devices'],
    ['init'],
    ['--library', path.join(base, 'none'), 'ls'],
  ];
  const bundled = await Promise.all(lines.map((args) => sdWith(copy.main, args, lib)));
  fs.renameSync(copy.manifest, `${copy.manifest}.aside`);
  const modules = await Promise.all(lines.map((args) => sdWith(copy.main, args, lib)));
  fs.renameSync(`${copy.manifest}.aside`, copy.manifest);
  lines.forEach((args, i) => t.same(bundled[i], modules[i], `sd ${args.join(' ')}: the same exit code, stdout and stderr`));
  t.ok(bundled.some((r) => r.code === 0) && bundled.some((r) => r.code === 1) && bundled.some((r) => r.code === 2), 'the lines include successes, errors and usage mistakes');

  // A mark in each bundle shows which one ran.
  for (const bundle of ['browse.cjs', 'find.cjs', 'devices.cjs']) fs.appendFileSync(path.join(path.dirname(copy.manifest), bundle), `\nprocess.stderr.write('from ${bundle}\\n');\n`);
  const marked = await Promise.all([['ls', 'sd://laptop/pics'], ['search', 'beach'], ['devices']].map((args) => sdWith(copy.main, args, lib)));
  t.same(marked.map((r) => r.stderr), ['from browse.cjs\n', 'from find.cjs\n', 'from devices.cjs\n'], 'sd ls, search and devices run from their bundles');
  t.equal(marked[0]!.stdout, modules[2]!.stdout, 'and answer as before');
  // listing.js is in the first two bundles, not in devices'.
  recompile(path.join(path.dirname(copy.main), '..', 'vdfs', 'listing.js'));
  const after = await Promise.all([['ls', 'sd://laptop/pics'], ['search', 'beach'], ['devices']].map((args) => sdWith(copy.main, args, lib)));
  t.same(after[0], modules[2], 'a module compiled again: sd ls runs from the modules, as before');
  t.same(after[1], modules[13], 'as does sd search, whose bundle holds it too');
  t.equal(after[2]!.stderr, 'from devices.cjs\n', 'a bundle without it still runs');
});
