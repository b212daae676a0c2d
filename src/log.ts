// The pino logger: quiet unless SD_LOG names a level (debug, info, warn, ...).
// Logs go to stderr so stdout stays clean for --json output.
import { createRequire } from 'node:module';
import type { LogFn, Logger } from 'pino';

/** What sdfs logs with: pino's calls, one event per line with fields. */
export type Log = Pick<Logger, 'debug' | 'info' | 'warn' | 'error' | 'isLevelEnabled'>;

const noop: LogFn = () => {};

/** Quiet, the default: nothing is written, so pino is not loaded (its 33 modules took 10–30 ms of every command's start-up). */
const silent: Log = { debug: noop, info: noop, warn: noop, error: noop, isLevelEnabled: () => false };

/** pino, required rather than imported: a CommonJS bundle of the CLI (scripts/bundle-cli.ts) cannot wait for an import at its top level. */
function pinoLog(level: string): Log {
  const pino = createRequire(import.meta.url)('pino') as typeof import('pino');
  return pino<never>({ level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}

const level = process.env.SD_LOG ?? 'silent';

export const log: Log = level === 'silent' ? silent : pinoLog(level);
