// The `sd` entry point: reads the global options, then runs the command line (run.ts)
// from its modules, or from a bundle: one file that `npm run build` makes of run.ts and
// one command module that opens only the library (scripts/bundle-cli.ts). Node 20 loads
// ES modules one by one (resolve, read, compile, link): the 19 of an `sd ls` cost
// ~12 ms of its ~60 ms CPU, one file ~2 ms. This module imports none of its own for that.
import fs from 'node:fs';

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
    manifest = JSON.parse(fs.readFileSync(new URL('bundled/manifest.json', import.meta.url), 'utf8')) as BundleManifest;
  } catch {
    return undefined; // no bundles: built by tsc alone, or without esbuild
  }
  const bundle = name === undefined ? undefined : manifest.commands[name];
  if (bundle === undefined) return undefined;
  // A module compiled since (tsc alone) leaves the bundle behind it: the modules run.
  const fresh = manifest.inputs[bundle]!.every(([file, mtimeMs, size]) => {
    const st = fs.statSync(new URL(file, import.meta.url), { throwIfNoEntry: false });
    return st !== undefined && st.mtimeMs === mtimeMs && st.size === size;
  });
  return fresh ? `./${bundle}` : undefined;
}

const globals = splitGlobals(process.argv.slice(2));
const program = (await import(bundleFor(globals.rest[0]) ?? './run.js')) as typeof import('./run.js');
await program.runCli(globals);
