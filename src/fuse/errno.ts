// Turns whatever an operation threw into the negative errno FUSE answers with.
import os from 'node:os';
import { SdError, isLibraryBusy } from '../errors.js';

const E = os.constants.errno;
export const ENOENT = -E.ENOENT;
export const EIO = -E.EIO;
export const EROFS = -E.EROFS;
export const EACCES = -E.EACCES;
export const EPERM = -E.EPERM;
export const EXDEV = -E.EXDEV;
export const ENOTSUP = -E.ENOTSUP;
export const ENODATA = -E.ENODATA;
export const EISDIR = -E.EISDIR;
export const ENOTDIR = -E.ENOTDIR;
export const EINVAL = -E.EINVAL;
export const ERANGE = -E.ERANGE;
export const EBADF = -E.EBADF;
export const EBUSY = -E.EBUSY;

export function errnoOf(err: unknown): number {
  if (err instanceof SdError) return err.errno;
  // Another process held the library past the busy timeout: the same call can be made again.
  if (isLibraryBusy(err)) return EBUSY;
  if (err && typeof err === 'object' && 'errno' in err && typeof err.errno === 'number') {
    return err.errno < 0 ? err.errno : -err.errno;
  }
  return EIO;
}
