// What the bytes of one file say: its kind by bytes, its text, its photo, audio or video
// metadata. The thin public face: picks a reader by kind (kind.ts) and shapes its answer.
import { ExtractError } from './extract-error.js';
import { HEAD_BYTES, HTML_EXTENSIONS, detectMime, readerFor, type Reader } from './kind.js';
import { htmlToText } from './markup.js';
import { readMedia } from './media.js';
import { readOffice } from './office.js';
import { readPdf } from './pdf.js';
import { readPhoto } from './photo.js';
import { openRegularFile, readAt, type OpenFile } from './read.js';
import { decodeText, textFields } from './text.js';

export { ExtractError } from './extract-error.js';

export interface Extracted {
  /** The kind the bytes say (MIME type, from file-type), or undefined when they say none (plain text, unknown). */
  mime?: string;
  /** Text of a text-like document, whitespace collapsed, at most maxTextBytes bytes of UTF-8 (cut at a character boundary). */
  text?: string;
  /** Whether text was cut at maxTextBytes (or only the start of the file was read for it). */
  textTruncated?: boolean;
  /** Photo: when it was taken (epoch ms, from EXIF DateTimeOriginal/CreateDate). */
  takenAt?: number;
  /** Photo: camera make and model, e.g. "Apple iPhone 13". */
  camera?: string;
  /** Image or video pixel size (as shown: a photo or video turned a quarter by its metadata is given turned). */
  width?: number;
  height?: number;
  /** Photo: GPS position present. */
  gps?: boolean;
  /** Photo: the GPS position, degrees (south and west negative). */
  latitude?: number;
  longitude?: number;
  /** Audio or video duration in ms. */
  durationMs?: number;
  /** PDF: its number of pages. */
  pages?: number;
  /** Other metadata values a word search should find: title, artist, album, author, subject, lens... (short strings). */
  values?: string[];
}

export interface ExtractOptions {
  /** The most text kept, in UTF-8 bytes. */
  maxTextBytes: number;
}

/**
 * Documents larger than this give their kind but no text. pdf.js and unzip hold the whole
 * file and what they build from it (several times its size) in memory, in a process that
 * also serves a mount; and a document this large is mostly pictures (scans, slides of
 * photos), whose text, if any, is not worth that.
 */
export const DOCUMENT_MAX_BYTES = 64 * 1024 * 1024;
/** A text file is read this many times maxTextBytes at most: room for the markup and whitespace that go. */
const TEXT_READ_FACTOR = 4;

/** What the bytes of one file say. Rejects with ExtractError (message says what failed, e.g. "not a valid PDF: ...") when the file cannot be parsed as what it claims to be. */
export async function extractFile(file: string, ext: string, options: ExtractOptions): Promise<Extracted> {
  const open = await openRegularFile(file);
  try {
    const head = await readAt(open, 0, HEAD_BYTES);
    const mime = await detectMime(head, file);
    const reader = readerFor(mime, ext);
    let found: Extracted = {};
    try {
      if (reader) found = await read(reader, { file, open, head, mime, ext, options });
    } catch (err) {
      throw asExtractError(err, mime, ext);
    }
    return withoutUndefined({ mime, ...found });
  } finally {
    await open.handle.close();
  }
}

interface Source {
  file: string;
  open: OpenFile;
  head: Buffer;
  mime: string | undefined;
  ext: string;
  options: ExtractOptions;
}

async function read(reader: Reader, src: Source): Promise<Extracted> {
  switch (reader) {
    case 'text':
      return readText(src);
    case 'pdf': {
      if (src.open.size > DOCUMENT_MAX_BYTES) return {};
      const pdf = await readPdf(await wholeFile(src), src.options.maxTextBytes);
      return { ...textFields(pdf.text, src.options.maxTextBytes, pdf.stoppedEarly), pages: pdf.pages, ...someValues(pdf.values) };
    }
    case 'office': {
      if (src.open.size > DOCUMENT_MAX_BYTES) return {};
      // Twice maxTextBytes in characters: more than the limit holds even once whitespace collapses.
      const doc = readOffice(await wholeFile(src), src.ext ? src.ext.toUpperCase() : 'office document', 2 * src.options.maxTextBytes);
      return { ...textFields(doc.text, src.options.maxTextBytes, doc.cut), ...someValues(doc.values) };
    }
    case 'photo':
      return readPhoto(src.open, src.head, src.mime, src.file, src.ext);
    case 'media':
      return readMedia(src.open, src.file, src.mime, src.ext);
  }
}

/** A text file's text from at most TEXT_READ_FACTOR × maxTextBytes of its start; none when the bytes look binary. */
async function readText(src: Source): Promise<Extracted> {
  const limit = Math.max(HEAD_BYTES, src.options.maxTextBytes * TEXT_READ_FACTOR);
  const bytes = src.open.size <= src.head.length ? src.head : Buffer.concat([src.head, await readAt(src.open, src.head.length, limit - src.head.length)]);
  const cut = src.open.size > bytes.length;
  const decoded = decodeText(bytes, cut);
  if (decoded === undefined) return {};
  const html = HTML_EXTENSIONS.has(src.ext) || /^\s*<(!doctype html|html)/i.test(decoded.slice(0, 512));
  return textFields(html ? htmlToText(decoded) : decoded, src.options.maxTextBytes, cut);
}

async function wholeFile(src: Source): Promise<Buffer> {
  return src.open.size <= src.head.length ? src.head : readAt(src.open, 0, src.open.size);
}

/**
 * A parser's own failure (a TypeError or RangeError deep in it on bytes it did not expect)
 * is the file's failure to parse: an ExtractError. An errno error (EIO, EACCES) is the
 * file's, not its bytes', and goes through as it is.
 */
function asExtractError(err: unknown, mime: string | undefined, ext: string): Error {
  if (err instanceof ExtractError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (err instanceof Error && typeof code === 'string' && /^E[A-Z]+$/.test(code)) return err;
  return new ExtractError(`could not parse as ${ext ? ext.toUpperCase() : (mime ?? 'its kind')}: ${err instanceof Error ? err.message : String(err)}`);
}

function someValues(values: string[]): { values?: string[] } {
  return values.length ? { values } : {};
}

function withoutUndefined<T extends object>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}
