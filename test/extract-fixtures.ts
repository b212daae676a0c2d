// Real files of each kind the extractors read, made byte by byte: a PDF with a correct
// xref, a docx and an odt zipped with fflate, a JPEG with an EXIF segment, a PNG, a WAV, an MP4.
import zlib from 'node:zlib';
import { zipSync, type Zippable } from 'fflate';

// ---------------------------------------------------------------- PDF

/**
 * A PDF of text pages in Helvetica, each line a Tj on its own line; content streams
 * deflated (as real PDFs have them) and every object's offset right in the xref table.
 */
export function makePdf(pages: readonly (readonly string[])[], info: { title?: string; author?: string } = {}): Buffer {
  const objects: Buffer[] = [];
  const add = (body: string | Buffer): number => objects.push(typeof body === 'string' ? Buffer.from(body, 'latin1') : body);
  const esc = (s: string) => s.replace(/[\\()]/g, (c) => `\\${c}`);
  add('<< /Type /Catalog /Pages 2 0 R >>');
  add(''); // the page tree, once its kids are known
  add('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>');
  const infoParts = [info.title ? `/Title (${esc(info.title)})` : '', info.author ? `/Author (${esc(info.author)})` : ''].join(' ');
  const infoRef = add(`<< ${infoParts} /Producer (sdfs test) >>`);
  const kids: number[] = [];
  for (const lines of pages) {
    const content = zlib.deflateSync(Buffer.from(`BT /F1 11 Tf 14 TL 50 790 Td ${lines.map((l) => `(${esc(l)}) Tj T*`).join(' ')} ET`, 'latin1'));
    const stream = Buffer.concat([Buffer.from(`<< /Length ${content.length} /Filter /FlateDecode >>\nstream\n`, 'latin1'), content, Buffer.from('\nendstream', 'latin1')]);
    const contentRef = add(stream);
    kids.push(add(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents ${contentRef} 0 R >>`));
  }
  objects[1] = Buffer.from(`<< /Type /Pages /Kids [${kids.map((k) => `${k} 0 R`).join(' ')}] /Count ${kids.length} >>`, 'latin1');

  const parts: Buffer[] = [Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let length = parts[0]!.length;
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(length);
    const obj = Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`, 'latin1'), body, Buffer.from('\nendobj\n', 'latin1')]);
    parts.push(obj);
    length += obj.length;
  });
  const xref = [`xref\n0 ${objects.length + 1}\n`, '0000000000 65535 f \n', ...offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`)].join('');
  parts.push(Buffer.from(`${xref}trailer\n<< /Size ${objects.length + 1} /Root 1 0 R /Info ${infoRef} 0 R >>\nstartxref\n${length}\n%%EOF\n`, 'latin1'));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------- office documents

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const utf8 = (s: string) => new TextEncoder().encode(s);

export interface DocProps {
  title?: string;
  creator?: string;
}

/** A Word document: one w:p per paragraph, each split over two runs; optional core properties. */
export function makeDocx(paragraphs: readonly string[], props: DocProps = {}): Buffer {
  const body = paragraphs.map((p) => {
    const half = Math.floor(p.length / 2);
    return `<w:p><w:pPr><w:pStyle w:val="Normal"/></w:pPr><w:r><w:t xml:space="preserve">${xmlEscape(p.slice(0, half))}</w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t xml:space="preserve">${xmlEscape(p.slice(half))}</w:t></w:r></w:p>`;
  }).join('');
  const files: Zippable = {
    '[Content_Types].xml': utf8('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/></Types>'),
    '_rels/.rels': utf8('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/></Relationships>'),
    'word/document.xml': utf8(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>${body}<w:sectPr/></w:body></w:document>`),
    'docProps/core.xml': utf8(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">${props.title ? `<dc:title>${xmlEscape(props.title)}</dc:title>` : ''}${props.creator ? `<dc:creator>${xmlEscape(props.creator)}</dc:creator>` : ''}</cp:coreProperties>`),
  };
  return Buffer.from(zipSync(files));
}

/**
 * An OpenDocument text: text:h for the first paragraph, text:p for the rest, the first word
 * of each in a span; a double space is written as ODF does (a space and text:s). Its
 * mimetype entry comes first and stored, as the format asks.
 */
