// The pino logger: quiet unless SD_LOG names a level (debug, info, warn, ...).
// Logs go to stderr so stdout stays clean for --json output.
import pino from 'pino';

export const log = pino(
  { level: process.env.SD_LOG ?? 'silent', base: { pid: process.pid } },
  pino.destination({ fd: 2, sync: true }),
);
