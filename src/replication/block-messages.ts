// The wire messages of the block protocol (compact-encoding): a request for a byte range of
// a file, its reply (bytes + BLAKE3, signed by the device that serves them), or an error.
// Decoding enforces every size limit and throws on anything malformed, which makes
// protomux close that connection.
import c from 'compact-encoding';
import type { Encoder, EncodingState } from 'protomux';
import { config } from '../config.js';
import { SdError } from '../errors.js';

export const BLOCK_PROTOCOL = 'sdfs/blocks/3';

export const MAX_LOCATION_NAME_BYTES = 255;
export const MAX_RELATIVE_PATH_BYTES = 4096;
export const MAX_ERROR_MESSAGE_BYTES = 1024;
export const BLAKE3_BYTES = 32;
export const SIGNER_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

/** What a request names: a file of a location of the serving device, or any local copy of some content. */
export type BlockTarget =
  | { kind: 'path'; location: string; path: string }
  | { kind: 'content'; contentId: string };

export interface BlockRequest {
  id: number;
  target: BlockTarget;
  offset: number;
  length: number;
  /** The file size the asker knows; a file of another size is answered STALE. */
  expectSize: number;
  /** The mtime (ms) the asker knows for a path target; 0 accepts any. */
  expectMtime: number;
  /** Only the signed BLAKE3 of the range, no bytes: an owner vouching for bytes another device sent. */
  hashOnly: boolean;
  /** A content target: pass along what this device (the file's owner) signed for the range, if kept. */
  vouchBy?: Buffer;
}

/**
 * What another device signed for a range of a content (signedBlockMessage with the content
 * target, its file's mtime then): kept by a device that fetched the content from it, and
 * passed along when serving it, so a reader can check the bytes while that device is away.
 */
export interface Vouch {
  signer: Buffer;
  signature: Buffer;
  fileMtime: number;
}

export interface BlockReply {
  id: number;
  /** The bytes asked for; empty for a hashOnly request. */
  data: Buffer;
  /** BLAKE3 of the range's bytes, checked by the receiver. */
  hash: Buffer;
  fileSize: number;
  fileMtime: number;
  /** The serving device's log key, and its signature over signedBlockMessage(...). */
  signer: Buffer;
  signature: Buffer;
  /** The asked device's signature of the same bytes, passed along (see BlockRequest.vouchBy). */
  vouch?: Vouch;
}

/**
 * What a serving device signs for each range it answers: the target as asked, the file's
 * size and mtime, the range and its BLAKE3. Signed by a file's owner, it says these are
 * its bytes; a reader compares what another device sent with it.
 */
export function signedBlockMessage(target: BlockTarget, fileSize: number, fileMtime: number, offset: number, length: number, hash: Buffer): Buffer {
  const what = target.kind === 'path' ? `path\0${target.location}\0${target.path}` : `content\0${target.contentId}`;
  const numbers = Buffer.alloc(32);
  numbers.writeDoubleLE(fileSize, 0);
  numbers.writeDoubleLE(fileMtime, 8);
  numbers.writeDoubleLE(offset, 16);
  numbers.writeDoubleLE(length, 24);
  return Buffer.concat([Buffer.from(`sdfs/block-range/2\0${what}\0`), numbers, hash]);
}

export type BlockErrorCode = 'NOT_FOUND' | 'REFUSED' | 'STALE' | 'BUSY' | 'IO' | 'INVALID';
const ERROR_CODES: readonly BlockErrorCode[] = ['NOT_FOUND', 'REFUSED', 'STALE', 'BUSY', 'IO', 'INVALID'];

export interface BlockError {
  id: number;
  code: BlockErrorCode;
  message: string;
}

function malformed(what: string): SdError {
  return new SdError('INVALID', `malformed block message: ${what}`);
}

function need(state: EncodingState, n: number, what: string): void {
  if (state.end - state.start < n) throw malformed(`${what} runs past the end of the message`);
}

const id: Encoder<number> = {
  preencode: (s, v) => c.uint.preencode(s, v),
  encode: (s, v) => c.uint.encode(s, v),
  decode(s) {
    const v = c.uint.decode(s);
    if (v > 0xffffffff) throw malformed('request id out of range');
    return v;
  },
};

/** A non-negative integer that a JS number holds exactly (file offsets and sizes). */
const safeUint: Encoder<number> = {
  preencode: (s, v) => c.uint.preencode(s, v),
  encode: (s, v) => c.uint.encode(s, v),
  decode(s) {
    const v = c.uint.decode(s);
    if (!Number.isSafeInteger(v)) throw malformed('integer out of range');
    return v;
  },
};

