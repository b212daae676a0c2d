// The shape of one `sd` command: its name, help text, options (node:util parseArgs
// style) and the function that runs it. run.ts parses, opens the library, dispatches.
import type { ParseArgsConfig } from 'node:util';
import type { Library } from '../vdfs/library.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface CommandContext {
  /** The library directory (--library, SD_LIBRARY or the default). */
  libraryDir: string;
  json: boolean;
  /** Opens the library (cached); throws a clear SdError when there is none. */
  library(): Library;
  /** Prints one JSON document (with --json) or human text. */
  out: Output;
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  /** Resolves when the user asks to stop (SIGINT/SIGTERM); long-running commands await it. */
  stopped: Promise<string>;
}

export interface Output {
  /** With --json prints `data` as one JSON document; otherwise prints `human()`'s lines. */
  result(data: unknown, human: () => string | string[]): void;
  /** A line for a human on stdout (ignored with --json). */
  line(text: string): void;
  /** A line on stderr for humans (progress, hints). */
  info(text: string): void;
}

export interface Command {
  name: string;
  /** One line for the parent's help; top-level commands have theirs in commands/index.ts. */
  summary?: string;
  /** Usage lines and details for `sd COMMAND --help`. */
  usage: string;
  options?: OptionSpec;
  /** Subcommands (`sd location add`), dispatched on the first positional. */
  subcommands?: Command[];
  /** Returns the exit code (0 unless said otherwise). */
  run?(ctx: CommandContext): Promise<number | void> | number | void;
}

/** A top-level command as `sd --help` lists it; its module is loaded only when it runs. */
export interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<Command>;
}

/** A usage mistake: exit code 2 with the command's usage. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