export function makeOdt(paragraphs: readonly string[], props: DocProps = {}): Buffer {
  const ns = 'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0"';
  const body = paragraphs.map((p, i) => {
    const [first = '', ...rest] = xmlEscape(p).replace(/ {2}/g, ' <text:s/>').split(' ');
    const marked = [`<text:span text:style-name="T1">${first}</text:span>`, ...rest].join(' ');
    return i === 0 ? `<text:h text:outline-level="1">${marked}</text:h>` : `<text:p text:style-name="P1">${marked}</text:p>`;
  }).join('');
  const files: Zippable = {
    mimetype: [utf8('application/vnd.oasis.opendocument.text'), { level: 0 }],
    'META-INF/manifest.xml': utf8('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/><manifest:file-entry manifest:full-path="meta.xml" manifest:media-type="text/xml"/></manifest:manifest>'),
    'content.xml': utf8(`<?xml version="1.0" encoding="UTF-8"?><office:document-content ${ns} office:version="1.2"><office:automatic-styles/><office:body><office:text>${body}</office:text></office:body></office:document-content>`),
    'meta.xml': utf8(`<?xml version="1.0" encoding="UTF-8"?><office:document-meta ${ns} office:version="1.2"><office:meta>${props.title ? `<dc:title>${xmlEscape(props.title)}</dc:title>` : ''}${props.creator ? `<meta:initial-creator>${xmlEscape(props.creator)}</meta:initial-creator>` : ''}</office:meta></office:document-meta>`),
  };
  return Buffer.from(zipSync(files));
}

// ---------------------------------------------------------------- JPEG with EXIF

type IfdValue = { type: 'ascii'; value: string } | { type: 'short' | 'long'; value: number[] } | { type: 'rational'; value: [number, number][] };
type Ifd = Map<number, IfdValue>;

const TYPE_CODE = { ascii: 2, short: 3, long: 4, rational: 5 } as const;

function valueBytes(v: IfdValue): { count: number; bytes: Buffer } {
  switch (v.type) {
    case 'ascii': {
      const bytes = Buffer.from(`${v.value}\0`, 'latin1');
      return { count: bytes.length, bytes };
    }
    case 'short': {
      const bytes = Buffer.alloc(2 * v.value.length);
      v.value.forEach((n, i) => bytes.writeUInt16LE(n, 2 * i));
      return { count: v.value.length, bytes };
    }
    case 'long': {
      const bytes = Buffer.alloc(4 * v.value.length);
      v.value.forEach((n, i) => bytes.writeUInt32LE(n, 4 * i));
      return { count: v.value.length, bytes };
    }
    case 'rational': {
      const bytes = Buffer.alloc(8 * v.value.length);
      v.value.forEach(([num, den], i) => {
        bytes.writeUInt32LE(num, 8 * i);
        bytes.writeUInt32LE(den, 8 * i + 4);
      });
      return { count: v.value.length, bytes };
    }
  }
}

/** Bytes an IFD takes: its count, 12 per entry, the next-IFD offset, and values over 4 bytes (word aligned). */
function ifdSize(ifd: Ifd): number {
  let size = 2 + 12 * ifd.size + 4;
  for (const v of ifd.values()) {
    const n = valueBytes(v).bytes.length;
    if (n > 4) size += n + (n % 2);
  }
  return size;
}

/** An IFD laid out at `offset` from the TIFF header (entries sorted by tag, as TIFF wants), little-endian. */
function writeIfd(ifd: Ifd, offset: number): Buffer {
  const out = Buffer.alloc(ifdSize(ifd));
  const tags = [...ifd.keys()].sort((a, b) => a - b);
  out.writeUInt16LE(tags.length, 0);
  let data = 2 + 12 * tags.length + 4;
  tags.forEach((tag, i) => {
    const v = ifd.get(tag)!;
    const { count, bytes } = valueBytes(v);
    const at = 2 + 12 * i;
    out.writeUInt16LE(tag, at);
    out.writeUInt16LE(TYPE_CODE[v.type], at + 2);
    out.writeUInt32LE(count, at + 4);
    if (bytes.length <= 4) bytes.copy(out, at + 8);
    else {
      out.writeUInt32LE(offset + data, at + 8);
      bytes.copy(out, data);
      data += bytes.length + (bytes.length % 2);
    }
  });
  out.writeUInt32LE(0, 2 + 12 * tags.length); // no next IFD
  return out;
}