const mtime: Encoder<number> = {
  preencode: (s, v) => c.float64.preencode(s, v),
  encode: (s, v) => c.float64.encode(s, v),
  decode(s) {
    need(s, 8, 'mtime');
    const v = c.float64.decode(s);
    if (!Number.isFinite(v) || v < 0) throw malformed('mtime out of range');
    return v;
  },
};

function flag(s: EncodingState, what: string): boolean {
  need(s, 1, what);
  const v = c.uint8.decode(s);
  if (v > 1) throw malformed(`${what} is ${v}, not 0 or 1`);
  return v === 1;
}

function boundedString(max: number, what: string): Encoder<string> {
  return {
    preencode: (s, v) => c.string.preencode(s, v),
    encode: (s, v) => c.string.encode(s, v),
    decode(s) {
      const len = c.uint.decode(s);
      if (len > max) throw malformed(`${what} longer than ${max} bytes`);
      need(s, len, what);
      const text = Buffer.from(s.buffer!.buffer, s.buffer!.byteOffset + s.start, len).toString('utf8');
      s.start += len;
      return text;
    },
  };
}

function boundedBuffer(max: () => number, what: string): Encoder<Buffer> {
  return {
    preencode(s, v) {
      c.uint.preencode(s, v.byteLength);
      s.end += v.byteLength;
    },
    encode(s, v) {
      c.uint.encode(s, v.byteLength);
      s.buffer!.set(v, s.start);
      s.start += v.byteLength;
    },
    decode(s) {
      const len = c.uint.decode(s);
      if (len > max()) throw malformed(`${what} larger than ${max()} bytes`);
      need(s, len, what);
      const buf = Buffer.from(s.buffer!.buffer, s.buffer!.byteOffset + s.start, len);
      s.start += len;
      return buf;
    },
  };
}

function fixedBuffer(bytes: number, what: string): Encoder<Buffer> {
  return {
    preencode: (s) => {
      s.end += bytes;
    },
    encode(s, v) {
      if (v.byteLength !== bytes) throw new SdError('INVALID', `a ${what} is ${bytes} bytes`);
      s.buffer!.set(v, s.start);
      s.start += bytes;
    },
    decode(s) {
      need(s, bytes, what);
      const buf = Buffer.from(s.buffer!.buffer, s.buffer!.byteOffset + s.start, bytes);
      s.start += bytes;
      return buf;
    },
  };
}

const hash = fixedBuffer(BLAKE3_BYTES, 'block hash');
const signerKey = fixedBuffer(SIGNER_KEY_BYTES, 'signer key');
const signature = fixedBuffer(SIGNATURE_BYTES, 'signature');

/** A flag byte, then the value when it is 1. */
function optional<T>(enc: Encoder<T>, what: string): Encoder<T | undefined> {
  return {
    preencode(s, v) {
      s.end += 1;
      if (v !== undefined) enc.preencode(s, v);
    },
    encode(s, v) {
      c.uint8.encode(s, v === undefined ? 0 : 1);
      if (v !== undefined) enc.encode(s, v);
    },
    decode: (s) => (flag(s, what) ? enc.decode(s) : undefined),
  };
}

const optionalKey = optional(signerKey, 'vouch-by flag');
const optionalVouch = optional<Vouch>({
  preencode(s, v) {
    signerKey.preencode(s, v.signer);
    signature.preencode(s, v.signature);
    mtime.preencode(s, v.fileMtime);
  },
  encode(s, v) {
    signerKey.encode(s, v.signer);
    signature.encode(s, v.signature);
    mtime.encode(s, v.fileMtime);
  },
  decode: (s) => ({ signer: signerKey.decode(s), signature: signature.decode(s), fileMtime: mtime.decode(s) }),
}, 'vouch flag');

const locationName = boundedString(MAX_LOCATION_NAME_BYTES, 'location name');
const relativePath = boundedString(MAX_RELATIVE_PATH_BYTES, 'path');
const errorMessage = boundedString(MAX_ERROR_MESSAGE_BYTES, 'error message');
const contentId = boundedString(16, 'content id');

const target: Encoder<BlockTarget> = {
  preencode(s, v) {
    s.end += 1;
    if (v.kind === 'path') {
      locationName.preencode(s, v.location);
      relativePath.preencode(s, v.path);
    } else contentId.preencode(s, v.contentId);
  },
  encode(s, v) {
    c.uint8.encode(s, v.kind === 'path' ? 0 : 1);
    if (v.kind === 'path') {
      locationName.encode(s, v.location);
      relativePath.encode(s, v.path);
    } else contentId.encode(s, v.contentId);
  },
  decode(s) {
    need(s, 1, 'target kind');
    const kind = c.uint8.decode(s);
    if (kind === 0) return { kind: 'path', location: locationName.decode(s), path: relativePath.decode(s) };
    if (kind === 1) {
      const cid = contentId.decode(s);
      if (!/^[0-9a-f]{16}$/.test(cid)) throw malformed('content id is not 16 hex chars');
      return { kind: 'content', contentId: cid };
    }
    throw malformed(`unknown target kind ${kind}`);
  },
};

