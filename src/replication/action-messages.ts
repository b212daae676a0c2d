// The wire messages of the action protocol: a device asks a peer to run a change in the
// peer's own tree (copy in staged bytes, mkdir, delete, move), the peer answers with the
// outcome. JSON in a length-limited frame; decoding checks every field and throws on
// anything else, which makes protomux close that connection.
import c from 'compact-encoding';
import type { Encoder } from 'protomux';
import { SdError } from '../errors.js';
import type { RemoteOp } from '../vdfs/remote-changes.js';

export const ACTION_PROTOCOL = 'sdfs/actions/1';

const MAX_MESSAGE_BYTES = 16 * 1024;
const MAX_PATH_BYTES = 4096;
const MAX_NAME_BYTES = 255;
const MAX_ERROR_BYTES = 1024;

export interface ActionRequest {
  /** The asking device's job id: the same request sent again (after a reconnect) carries the same id. */
  id: number;
  op: RemoteOp;
  /** For copies: the staged file's size, content id (to fetch it by) and full BLAKE3 (hex). */
  size?: number;
  contentId?: string;
  fullHash?: string;
  mode?: number;
  mtimeMs?: number;
}

export interface ActionReply {
  id: number;
  ok: boolean;
  /** What the peer did (e.g. the name a kept-both copy got) or why it refused. */
  message: string;
  /** The peer's index log length once the change is in it: the asker waits for its mirror to get there. */
  logLength: number;
  /** A refusal that will not change by trying again (no such location, a path outside it...). */
  final: boolean;
}

function malformed(what: string): SdError {
  return new SdError('INVALID', `malformed action message: ${what}`);
}

function jsonFrame<T>(check: (v: Record<string, unknown>) => T): Encoder<T> {
  return {
    preencode: (s, v) => c.string.preencode(s, JSON.stringify(v)),
    encode: (s, v) => c.string.encode(s, JSON.stringify(v)),
    decode(s) {
      if (s.end - s.start > MAX_MESSAGE_BYTES + 8) throw malformed(`larger than ${MAX_MESSAGE_BYTES} bytes`);
      const text = c.string.decode(s);
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch {
        throw malformed('not JSON');
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw malformed('not an object');
      return check(v as Record<string, unknown>);
    },
  };
}

function str(v: unknown, what: string, max: number, empty = false): string {
  if (typeof v !== 'string' || Buffer.byteLength(v) > max || (!empty && v === '') || v.includes('\0')) throw malformed(`${what} is not a string of 1..${max} bytes`);
  return v;
}

function uint(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw malformed(`${what} is not a non-negative integer`);
  return v;
}

function hex(v: unknown, what: string, max: number): string {
  const text = str(v, what, max);
  if (!/^[0-9a-f]+$/.test(text)) throw malformed(`${what} is not hex`);
  return text;
}

function fullHash(v: unknown): string {
  const h = str(v, 'fullHash', 64);
  if (!/^[0-9a-f]{64}$/.test(h)) throw malformed('fullHash is not 64 hex digits');
  return h;
}

function optional<T>(v: unknown, read: (v: unknown) => T): T | undefined {
  return v === undefined ? undefined : read(v);
}

function op(v: unknown): RemoteOp {
  if (typeof v !== 'object' || v === null) throw malformed('op is not an object');
  const o = v as Record<string, unknown>;
  const location = str(o.location, 'location', MAX_NAME_BYTES);
  const path = str(o.path, 'path', MAX_PATH_BYTES);
  switch (o.op) {
    case 'copy':
      return { op: 'copy', location, path, pendingId: uint(o.pendingId, 'pendingId'), overwrite: o.overwrite === true };
    case 'mkdir':
      return { op: 'mkdir', location, path, mode: uint(o.mode, 'mode') & 0o7777 };
    case 'delete':
      return { op: 'delete', location, path };
    case 'move':
      return { op: 'move', location, path, to: str(o.to, 'to', MAX_PATH_BYTES) };
    case 'attrs':
      return {
        op: 'attrs',
        location,
        path,
        mode: optional(o.mode, (x) => uint(x, 'mode') & 0o7777),
        atimeMs: optional(o.atimeMs, (x) => uint(Math.round(Number(x)), 'atimeMs')),
        mtimeMs: optional(o.mtimeMs, (x) => uint(Math.round(Number(x)), 'mtimeMs')),
      };
    case 'protect':
      return {
        op: 'protect',
        location,
        path,
        contentId: hex(o.contentId, 'contentId', 64),
        fullHash: fullHash(o.fullHash),
        size: uint(o.size, 'size'),
        mode: uint(o.mode, 'mode') & 0o7777,
        mtimeMs: uint(Math.round(Number(o.mtimeMs)), 'mtimeMs'),
      };
    default:
      throw malformed(`unknown op ${JSON.stringify(o.op)?.slice(0, 40)}`);
  }
}

export const actionRequest = jsonFrame<ActionRequest>((v) => ({
  id: uint(v.id, 'id'),
  op: op(v.op),
  size: optional(v.size, (x) => uint(x, 'size')),
  contentId: optional(v.contentId, (x) => hex(x, 'contentId', 64)),
  fullHash: optional(v.fullHash, fullHash),
  mode: optional(v.mode, (x) => uint(x, 'mode') & 0o7777),
  mtimeMs: optional(v.mtimeMs, (x) => uint(Math.round(Number(x)), 'mtimeMs')),
}));

export const actionReply = jsonFrame<ActionReply>((v) => ({
  id: uint(v.id, 'id'),
  ok: v.ok === true,
  message: str(v.message, 'message', MAX_ERROR_BYTES, true),
  logLength: uint(v.logLength, 'logLength'),
  final: v.final === true,
}));

/** A message that fits the frame (error texts are cut, never the reason a reply is lost). */
export function clipMessage(text: string): string {
  return Buffer.byteLength(text) <= MAX_ERROR_BYTES ? text : `${Buffer.from(text).subarray(0, MAX_ERROR_BYTES - 3).toString('utf8').replace(/\uFFFD$/, '')}...`;
}
