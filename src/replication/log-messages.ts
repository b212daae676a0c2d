// The blocks of a device's index log (its hypercore) and their compact-encoding. A block
// holds a run of index changes and the last outbox seq it covers (see device-log.ts).
// To be merged into messages.ts with the swarm's messages.
import c from 'compact-encoding';
import type { EntryKind } from '../vdfs/entries.js';
import type { IndexChange } from '../vdfs/outbox.js';
import { MAX_EXTRACT_META_BYTES, MAX_EXTRACT_TEXT_BYTES, parseExtractMeta } from '../vdfs/content/extracts.js';

/** One operation of a log block: an index change of the log's device. */
/**
 * What a log block holds: the index changes, plus a symlink's target (`link`, right after
 * its entry), read from disk when the change goes into the log: the index keeps no targets.
 */
export type LogOp = IndexChange | { op: 'link'; id: number; target: string };

/** The longest link target a log carries (PATH_MAX). */
export const MAX_LINK_TARGET_BYTES = 4096;

export interface LogBlock {
  /** The highest outbox seq of the owner held by this block and the ones before it (0: none). */
  lastSeq: number;
  ops: LogOp[];
}

const BLOCK_VERSION = 1;
const KINDS: readonly EntryKind[] = ['file', 'dir', 'symlink'];
const TAGS = ['location', 'unlocation', 'entry', 'tombstone', 'content', 'fullHash', 'tag', 'link', 'meta', 'check', 'guardian', 'space', 'extract'] as const;

type State = ReturnType<typeof c.state>;

/** A malformed block: names what is wrong; the caller adds whose log it came from. */
export class LogDecodeError extends Error {}

