// Reading only the bytes a parser needs: a file opened once, its head, a range, or all of it
// up to a limit. Opened non-blocking so a FIFO or a device answers at once, not never.
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import { ExtractError } from './extract-error.js';

/** An open regular file and its size. */
export interface OpenFile {
  readonly handle: fs.FileHandle;
  readonly size: number;
}

/**
 * Opens a regular file for reading. O_NONBLOCK: a blocking open of a FIFO would hold a
 * thread-pool thread until a writer comes (and with it one of the few threads FUSE reads use);
 * on a regular file the flag changes nothing.
 */
export async function openRegularFile(file: string): Promise<OpenFile> {
  const handle = await fs.open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new ExtractError('not a regular file');
    return { handle, size: st.size };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Bytes [position, position + length) of the file, fewer at its end. */
export async function readAt(file: OpenFile, position: number, length: number): Promise<Buffer> {
  const want = Math.max(0, Math.min(length, file.size - position));
  const buffer = Buffer.allocUnsafe(want);
  let got = 0;
  while (got < want) {
    const { bytesRead } = await file.handle.read(buffer, got, want - got, position + got);
    if (bytesRead === 0) break; // shrank while read
    got += bytesRead;
  }
  return got === want ? buffer : buffer.subarray(0, got);
}
