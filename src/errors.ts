// One error type for the whole system: a stable code, a POSIX errno so FUSE can
// answer with it directly, and a message a user can act on.
import os from 'node:os';

export type SdErrorCode =
  | 'USAGE'
  | 'NOT_FOUND'
  | 'EXISTS'
  | 'INVALID_PATH'
  | 'NOT_A_DIRECTORY'
  | 'IS_A_DIRECTORY'
  | 'PERMISSION'
  | 'NO_LIBRARY'
  | 'LIBRARY_CORRUPT'
  | 'LIBRARY_LOCKED'
  | 'DISK_FULL'
  | 'LOCATION_OVERLAP'
  | 'IO'
  | 'NOT_EMPTY'
  | 'CROSS_DEVICE'
  | 'NAME_TOO_LONG'
  | 'NOT_PERMITTED'
  | 'INVALID'
  | 'READ_ONLY'
  | 'BUSY'
  | 'NOT_SUPPORTED'
  | 'TOO_MANY_LINKS'
  | 'LOOP'
  | 'CANCELLED';

const ERRNO_NAME: Record<SdErrorCode, string> = {
  USAGE: 'EINVAL',
  NOT_FOUND: 'ENOENT',
  EXISTS: 'EEXIST',
  INVALID_PATH: 'EINVAL',
  NOT_A_DIRECTORY: 'ENOTDIR',
  IS_A_DIRECTORY: 'EISDIR',
  PERMISSION: 'EACCES',
  NO_LIBRARY: 'ENOENT',
  LIBRARY_CORRUPT: 'EIO',
  LIBRARY_LOCKED: 'EBUSY',
  DISK_FULL: 'ENOSPC',
  LOCATION_OVERLAP: 'EEXIST',
  IO: 'EIO',
  NOT_EMPTY: 'ENOTEMPTY',
  CROSS_DEVICE: 'EXDEV',
  NAME_TOO_LONG: 'ENAMETOOLONG',
  NOT_PERMITTED: 'EPERM',
  INVALID: 'EINVAL',
  READ_ONLY: 'EROFS',
  BUSY: 'EBUSY',
  NOT_SUPPORTED: 'EOPNOTSUPP',
  TOO_MANY_LINKS: 'EMLINK',
  LOOP: 'ELOOP',
  CANCELLED: 'ECANCELED',
};

export class SdError extends Error {
  readonly code: SdErrorCode;
  /** Negative POSIX errno, as FUSE callbacks return it. */
  readonly errno: number;

  constructor(code: SdErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SdError';
    this.code = code;
    const name = ERRNO_NAME[code];
    this.errno = -((os.constants.errno as Record<string, number>)[name] ?? 5);
  }
}

/** The code of a Node system error (ENOENT, EACCES, ...), or undefined. */
export function systemCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

/**
 * SQLite's word that another connection holds the library (SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT,
 * SQLITE_LOCKED...): an `sd` command or the mount writing it meanwhile, past the busy
 * timeout. Nothing is wrong with the library; the same change can be tried again.
 */
export function isLibraryBusy(err: unknown): boolean {
  const code = systemCode(err);
  return code !== undefined && /^SQLITE_(BUSY|LOCKED)/.test(code);
}

/** Translate SQLite failures into errors a user can act on. */
export function fromSqliteError(err: unknown, dbPath: string): unknown {
  const code = systemCode(err);
  if (!code || !code.startsWith('SQLITE_')) return err;
  if (code === 'SQLITE_FULL') {
    return new SdError('DISK_FULL', `disk full while writing the library ${dbPath}; free space and run the command again (nothing was half-written)`, { cause: err });
  }
  if (isLibraryBusy(err)) {
    return new SdError('LIBRARY_LOCKED', `library ${dbPath} is locked by another process; wait for it or stop it, then retry`, { cause: err });
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new SdError('LIBRARY_CORRUPT', `library ${dbPath} is corrupt (${code}); move it aside and run 'sd init', or restore a backup`, { cause: err });
  }
  if (code === 'SQLITE_READONLY' || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM') {
    return new SdError('PERMISSION', `cannot write the library ${dbPath} (${code}); check its permissions`, { cause: err });
  }
  return err;
}