const opEncoding = {
  preencode(state: State, o: LogOp): void {
    c.uint.preencode(state, TAGS.indexOf(o.op));
    switch (o.op) {
      case 'location':
        c.uint.preencode(state, o.id);
        c.string.preencode(state, o.name);
        c.string.preencode(state, o.rootPath);
        c.string.preencode(state, o.indexMode);
        break;
      case 'unlocation':
      case 'tombstone':
        c.uint.preencode(state, o.id);
        break;
      case 'entry':
        c.uint.preencode(state, o.id);
        c.uint.preencode(state, o.locationId);
        c.uint.preencode(state, o.parentId ?? 0);
        c.string.preencode(state, o.name);
        c.uint.preencode(state, 0); // kind
        c.uint.preencode(state, o.size);
        c.float64.preencode(state, o.mtime);
        c.uint.preencode(state, o.mode);
        c.string.preencode(state, o.contentId ?? '');
        break;
      case 'content':
        c.string.preencode(state, o.contentId);
        c.uint.preencode(state, o.size);
        c.string.preencode(state, o.sampledHash);
        break;
      case 'fullHash':
        c.string.preencode(state, o.contentId);
        c.string.preencode(state, o.fullHash);
        break;
      case 'tag':
        c.string.preencode(state, o.device);
        c.uint.preencode(state, o.entry);
        c.string.preencode(state, o.tag);
        c.uint.preencode(state, 0); // present
        c.string.preencode(state, o.hlc);
        break;
      case 'link':
        c.uint.preencode(state, o.id);
        c.string.preencode(state, o.target);
        break;
      case 'meta':
        c.string.preencode(state, o.device);
        c.uint.preencode(state, o.entry);
        c.string.preencode(state, o.key);
        c.uint.preencode(state, 0); // has a value
        c.string.preencode(state, o.value ?? '');
        c.string.preencode(state, o.hlc);
        break;
      case 'check':
        c.uint.preencode(state, o.id);
        c.string.preencode(state, o.fullHash);
        c.uint.preencode(state, o.size);
        c.float64.preencode(state, o.mtime);
        c.uint.preencode(state, 0); // corrupt
        break;
      case 'guardian':
        c.string.preencode(state, o.kind);
        c.string.preencode(state, o.key);
        c.uint.preencode(state, 0); // has a value
        c.string.preencode(state, o.value ?? '');
        c.string.preencode(state, o.hlc);
        break;
      case 'space':
        c.uint.preencode(state, o.id);
        c.uint.preencode(state, o.free);
        c.uint.preencode(state, o.total);
        c.uint.preencode(state, o.at);
        break;
      case 'extract':
        c.string.preencode(state, o.contentId);
        c.uint.preencode(state, o.version);
        c.uint.preencode(state, 0); // status
        c.string.preencode(state, o.mime ?? '');
        c.uint.preencode(state, 0); // has text
        c.string.preencode(state, o.text ?? '');
        c.string.preencode(state, JSON.stringify(o.meta));
        break;
    }
  },
  encode(state: State, o: LogOp): void {
    c.uint.encode(state, TAGS.indexOf(o.op));
    switch (o.op) {
      case 'location':
        c.uint.encode(state, o.id);
        c.string.encode(state, o.name);
        c.string.encode(state, o.rootPath);
        c.string.encode(state, o.indexMode);
        break;
      case 'unlocation':
      case 'tombstone':
        c.uint.encode(state, o.id);
        break;
      case 'entry':
        c.uint.encode(state, o.id);
        c.uint.encode(state, o.locationId);
        c.uint.encode(state, o.parentId ?? 0);
        c.string.encode(state, o.name);
        c.uint.encode(state, KINDS.indexOf(o.kind));
        c.uint.encode(state, o.size);
        c.float64.encode(state, o.mtime);
        c.uint.encode(state, o.mode);
        c.string.encode(state, o.contentId ?? '');
        break;
      case 'content':
        c.string.encode(state, o.contentId);
        c.uint.encode(state, o.size);
        c.string.encode(state, o.sampledHash);
        break;
      case 'fullHash':
        c.string.encode(state, o.contentId);
        c.string.encode(state, o.fullHash);
        break;
      case 'tag':
        c.string.encode(state, o.device);
        c.uint.encode(state, o.entry);
        c.string.encode(state, o.tag);
        c.uint.encode(state, o.present ? 1 : 0);
        c.string.encode(state, o.hlc);
        break;
      case 'link':
        c.uint.encode(state, o.id);
        c.string.encode(state, o.target);
        break;
      case 'meta':
        c.string.encode(state, o.device);
        c.uint.encode(state, o.entry);
        c.string.encode(state, o.key);
        c.uint.encode(state, o.value === null ? 0 : 1);
        c.string.encode(state, o.value ?? '');
        c.string.encode(state, o.hlc);
        break;
      case 'check':
        c.uint.encode(state, o.id);
        c.string.encode(state, o.fullHash);
        c.uint.encode(state, o.size);
        c.float64.encode(state, o.mtime);
        c.uint.encode(state, o.corrupt ? 1 : 0);
        break;
      case 'guardian':
        c.string.encode(state, o.kind);
        c.string.encode(state, o.key);
        c.uint.encode(state, o.value === null ? 0 : 1);
        c.string.encode(state, o.value ?? '');
        c.string.encode(state, o.hlc);
        break;
      case 'space':
        c.uint.encode(state, o.id);
        c.uint.encode(state, o.free);
        c.uint.encode(state, o.total);
        c.uint.encode(state, o.at);
        break;
      case 'extract':
        c.string.encode(state, o.contentId);
        c.uint.encode(state, o.version);
        c.uint.encode(state, o.status === 'ok' ? 0 : 1);
        c.string.encode(state, o.mime ?? '');
        c.uint.encode(state, o.text === null ? 0 : 1);
        c.string.encode(state, o.text ?? '');
        c.string.encode(state, JSON.stringify(o.meta));
        break;
    }
  },
  decode(state: State): LogOp {
    const tag = TAGS[c.uint.decode(state)];
    switch (tag) {
      case 'location':
        return { op: tag, id: c.uint.decode(state), name: c.string.decode(state), rootPath: c.string.decode(state), indexMode: c.string.decode(state) };
      case 'unlocation':
      case 'tombstone':
        return { op: tag, id: c.uint.decode(state) };
      case 'entry': {
        const id = c.uint.decode(state);
        const locationId = c.uint.decode(state);
        const parentId = c.uint.decode(state) || null;
        const name = c.string.decode(state);
        const kind = KINDS[c.uint.decode(state)];
        if (!kind) throw new LogDecodeError(`entry ${id} has an unknown kind`);
        const size = c.uint.decode(state);
        const mtime = c.float64.decode(state);
        const mode = c.uint.decode(state);
        const contentId = c.string.decode(state) || null;
        return { op: tag, id, locationId, parentId, name, kind, size, mtime, mode, contentId };
      }
      case 'content':
        return { op: tag, contentId: c.string.decode(state), size: c.uint.decode(state), sampledHash: c.string.decode(state) };
      case 'fullHash':
        return { op: tag, contentId: c.string.decode(state), fullHash: c.string.decode(state) };
      case 'tag': {
        const device = c.string.decode(state);
        const entry = c.uint.decode(state);
        const name = c.string.decode(state);
        const present = c.uint.decode(state) === 1;
        const hlc = c.string.decode(state);
        return { op: tag, device, entry, tag: name, present, hlc };
      }
      case 'link': {
        const id = c.uint.decode(state);
        const target = c.string.decode(state);
        if (Buffer.byteLength(target) > MAX_LINK_TARGET_BYTES) throw new LogDecodeError(`the link target of entry ${id} is longer than ${MAX_LINK_TARGET_BYTES} bytes`);
        return { op: tag, id, target };
      }
      case 'meta': {
        const device = c.string.decode(state);
        const entry = c.uint.decode(state);
        const key = c.string.decode(state);
        const hasValue = c.uint.decode(state) === 1;
        const value = c.string.decode(state);
        const hlc = c.string.decode(state);
        return { op: tag, device, entry, key, value: hasValue ? value : null, hlc };
      }
      case 'check': {
        const id = c.uint.decode(state);
        const fullHash = c.string.decode(state);
        const size = c.uint.decode(state);
        const mtime = c.float64.decode(state);
        const corrupt = c.uint.decode(state) === 1;
        if (!/^[0-9a-f]{64}$/.test(fullHash)) throw new LogDecodeError(`the check of entry ${id} has no BLAKE3 hash`);
        return { op: tag, id, fullHash, size, mtime, corrupt };
      }
      case 'guardian': {
        const kind = c.string.decode(state);
        const key = c.string.decode(state);
        const hasValue = c.uint.decode(state) === 1;
        const value = c.string.decode(state);
        const hlc = c.string.decode(state);
        return { op: tag, kind, key, value: hasValue ? value : null, hlc };
      }
      case 'space': {
        const id = c.uint.decode(state);
        const free = c.uint.decode(state);
        const total = c.uint.decode(state);
        const at = c.uint.decode(state);
        if (free > total) throw new LogDecodeError(`location ${id} has more free bytes than it holds`);
        return { op: tag, id, free, total, at };
      }
      case 'extract': {
        const contentId = c.string.decode(state);
        const version = c.uint.decode(state);
        const failed = c.uint.decode(state) === 1;
        const mime = c.string.decode(state) || null;
        const hasText = c.uint.decode(state) === 1;
        const text = c.string.decode(state);
        const metaJson = c.string.decode(state);
        if (Buffer.byteLength(text) > MAX_EXTRACT_TEXT_BYTES) throw new LogDecodeError(`the extract of content ${contentId} has more than ${MAX_EXTRACT_TEXT_BYTES} bytes of text`);
        if (Buffer.byteLength(metaJson) > MAX_EXTRACT_META_BYTES) throw new LogDecodeError(`the extract of content ${contentId} has more than ${MAX_EXTRACT_META_BYTES} bytes of metadata`);
        let meta;
        try {
          meta = parseExtractMeta(metaJson);
        } catch (err) {
          throw new LogDecodeError(`the extract of content ${contentId}: ${(err as Error).message}`);
        }
        return { op: tag, contentId, version, status: failed ? 'failed' : 'ok', mime, text: hasText ? text : null, meta };
      }
      default:
        throw new LogDecodeError('an operation of an unknown type');
    }
  },
};