/**
 * Any decoding failure — ours or compact-encoding's, including RangeErrors that protomux's
 * safety-catch would rethrow and crash the process with — becomes one plain SdError.
 */
function guarded<T>(enc: Encoder<T>, what: string): Encoder<T> {
  return {
    preencode: enc.preencode,
    encode: enc.encode,
    decode(s) {
      try {
        return enc.decode(s);
      } catch (err) {
        if (err instanceof SdError) throw err;
        throw malformed(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
  };
}

export const blockRequestEncoding: Encoder<BlockRequest> = guarded({
  preencode(s, v) {
    id.preencode(s, v.id);
    target.preencode(s, v.target);
    safeUint.preencode(s, v.offset);
    safeUint.preencode(s, v.length);
    safeUint.preencode(s, v.expectSize);
    mtime.preencode(s, v.expectMtime);
    s.end += 1;
    optionalKey.preencode(s, v.vouchBy);
  },
  encode(s, v) {
    id.encode(s, v.id);
    target.encode(s, v.target);
    safeUint.encode(s, v.offset);
    safeUint.encode(s, v.length);
    safeUint.encode(s, v.expectSize);
    mtime.encode(s, v.expectMtime);
    c.uint8.encode(s, v.hashOnly ? 1 : 0);
    optionalKey.encode(s, v.vouchBy);
  },
  decode(s) {
    const req: BlockRequest = {
      id: id.decode(s),
      target: target.decode(s),
      offset: safeUint.decode(s),
      length: safeUint.decode(s),
      expectSize: safeUint.decode(s),
      expectMtime: mtime.decode(s),
      hashOnly: flag(s, 'hash-only flag'),
      vouchBy: optionalKey.decode(s),
    };
    if (req.length === 0 || req.length > config.blockMaxBytes) throw malformed(`request length ${req.length} outside 1..${config.blockMaxBytes}`);
    return req;
  },
}, 'request');

const data = boundedBuffer(() => config.blockMaxBytes, 'block data');

export const blockReplyEncoding: Encoder<BlockReply> = guarded({
  preencode(s, v) {
    id.preencode(s, v.id);
    data.preencode(s, v.data);
    hash.preencode(s, v.hash);
    safeUint.preencode(s, v.fileSize);
    mtime.preencode(s, v.fileMtime);
    signerKey.preencode(s, v.signer);
    signature.preencode(s, v.signature);
    optionalVouch.preencode(s, v.vouch);
  },
  encode(s, v) {
    id.encode(s, v.id);
    data.encode(s, v.data);
    hash.encode(s, v.hash);
    safeUint.encode(s, v.fileSize);
    mtime.encode(s, v.fileMtime);
    signerKey.encode(s, v.signer);
    signature.encode(s, v.signature);
    optionalVouch.encode(s, v.vouch);
  },
  decode(s) {
    return {
      id: id.decode(s), data: data.decode(s), hash: hash.decode(s), fileSize: safeUint.decode(s), fileMtime: mtime.decode(s),
      signer: signerKey.decode(s), signature: signature.decode(s), vouch: optionalVouch.decode(s),
    };
  },
}, 'reply');

export const blockErrorEncoding: Encoder<BlockError> = guarded({
  preencode(s, v) {
    id.preencode(s, v.id);
    s.end += 1;
    errorMessage.preencode(s, v.message);
  },
  encode(s, v) {
    id.encode(s, v.id);
    c.uint8.encode(s, ERROR_CODES.indexOf(v.code));
    errorMessage.encode(s, v.message);
  },
  decode(s) {
    const msgId = id.decode(s);
    need(s, 1, 'error code');
    const code = ERROR_CODES[c.uint8.decode(s)];
    if (!code) throw malformed('unknown error code');
    return { id: msgId, code, message: errorMessage.decode(s) };
  },
}, 'error');

/** Cuts an error message to what the wire carries (whole UTF-8 characters). */
export function clipErrorMessage(message: string): string {
  const buf = Buffer.from(message);
  if (buf.byteLength <= MAX_ERROR_MESSAGE_BYTES) return message;
  return buf.subarray(0, MAX_ERROR_MESSAGE_BYTES - 3).toString('utf8').replace(/\uFFFD$/, '') + '...';
}