export interface JpegSpec {
  width: number;
  height: number;
  make?: string;
  model?: string;
  /** EXIF form: "2023:05:01 12:34:56". */
  dateTimeOriginal?: string;
  /** "+02:00" */
  offsetTimeOriginal?: string;
  lens?: string;
  /** Degrees; south and west negative. */
  gps?: { latitude: number; longitude: number };
  orientation?: number;
  /** Bytes of stand-in scan data after the headers (a real photo's size without its pixels). */
  scanBytes?: number;
}

const degreesToRational = (deg: number): [number, number][] => {
  const abs = Math.abs(deg);
  const d = Math.floor(abs);
  const m = Math.floor((abs - d) * 60);
  const s = Math.round(((abs - d) * 60 - m) * 60 * 1000);
  return [[d, 1], [m, 1], [s, 1000]];
};

/**
 * A JPEG: SOI, an APP1 "Exif" segment (a little-endian TIFF with IFD0 -> EXIF IFD and GPS
 * IFD, written by hand), a baseline SOF0 with the pixel size, a scan of filler, EOI.
 */
export function makeJpeg(spec: JpegSpec): Buffer {
  const ifd0: Ifd = new Map();
  if (spec.make) ifd0.set(0x010f, { type: 'ascii', value: spec.make });
  if (spec.model) ifd0.set(0x0110, { type: 'ascii', value: spec.model });
  if (spec.orientation) ifd0.set(0x0112, { type: 'short', value: [spec.orientation] });
  const exif: Ifd = new Map();
  if (spec.dateTimeOriginal) {
    exif.set(0x9003, { type: 'ascii', value: spec.dateTimeOriginal });
    exif.set(0x9004, { type: 'ascii', value: spec.dateTimeOriginal }); // CreateDate (digitized)
  }
  if (spec.offsetTimeOriginal) exif.set(0x9011, { type: 'ascii', value: spec.offsetTimeOriginal });
  exif.set(0xa002, { type: 'long', value: [spec.width] });
  exif.set(0xa003, { type: 'long', value: [spec.height] });
  if (spec.lens) exif.set(0xa434, { type: 'ascii', value: spec.lens });
  const gps: Ifd = new Map();
  if (spec.gps) {
    gps.set(0x0001, { type: 'ascii', value: spec.gps.latitude < 0 ? 'S' : 'N' });
    gps.set(0x0002, { type: 'rational', value: degreesToRational(spec.gps.latitude) });
    gps.set(0x0003, { type: 'ascii', value: spec.gps.longitude < 0 ? 'W' : 'E' });
    gps.set(0x0004, { type: 'rational', value: degreesToRational(spec.gps.longitude) });
  }
  // Pointer values are 4 bytes inline, so the sizes are known before the offsets.
  ifd0.set(0x8769, { type: 'long', value: [0] });
  if (spec.gps) ifd0.set(0x8825, { type: 'long', value: [0] });
  const ifd0At = 8;
  const exifAt = ifd0At + ifdSize(ifd0);
  const gpsAt = exifAt + ifdSize(exif);
  ifd0.set(0x8769, { type: 'long', value: [exifAt] });
  if (spec.gps) ifd0.set(0x8825, { type: 'long', value: [gpsAt] });
  const header = Buffer.from([0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00]);
  const tiff = Buffer.concat([header, writeIfd(ifd0, ifd0At), writeIfd(exif, exifAt), ...(spec.gps ? [writeIfd(gps, gpsAt)] : [])]);

  const segment = (marker: number, body: Buffer) => {
    const head = Buffer.alloc(4);
    head.writeUInt16BE(0xff00 | marker, 0);
    head.writeUInt16BE(body.length + 2, 2);
    return Buffer.concat([head, body]);
  };
  const app1 = segment(0xe1, Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]));
  const sof = Buffer.alloc(15);
  sof.writeUInt8(8, 0); // precision
  sof.writeUInt16BE(spec.height, 1);
  sof.writeUInt16BE(spec.width, 3);
  sof.writeUInt8(3, 5); // components: id, sampling, table
  Buffer.from([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]).copy(sof, 6);
  const sos = segment(0xda, Buffer.from([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 0x3f, 0]));
  // Filler scan data: no 0xFF, so nothing in it reads as a marker.
  const scan = Buffer.alloc(spec.scanBytes ?? 64, 0x5a);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app1, segment(0xc0, sof), sos, scan, Buffer.from([0xff, 0xd9])]);
}

