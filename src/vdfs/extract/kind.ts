// A file's kind as its bytes say it (file-type's signatures), and which reader that calls
// for: the bytes decide first (a .txt that is a PNG is an image), the extension second.
import { fileTypeFromBuffer, fileTypeFromFile } from 'file-type';

/** Bytes read from the start of a file to tell its kind: what file-type's signatures look at. */
export const HEAD_BYTES = 4100;

/** The readers of extract.ts. */
export type Reader = 'text' | 'pdf' | 'office' | 'photo' | 'media';

const OFFICE_MIMES = new Set([
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.oasis.opendocument.text',
  'application/vnd.oasis.opendocument.spreadsheet',
  'application/vnd.oasis.opendocument.presentation',
]);

/** Media kinds that are not audio/* or video/* (music-metadata reads them). */
const OTHER_MEDIA_MIMES = new Set(['application/ogg', 'application/vnd.ms-asf', 'application/x-matroska']);

/** Extensions whose files are read as text when the bytes name no binary kind. */
export const TEXT_EXTENSIONS = new Set([
  'txt', 'text', 'md', 'markdown', 'mdown', 'mkd', 'rst', 'org', 'adoc', 'asciidoc', 'tex', 'csv', 'tsv', 'log', 'nfo', 'srt', 'vtt',
  'html', 'htm', 'xhtml', 'xml',
]);
export const HTML_EXTENSIONS = new Set(['html', 'htm', 'xhtml', 'xml']);

export const OFFICE_EXTENSIONS = new Set(['docx', 'pptx', 'xlsx', 'odt', 'ods', 'odp']);

/**
 * What an extension claims, read that way when the bytes say nothing: a .pdf of garbage
 * fails as a PDF. (An image extension fails at once, in photo.ts: file-type knows every
 * image format read there, so bytes it cannot place are no image.)
 */
const CLAIMS = new Map<string, Reader>([
  ['pdf', 'pdf'],
  ...[...OFFICE_EXTENSIONS].map((e): [string, Reader] => [e, 'office']),
  ...['jpg', 'jpeg', 'png', 'gif', 'webp', 'heic', 'heif', 'bmp', 'tif', 'tiff', 'avif', 'cr2', 'cr3', 'nef', 'arw', 'dng', 'raf', 'orf', 'rw2'].map((e): [string, Reader] => [e, 'photo']),
  ...['mp3', 'flac', 'wav', 'ogg', 'oga', 'opus', 'm4a', 'aac', 'wma', 'aiff', 'aif', 'mp4', 'm4v', 'mov', 'mkv', 'webm', '3gp'].map((e): [string, Reader] => [e, 'media']),
]);

/**
 * The MIME type the first bytes say, or undefined. A zip is looked at again through the file:
 * which zip it is (docx, odt, epub) is in its entries' headers, which can lie past the head.
 */
export async function detectMime(head: Uint8Array, file: string): Promise<string | undefined> {
  // A detector that trips on malformed bytes says nothing: the extension decides, and its reader judges the bytes.
  const byHead = await fileTypeFromBuffer(head).then((t) => t?.mime, () => undefined);
  if (byHead !== 'application/zip') return byHead;
  return (await fileTypeFromFile(file).then((t) => t?.mime, () => undefined)) ?? byHead;
}

/** The reader for bytes of this kind under this extension; undefined: nothing to read beyond the kind. */
export function readerFor(mime: string | undefined, ext: string): Reader | undefined {
  if (mime === undefined) return CLAIMS.get(ext) ?? (TEXT_EXTENSIONS.has(ext) || ext === '' ? 'text' : undefined);
  if (mime === 'application/pdf') return 'pdf';
  if (OFFICE_MIMES.has(mime) || (mime === 'application/zip' && OFFICE_EXTENSIONS.has(ext))) return 'office';
  if (mime.startsWith('image/')) return 'photo';
  if (mime.startsWith('audio/') || mime.startsWith('video/') || OTHER_MEDIA_MIMES.has(mime)) return 'media';
  // Kinds file-type tells from text itself (<?xml, a vCard): still text to a search.
  if ((mime.startsWith('text/') || mime === 'application/xml') && (TEXT_EXTENSIONS.has(ext) || ext === '')) return 'text';
  return undefined;
}
