// The `sd` command line: dispatch to a command module, exit codes (0 ok, 1 error with one
// line on stderr, 2 usage) and --json output. sd.cts starts it.
import { parseArgs } from 'node:util';
import { resolveLibraryDir } from '../config.js';
import { join } from 'node:path';
import { SdError, fromSqliteError } from '../errors.js';
import { log } from '../log.js';
import { DATABASE_FILE, openLibrary, type Library } from '../vdfs/library.js';
import { UsageError, type Command, type CommandContext, type Output } from './command.js';
import { COMMANDS } from './commands/index.js';
import type { Globals } from './sd.cjs';

const VERSION = '0.1.0';

const GLOBAL_HELP = `sd — sdfs, a virtual distributed file system you can mount

Usage: sd [--library DIR] [--json] <command> [args]

Global options:
  --library DIR   the library directory (default: $SD_LIBRARY or ~/.local/share/sd)
  --json          print one JSON document (for scripts) instead of text
  -h, --help      help for sd or for a command (sd <command> --help)
  --version       print the version

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n')}

Exit codes: 0 ok, 1 error (one line on stderr), 2 usage.
Logs: quiet by default; SD_LOG=debug (or info, warn) prints pino lines on stderr.`;

function makeOutput(json: boolean): Output {
  return {
    result(data, human) {
      if (json) {
        process.stdout.write(JSON.stringify(data, null, 2) + '\n');
        return;
      }
      const text = human();
      const lines = Array.isArray(text) ? text : [text];
      if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
    },
    line(text) {
      if (!json) process.stdout.write(text + '\n');
    },
    info(text) {
      process.stderr.write(text + '\n');
    },
  };
}

function commandHelp(path: string, cmd: Command, summary = cmd.summary ?? ''): string {
  const subs = cmd.subcommands?.length ? `\n\nSubcommands:\n${cmd.subcommands.map((s) => `  ${s.name.padEnd(8)} ${s.summary}`).join('\n')}` : '';
  return `sd ${path} — ${summary}\n\n${cmd.usage.trim()}${subs}`;
}

let stopSignal: Promise<string> | undefined;
function stopped(): Promise<string> {
  // Handlers stay installed: a Ctrl-C reaches every process of the terminal's group, and a
  // second signal must not kill a process that is still unmounting.
  return (stopSignal ??= new Promise((resolve) => {
    let received = false;
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.on(sig, () => {
        if (received) return log.info({ op: 'signal', sig }, 'already stopping');
        received = true;
        resolve(sig);
      });
    }
  }));
}

async function run(g: Globals): Promise<number> {
  if (g.mistake) throw new UsageError(g.mistake);
  if (g.version) {
    process.stdout.write(`sd ${VERSION}\n`);
    return 0;
  }
  const [name, ...args] = g.rest;
  if (name === undefined || name === 'help') {
    const topic = name === 'help' ? COMMANDS.find((c) => c.name === args[0]) : undefined;
    process.stdout.write((topic ? commandHelp(topic.name, await topic.load(), topic.summary) : GLOBAL_HELP) + '\n');
    return name === undefined && !g.help ? 2 : 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) throw new UsageError(`unknown command '${name}'; 'sd --help' lists the commands`);
  let cmd = await entry.load();
  let summary = entry.summary;
  let path = cmd.name;
  let rest = args;
  while (cmd.subcommands) {
    const sub: Command | undefined = cmd.subcommands.find((s) => s.name === rest[0]);
    if (!sub) {
      if (cmd.run) break; // a command that also runs without a subcommand (sd jobs)
      if (g.help || rest.length === 0) {
        process.stdout.write(commandHelp(path, cmd, summary) + '\n');
        return g.help ? 0 : 2;
      }
      throw new UsageError(`unknown subcommand '${rest[0]}' of 'sd ${path}'; try 'sd ${path} --help'`);
    }
    cmd = sub;
    summary = sub.summary ?? '';
    path = `${path} ${sub.name}`;
    rest = rest.slice(1);
  }
  if (g.help) {
    process.stdout.write(commandHelp(path, cmd, summary) + '\n');
    return 0;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: cmd.options ?? {}, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]}; try 'sd ${path} --help'`);
  }
  let library: Library | undefined;
  const libraryDir = resolveLibraryDir(g.library);
  const ctx: CommandContext = {
    libraryDir,
    json: g.json,
    library: () => (library ??= openLibrary(libraryDir)),
    out: makeOutput(g.json),
    values: parsed.values as CommandContext['values'],
    positionals: parsed.positionals,
    get stopped() {
      return stopped();
    },
  };
  try {
    return (await cmd.run!(ctx)) ?? 0;
  } catch (err) {
    throw fromSqliteError(err, join(libraryDir, DATABASE_FILE));
  } finally {
    library?.close();
  }
}

function exitWith(code: number): void {
  process.exitCode = code;
}

/** Runs `sd` with these options and the command they leave to its end, and sets the process's exit code. */
export async function runCli(g: Globals): Promise<void> {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // `sd cat big | head` closes the pipe early: that is the reader's choice, not an error.
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  try {
    exitWith(await run(g));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`sd: ${err.message}\n`);
      exitWith(2);
    } else if (err instanceof SdError) {
      log.debug({ err }, 'command failed');
      process.stderr.write(`sd: ${err.message}\n`);
      // A bad value the user typed (a search filter, a --name) is a usage mistake: exit 2.
      exitWith(err.code === 'USAGE' ? 2 : 1);
    } else {
      log.error({ err }, 'unexpected failure');
      const message = err instanceof Error ? err.message : String(err);
      process.stderr.write(`sd: ${message.split('\n')[0]} (SD_LOG=debug shows details)\n`);
      exitWith(1);
    }
  }
}
