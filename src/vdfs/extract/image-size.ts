// An image's pixel size from its header alone: PNG's IHDR, GIF's screen, BMP's DIB header,
// WebP's VP8 frame, JPEG's SOF segment (found by hopping segment headers, never the pixels).
import { readAt, type OpenFile } from './read.js';

export interface PixelSize {
  width: number;
  height: number;
}

/** Segments looked at before giving up on finding a JPEG's frame header. */
const JPEG_MAX_SEGMENTS = 1000;

/** The width and height the image's header states; undefined for a format not read here or a header that is not there. */
export async function imagePixelSize(file: OpenFile, head: Buffer, mime: string): Promise<PixelSize | undefined> {
  switch (mime) {
    case 'image/png':
      return head.length >= 24 && head.toString('latin1', 12, 16) === 'IHDR' ? sized(head.readUInt32BE(16), head.readUInt32BE(20)) : undefined;
    case 'image/gif':
      return head.length >= 10 ? sized(head.readUInt16LE(6), head.readUInt16LE(8)) : undefined;
    case 'image/bmp':
      if (head.length < 26) return undefined;
      return head.readUInt32LE(14) === 12 ? sized(head.readUInt16LE(18), head.readUInt16LE(20)) : sized(head.readInt32LE(18), Math.abs(head.readInt32LE(22)));
    case 'image/webp':
      return webpSize(head);
    case 'image/jpeg':
      return jpegSize(file, head);
    default:
      return undefined;
  }
}

function sized(width: number, height: number): PixelSize | undefined {
  return width > 0 && height > 0 ? { width, height } : undefined;
}

function webpSize(head: Buffer): PixelSize | undefined {
  if (head.length < 30) return undefined;
  switch (head.toString('latin1', 12, 16)) {
    case 'VP8 ':
      return sized(head.readUInt16LE(26) & 0x3fff, head.readUInt16LE(28) & 0x3fff);
    case 'VP8L': {
      const bits = head.readUInt32LE(21);
      return sized((bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
    }
    case 'VP8X':
      return sized(1 + head.readUIntLE(24, 3), 1 + head.readUIntLE(27, 3));
    default:
      return undefined;
  }
}

/** Start-of-frame markers: C0..CF less DHT (C4), JPG (C8) and DAC (CC). */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

async function jpegSize(file: OpenFile, head: Buffer): Promise<PixelSize | undefined> {
  let pos = 2;
  for (let n = 0; n < JPEG_MAX_SEGMENTS; n++) {
    const seg = pos + 9 <= head.length ? head.subarray(pos, pos + 9) : await readAt(file, pos, 9);
    if (seg.length < 4 || seg[0] !== 0xff) return undefined;
    const marker = seg[1]!;
    if (marker === 0xff) {
      pos++; // fill byte before a marker
      continue;
    }
    if (isStartOfFrame(marker)) return seg.length >= 9 ? sized(seg.readUInt16BE(7), seg.readUInt16BE(5)) : undefined;
    if (marker === 0xda || marker === 0xd9) return undefined; // scan data or the end, and no frame header before it
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      pos += 2; // markers without a length
      continue;
    }
    const length = seg.readUInt16BE(2);
    if (length < 2) return undefined;
    pos += 2 + length;
  }
  return undefined;
}
