// Turns a failed file system call into an SdError that keeps its POSIX errno (so the
// mount can answer with it) and says what failed in words a user can act on.
import { SdError, systemCode, type SdErrorCode } from '../../errors.js';

const BY_ERRNO: Record<string, SdErrorCode> = {
  ENOENT: 'NOT_FOUND',
  EEXIST: 'EXISTS',
  ENOTEMPTY: 'NOT_EMPTY',
  EISDIR: 'IS_A_DIRECTORY',
  ENOTDIR: 'NOT_A_DIRECTORY',
  EACCES: 'PERMISSION',
  EPERM: 'NOT_PERMITTED',
  EXDEV: 'CROSS_DEVICE',
  ENOSPC: 'DISK_FULL',
  EDQUOT: 'DISK_FULL',
  ENAMETOOLONG: 'NAME_TOO_LONG',
  EINVAL: 'INVALID',
  EROFS: 'READ_ONLY',
  EBUSY: 'BUSY',
  ENOTSUP: 'NOT_SUPPORTED',
  EOPNOTSUPP: 'NOT_SUPPORTED',
  EMLINK: 'TOO_MANY_LINKS',
  ELOOP: 'LOOP',
};

const HINT: Partial<Record<SdErrorCode, string>> = {
  NOT_FOUND: 'check the path',
  EXISTS: 'pick another name or remove it first',
  NOT_EMPTY: 'empty the folder first',
  PERMISSION: 'check its permissions',
  NOT_PERMITTED: 'check its owner and permissions',
  CROSS_DEVICE: 'copy it, then delete the original',
  DISK_FULL: 'free some space and retry',
  NAME_TOO_LONG: 'use a shorter name',
  READ_ONLY: 'the file system is mounted read-only',
};

/** The SdError code for a Node system error code (ENOENT → NOT_FOUND), IO when unknown. */
export function codeOfErrno(errno: string | undefined): SdErrorCode {
  return (errno && BY_ERRNO[errno]) || 'IO';
}

/** Wraps a failed fs call: "rename a → b failed: ENOTEMPTY (empty the folder first)". */
export function fsError(err: unknown, what: string): SdError {
  if (err instanceof SdError) return err;
  const errno = systemCode(err);
  const code = codeOfErrno(errno);
  const hint = HINT[code];
  return new SdError(code, `${what} failed: ${errno ?? String(err)}${hint ? ` (${hint})` : ''}`, { cause: err });
}

/** Runs a synchronous fs call, rethrowing its failure as an SdError. */
export function tryFs<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fsError(err, what);
  }
}
