// The `sd` entry point (bin/sd runs it): reads the global options, then runs the command
// line (run.ts) from its modules, or from a bundle: one file that `npm run build` makes of
// run.ts and one command module that opens only the library (scripts/bundle-cli.ts).
// Node 20 loads ES modules one by one (resolve, read, compile, link): an `sd ls` loaded
// 19 of sdfs's and 14 of better-sqlite3's, ~20 ms CPU of its ~65; one file takes ~3 ms.
// This file and the bundles are CommonJS: a process that loads no ES module starts
// without Node's ES module loader (~7 ms CPU more). It imports none of sdfs's modules.
import fs from 'node:fs';
import path from 'node:path';

export interface Globals {
  library?: string;
  json: boolean;
  help: boolean;
  version: boolean;
  rest: string[];
  /** A usage mistake in the global options, which run.ts reports as any other. */
  mistake?: string;
}

/** Pulls the global options out of argv wherever they stand (before a '--'). */
function splitGlobals(argv: string[]): Globals {
  const g: Globals = { json: false, help: false, version: false, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      g.rest.push(...argv.slice(i));
      break;
    }
    if (arg === '--json') g.json = true;
    else if (arg === '--help' || arg === '-h') g.help = true;
    else if (arg === '--version') g.version = true;
    else if (arg === '--library') {
      const value = argv[++i];
      if (value === undefined) g.mistake = '--library needs a directory';
      else g.library = value;
    } else if (arg.startsWith('--library=')) g.library = arg.slice('--library='.length);
    else g.rest.push(arg);
  }
  return g;
}

/** What scripts/bundle-cli.ts bundled: bundled/manifest.json (paths from this folder). */
interface BundleManifest {
  /** Each bundled command's bundle. */
  commands: Record<string, string>;
  /** Each bundle's modules, with their mtimeMs and size when bundled. */
  inputs: Record<string, Array<[string, number, number]>>;
}

/** The bundle that runs this command, if one holds it and is up to date. */
function bundleFor(name: string | undefined): string | undefined {
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(__dirname, 'bundled', 'manifest.json'), 'utf8')) as BundleManifest;
  } catch {
    return undefined; // no bundles: built by tsc alone, or without esbuild
  }
  const bundle = name === undefined ? undefined : manifest.commands[name];
  if (bundle === undefined) return undefined;
  // A module compiled since (tsc alone) leaves the bundle behind it: the modules run.
  const fresh = manifest.inputs[bundle]!.every(([file, mtimeMs, size]) => {
    const st = fs.statSync(path.join(__dirname, file), { throwIfNoEntry: false });
    return st !== undefined && st.mtimeMs === mtimeMs && st.size === size;
  });
  return fresh ? path.join(__dirname, bundle) : undefined;
}

type Program = typeof import('./run.js');

const globals = splitGlobals(process.argv.slice(2));
const bundle = bundleFor(globals.rest[0]);
const program: Promise<Program> = bundle ? Promise.resolve(require(bundle) as Program) : import('./run.js');
void program.then((p) => p.runCli(globals));
