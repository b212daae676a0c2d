// Bundles the `sd` command line (src/cli/run.ts) with each command module that opens only
// the library, one CommonJS file for each (build/src/cli/bundled/browse.cjs: sd ls, stat
// and cat), which sd.cts runs those commands from: Node 20 loads ES modules one by one, and
// an `sd ls` loaded 19 (and better-sqlite3's 14 CommonJS ones); a process that loads no ES
// module starts without the ES module loader. bundled/manifest.json names each bundle's
// commands and modules.
// A command module goes in when nothing it loads starts a worker thread or finds a file by
// its own address (import.meta: in one file every module would have the bundle's) or
// waits at its top level (await: a CommonJS module cannot), and
// the only packages it loads are better-sqlite3 (bundled too: as CommonJS modules its 14
// files took ~8 ms) and pino (left in node_modules: it loads only when SD_LOG asks). The
// others run from the modules, as every command does without esbuild (a dev dependency)
// or after a build by tsc alone.
// Run: node build/scripts/bundle-cli.js [CLI_DIR]  (npm run build runs it after tsc;
// CLI_DIR: the built src/cli, by default this build's)
import fs from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** What this script uses of esbuild's API (loaded only when installed). */
interface Esbuild {
  build(options: Record<string, unknown>): Promise<{ metafile: Metafile }>;
}
interface Metafile {
  inputs: Record<string, unknown>;
  outputs: Record<string, { imports: Array<{ path: string; external?: boolean }> }>;
}
interface OnResolveArgs {
  path: string;
  importer: string;
}
interface PluginBuild {
  onResolve(options: { filter: RegExp }, callback: (args: OnResolveArgs) => { path: string; namespace?: string; external?: boolean } | undefined): void;
  onLoad(options: { filter: RegExp; namespace: string }, callback: (args: { path: string }) => { contents: string }): void;
}

/** Packages a bundled command may load: bindings is better-sqlite3's search for its addon, when not at its path. */
const PACKAGES = new Set(['better-sqlite3', 'pino', 'bindings']);
/** The namespace of the command modules a bundle leaves out (see leaveOut). */
const LEFT_OUT = 'left-out';

const cliDir = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli'));
const indexFile = path.join(cliDir, 'commands', 'index.js');
/** Where the bundles go, from cliDir (sd.cts looks there). */
const BUNDLE_DIR = 'bundled';
const bundleDir = path.join(cliDir, BUNDLE_DIR);

/** bundled/manifest.json, which sd.cts reads (paths from cliDir). */
interface BundleManifest {
  /** Each bundled command's bundle. */
  commands: Record<string, string>;
  /** Each bundle's modules, with their mtimeMs and size when bundled. */
  inputs: Record<string, Array<[string, number, number]>>;
}

/**
 * better-sqlite3 goes in the bundles when its addon is where database.ts gives it by path:
 * bundled, its own search for it (bindings) would start from the bundle's folder.
 */
const inBundles = new Set<string>();
try {
  createRequire(indexFile).resolve('better-sqlite3/build/Release/better_sqlite3.node');
  inBundles.add('better-sqlite3');
} catch {
  // better-sqlite3 stays in node_modules
}

// Paths in esbuild's metafile are from cliDir. The modules are ES modules, strict: so is
// the bundle. createRequire(import.meta.url), the one use of import.meta let in, finds
// packages from the bundle's folder as from theirs.
const OPTIONS = {
  absWorkingDir: cliDir,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  keepNames: true,
  logLevel: 'silent',
  metafile: true,
  banner: { js: "'use strict';\nconst __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  define: { 'import.meta.url': '__bundleUrl' },
};

/** The package a bare specifier names (`@scope/name/x` -> `@scope/name`). */
function packageName(specifier: string): string {
  return specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');
}

/** An esbuild plugin: packages stay in node_modules, but those in inBundles. */
const packages = {
  name: 'packages',
  setup(build: PluginBuild) {
    build.onResolve({ filter: /^[^./]/ }, (args) => (isBuiltin(args.path) || inBundles.has(packageName(args.path)) ? undefined : { path: args.path, external: true }));
  },
};

/** Each command's name and its module (`./browse.js`), as commands/index.js imports them. */
async function commandModules(): Promise<Map<string, string>> {
  const source = fs.readFileSync(indexFile, 'utf8');
  const modules = new Map<string, string>();
  for (const m of source.matchAll(/name: '([^']+)'.*?import\('(\.\/[^']+)'\)/g)) modules.set(m[1]!, m[2]!);
  const { COMMANDS } = (await import(pathToFileURL(indexFile).href)) as { COMMANDS: Array<{ name: string }> };
  const unread = COMMANDS.filter((c) => !modules.has(c.name)).map((c) => c.name);
  if (unread.length > 0) throw new Error(`bundle-cli: cannot tell the module of ${unread.join(', ')} in ${indexFile}`);
  return modules;
}

