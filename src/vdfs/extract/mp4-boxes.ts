// An MP4 or QuickTime file's duration and picture size from its boxes: the top-level box
// headers are hopped (never the media data) to moov, which is read and walked for mvhd and tkhd.
import { readAt, type OpenFile } from './read.js';

export interface Mp4Facts {
  durationMs?: number;
  width?: number;
  height?: number;
}

/** A moov larger than this is not read (long recordings have a few MB of sample tables). */
const MOOV_MAX_BYTES = 64 * 1024 * 1024;
/** Top-level boxes hopped before giving up on finding moov. */
const TOP_MAX_BOXES = 10_000;
/** Boxes looked at inside moov. */
const MOOV_MAX_BOXES = 100_000;

interface Box {
  type: string;
  /** Where its content starts and ends (after the header). */
  start: number;
  end: number;
}

/** Duration (mvhd) and the first picture track's size (tkhd, turned as its matrix turns it); {} when there is no moov. */
export async function readMp4Boxes(file: OpenFile): Promise<Mp4Facts> {
  const moov = await findMoov(file);
  if (!moov || moov.end - moov.start > MOOV_MAX_BYTES) return {};
  const bytes = await readAt(file, moov.start, moov.end - moov.start);
  const facts: Mp4Facts = {};
  let seen = 0;
  const walk = (from: number, to: number): void => {
    for (const box of boxesIn(bytes, from, to)) {
      if (++seen > MOOV_MAX_BOXES) return;
      if (box.type === 'trak') walk(box.start, box.end);
      else if (box.type === 'mvhd' && facts.durationMs === undefined) Object.assign(facts, movieHeader(bytes.subarray(box.start, box.end)));
      else if (box.type === 'tkhd' && facts.width === undefined) Object.assign(facts, trackHeader(bytes.subarray(box.start, box.end)));
    }
  };
  walk(0, bytes.length);
  return facts;
}

/** moov among the top-level boxes, each header read where the box before it ends. */
async function findMoov(file: OpenFile): Promise<Box | undefined> {
  let pos = 0;
  for (let n = 0; n < TOP_MAX_BOXES && pos + 8 <= file.size; n++) {
    const header = await readAt(file, pos, 16);
    const box = parseHeader(header, 0, file.size - pos);
    if (!box) return undefined;
    if (box.type === 'moov') return { type: box.type, start: pos + box.start, end: pos + box.end };
    pos += box.end;
  }
  return undefined;
}

/** The box whose header is at `at`, with `room` bytes left for it; undefined for a header that does not fit. */
function parseHeader(bytes: Buffer, at: number, room: number): Box | undefined {
  if (room < 8 || at + 8 > bytes.length) return undefined;
  let size = bytes.readUInt32BE(at);
  const type = bytes.toString('latin1', at + 4, at + 8);
  let headerSize = 8;
  if (size === 1) {
    if (at + 16 > bytes.length) return undefined;
    size = Number(bytes.readBigUInt64BE(at + 8)); // a 64-bit size (files over 4 GiB)
    headerSize = 16;
  } else if (size === 0) {
    size = room; // the box runs to the end
  }
  if (size < headerSize || size > room) return undefined;
  return { type, start: at + headerSize, end: at + size };
}

function* boxesIn(bytes: Buffer, from: number, to: number): Generator<Box> {
  let pos = from;
  while (pos + 8 <= to) {
    const box = parseHeader(bytes, pos, to - pos);
    if (!box) return;
    yield box;
    pos = box.end;
  }
}

/** mvhd: version, flags, then times, timescale and duration, 32 or 64 bits wide by version. */
function movieHeader(b: Buffer): Mp4Facts {
  const v1 = b[0] === 1;
  if (b.length < (v1 ? 32 : 20)) return {};
  const timescale = b.readUInt32BE(v1 ? 20 : 12);
  const duration = v1 ? Number(b.readBigUInt64BE(24)) : b.readUInt32BE(16);
  if (timescale === 0 || duration === 0 || (!v1 && duration === 0xffffffff)) return {};
  return { durationMs: Math.round((duration / timescale) * 1000) };
}

/**
 * tkhd: after the times, track id and duration come layer, group, volume, a 3x3 matrix and
 * width and height in 16.16 fixed point. Audio tracks have 0 by 0; a phone's portrait video
 * is stored wide with a matrix that turns it a quarter.
 */
function trackHeader(b: Buffer): Mp4Facts {
  const matrixAt = b[0] === 1 ? 52 : 40;
  if (b.length < matrixAt + 44) return {};
  const width = Math.round(b.readUInt32BE(matrixAt + 36) / 65536);
  const height = Math.round(b.readUInt32BE(matrixAt + 40) / 65536);
  if (width === 0 || height === 0) return {};
  const a = b.readInt32BE(matrixAt);
  const b01 = b.readInt32BE(matrixAt + 4);
  const quarterTurn = a === 0 && Math.abs(b01) === 65536;
  return quarterTurn ? { width: height, height: width } : { width, height };
}