const opsEncoding = c.array(opEncoding);

/** The bytes one operation takes in a block. */
export function encodedOpBytes(o: LogOp): number {
  const state = c.state();
  opEncoding.preencode(state, o);
  return state.end;
}

export function encodeLogBlock(block: LogBlock): Buffer {
  const state = c.state();
  c.uint.preencode(state, BLOCK_VERSION);
  c.uint.preencode(state, block.lastSeq);
  opsEncoding.preencode(state, block.ops);
  state.buffer = Buffer.allocUnsafe(state.end);
  c.uint.encode(state, BLOCK_VERSION);
  c.uint.encode(state, block.lastSeq);
  opsEncoding.encode(state, block.ops);
  return state.buffer as Buffer;
}

/** Decodes a block; throws LogDecodeError on anything but a whole, well-formed block. */
export function decodeLogBlock(buffer: Uint8Array): LogBlock {
  const state = c.state(0, buffer.byteLength, buffer);
  try {
    const version = c.uint.decode(state);
    if (version !== BLOCK_VERSION) throw new LogDecodeError(`block version ${version} is not known here (this build reads ${BLOCK_VERSION}); update sdfs`);
    const lastSeq = c.uint.decode(state);
    const ops = opsEncoding.decode(state);
    if (state.start !== state.end) throw new LogDecodeError(`${state.end - state.start} bytes after the last operation`);
    return { lastSeq, ops };
  } catch (err) {
    if (err instanceof LogDecodeError) throw err;
    throw new LogDecodeError(`the block is cut short or garbled (${err instanceof Error ? err.message : String(err)})`);
  }
}