// ---------------------------------------------------------------- PNG

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A valid RGB PNG of the given size, all black. */
export function makePng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.writeUInt8(8, 8); // bit depth
  ihdr.writeUInt8(2, 9); // truecolour
  const rows = Buffer.alloc(height * (1 + 3 * width)); // each row: filter byte 0, then pixels
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', zlib.deflateSync(rows)), pngChunk('IEND', Buffer.alloc(0))]);
}

// ---------------------------------------------------------------- WAV

/** A PCM WAV of silence: mono, 16-bit, `rate` samples a second, `ms` long. */
export function makeWav(ms: number, rate = 8000): Buffer {
  const samples = Math.round((rate * ms) / 1000);
  const data = Buffer.alloc(samples * 2);
  const head = Buffer.alloc(44);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(36 + data.length, 4);
  head.write('WAVE', 8, 'latin1');
  head.write('fmt ', 12, 'latin1');
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(1, 20); // PCM
  head.writeUInt16LE(1, 22); // channels
  head.writeUInt32LE(rate, 24);
  head.writeUInt32LE(rate * 2, 28); // bytes a second
  head.writeUInt16LE(2, 32); // block align
  head.writeUInt16LE(16, 34); // bits a sample
  head.write('data', 36, 'latin1');
  head.writeUInt32LE(data.length, 40);
  return Buffer.concat([head, data]);
}

// ---------------------------------------------------------------- MP4

function box(type: string, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, body]);
}

const IDENTITY = [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000];
/** The matrix of a quarter turn clockwise, as phones store portrait video. */
const QUARTER_TURN = [0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000];

function matrixBytes(m: readonly number[]): Buffer {
  const b = Buffer.alloc(36);
  m.forEach((v, i) => b.writeInt32BE(v, 4 * i));
  return b;
}

export interface Mp4Spec {
  durationMs: number;
  width: number;
  height: number;
  /** Stored turned a quarter (a portrait phone video). */
  turned?: boolean;
  /** Where moov goes: before the media data (streaming) or after it (as cameras write). */
  moovLast?: boolean;
  mdatBytes?: number;
}

/** An MP4: ftyp, moov (mvhd, one video trak: tkhd, mdia with mdhd and hdlr 'vide'), mdat of filler. */
export function makeMp4(spec: Mp4Spec): Buffer {
  const timescale = 1000;
  const mvhd = Buffer.alloc(100);
  mvhd.writeUInt32BE(timescale, 12);
  mvhd.writeUInt32BE(spec.durationMs, 16);
  mvhd.writeUInt32BE(0x10000, 20); // rate 1.0
  mvhd.writeUInt16BE(0x100, 24); // volume 1.0
  matrixBytes(IDENTITY).copy(mvhd, 36);
  mvhd.writeUInt32BE(2, 96); // next track id
  const tkhd = Buffer.alloc(84);
  tkhd.writeUInt32BE(0x00000003, 0); // version 0, enabled and in movie
  tkhd.writeUInt32BE(1, 12); // track id
  tkhd.writeUInt32BE(spec.durationMs, 20);
  matrixBytes(spec.turned ? QUARTER_TURN : IDENTITY).copy(tkhd, 40);
  tkhd.writeUInt32BE(spec.width * 0x10000, 76);
  tkhd.writeUInt32BE(spec.height * 0x10000, 80);
  const mdhd = Buffer.alloc(24);
  mdhd.writeUInt32BE(timescale, 12);
  mdhd.writeUInt32BE(spec.durationMs, 16);
  mdhd.writeUInt16BE(0x55c4, 20); // language "und"
  const hdlr = Buffer.concat([Buffer.alloc(8), Buffer.from('vide', 'latin1'), Buffer.alloc(12), Buffer.from('VideoHandler\0', 'latin1')]);
  const moov = box('moov', box('mvhd', mvhd), box('trak', box('tkhd', tkhd), box('mdia', box('mdhd', mdhd), box('hdlr', hdlr))));
  const ftyp = box('ftyp', Buffer.from('isom', 'latin1'), Buffer.from([0, 0, 2, 0]), Buffer.from('isomiso2mp41', 'latin1'));
  const mdat = box('mdat', Buffer.alloc(spec.mdatBytes ?? 1024, 0x11));
  return Buffer.concat(spec.moovLast ? [ftyp, mdat, moov] : [ftyp, moov, mdat]);
}