/** Why the modules bundled from `entry` cannot run from one file, or undefined when they can. */
async function unbundlable(esbuild: Esbuild, entry: string, plugins: unknown[] = []): Promise<string | undefined> {
  let metafile: Metafile;
  try {
    ({ metafile } = await esbuild.build({ ...OPTIONS, entryPoints: [entry], write: false, outdir: cliDir, plugins: [packages, ...plugins] }));
  } catch (err) {
    const first = (err as { errors?: Array<{ text: string; location?: { file: string } }> }).errors?.[0];
    return first ? `${first.location?.file ?? entry}: ${first.text}` : String(err);
  }
  for (const output of Object.values(metafile.outputs)) {
    for (const imported of output.imports) {
      if (!imported.external || isBuiltin(imported.path)) continue;
      if (!PACKAGES.has(packageName(imported.path))) return `loads ${imported.path}`;
    }
  }
  for (const input of Object.keys(metafile.inputs)) {
    if (input.startsWith(`${LEFT_OUT}:`)) continue;
    // createRequire(import.meta.url) finds packages from the bundle's folder as well.
    const source = fs.readFileSync(path.join(cliDir, input), 'utf8').replaceAll('createRequire(import.meta.url)', '');
    if (source.includes('new Worker(')) return `${input} starts a worker thread`;
    if (source.includes('import.meta')) return `${input} uses import.meta`;
  }
  return undefined;
}

/** An esbuild plugin: the command modules in `left` become a module that throws if run. */
function leaveOut(left: Set<string>): unknown {
  return {
    name: 'leave-out',
    setup(build: PluginBuild) {
      build.onResolve({ filter: /^\.\/[\w-]+\.js$/ }, (args) =>
        args.importer === indexFile && left.has(args.path) ? { path: args.path, namespace: LEFT_OUT } : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: LEFT_OUT }, (args) => ({
        contents: `throw new Error('sd: ${args.path} is not in this bundle; sd.cts runs its commands from their own');`,
      }));
    },
  };
}

async function main(): Promise<void> {
  fs.rmSync(bundleDir, { recursive: true, force: true }); // the modules run until new bundles are complete
  let esbuild: Esbuild;
  try {
    esbuild = (await import('esbuild' as string)) as Esbuild;
  } catch {
    console.error('bundle-cli: esbuild is not installed; sd runs every command from its modules');
    return;
  }
  const modules = await commandModules();
  const all = new Set(modules.values());
  const run = path.join(cliDir, 'run.js');
  const why = await unbundlable(esbuild, run, [leaveOut(all)]);
  if (why) throw new Error(`bundle-cli: the command line cannot be bundled: ${why}`);
  const manifest: BundleManifest = { commands: {}, inputs: {} };
  const unbundled: string[] = [];
  for (const module of all) {
    const reason = await unbundlable(esbuild, path.join(cliDir, 'commands', module));
    if (reason) {
      unbundled.push(`${module} (${reason})`);
      continue;
    }
    // Each bundle holds one command module: a command loads no other's code.
    const bundle = path.join(BUNDLE_DIR, module.replace(/\.js$/, '.cjs'));
    const plugins = [leaveOut(new Set([...all].filter((m) => m !== module)))];
    const { metafile } = await esbuild.build({ ...OPTIONS, entryPoints: [run], outfile: path.join(cliDir, bundle), plugins: [packages, ...plugins] });
    manifest.inputs[bundle] = Object.keys(metafile.inputs)
      .filter((input) => !input.startsWith(`${LEFT_OUT}:`))
      .map((input): [string, number, number] => {
        const st = fs.statSync(path.join(cliDir, input));
        return [input, st.mtimeMs, st.size];
      });
    for (const [name, m] of modules) if (m === module) manifest.commands[name] = bundle;
  }
  const manifestFile = path.join(bundleDir, 'manifest.json');
  fs.writeFileSync(`${manifestFile}.tmp`, JSON.stringify(manifest) + '\n');
  fs.renameSync(`${manifestFile}.tmp`, manifestFile);
  console.error(`bundle-cli: ${Object.keys(manifest.inputs).length} bundles in ${path.relative(process.cwd(), bundleDir)} for sd ${Object.keys(manifest.commands).join(', ')}`);
  console.error(`bundle-cli: from their modules: ${unbundled.join(', ')}`);
}

await main();
