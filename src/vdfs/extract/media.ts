// What a recording's headers say: duration, title, artist, album... (music-metadata, which
// reads tags and stream headers by seeking, never a whole file), and a video's picture size.
import { ExtractError } from './extract-error.js';
import { readMp4Boxes } from './mp4-boxes.js';
import type { OpenFile } from './read.js';

export interface MediaFacts {
  durationMs?: number;
  width?: number;
  height?: number;
  values?: string[];
}

/** ISO base media files (MP4, QuickTime, 3GP): their picture size is in tkhd, which music-metadata does not report. */
const ISO_MEDIA = new Set(['video/mp4', 'video/quicktime', 'video/3gpp', 'video/3gpp2', 'video/x-m4v', 'audio/mp4', 'audio/x-m4a']);
const ISO_EXTENSIONS = new Set(['mp4', 'm4v', 'm4a', 'mov', '3gp']);

const VALUE_MAX_CHARS = 200;

/**
 * The recording's facts. Rejects with ExtractError when its bytes cannot be read as the
 * media they are said to be; a kind music-metadata does not read (AVI) gives none.
 */
export async function readMedia(file: OpenFile, fileName: string, mime: string | undefined, ext: string): Promise<MediaFacts> {
  const iso = mime ? ISO_MEDIA.has(mime) : ISO_EXTENSIONS.has(ext);
  const boxes = iso ? await readMp4Boxes(file) : {};
  let facts: MediaFacts;
  try {
    facts = await readTags(fileName, mime);
  } catch (err) {
    const unsupported = err instanceof Error && (err.name === 'UnsupportedFileTypeError' || err.name === 'CouldNotDetermineFileTypeError');
    if (boxes.durationMs !== undefined || (unsupported && mime !== undefined)) facts = {};
    else throw new ExtractError(`not a valid ${ext ? ext.toUpperCase() : mime} file: ${err instanceof Error ? err.message : String(err)}`);
  }
  const out: MediaFacts = { ...facts };
  if (out.durationMs === undefined && boxes.durationMs !== undefined) out.durationMs = boxes.durationMs;
  if (out.width === undefined && boxes.width !== undefined && boxes.height !== undefined) {
    out.width = boxes.width;
    out.height = boxes.height;
  }
  // Bytes no signature names, read only on the extension's word, that give nothing either
  // (some parsers take any bytes without complaint): they are not what the name says.
  if (mime === undefined && Object.keys(out).length === 0) throw new ExtractError(`not a valid ${ext.toUpperCase()} file: no stream or tags found in its bytes`);
  return out;
}

async function readTags(fileName: string, mime: string | undefined): Promise<MediaFacts> {
  const [{ parseFromTokenizer }, { fromFile }] = await Promise.all([import('music-metadata'), import('strtok3')]);
  // The MIME type from the bytes picks the parser; without it music-metadata goes by the extension.
  const tokenizer = await fromFile(fileName, { regularFileOnly: true, ...(mime ? { fileInfo: { mimeType: mime } } : {}) });
  try {
    // duration false: no scan of a whole MP3 without a Xing header to count its frames (its
    // duration is estimated from the bitrate instead). mkvUseIndex: Matroska's SeekHead
    // leads to the tags, rather than reading every cluster of a 4 GB film.
    const { format, common } = await parseFromTokenizer(tokenizer, { duration: false, skipCovers: true, mkvUseIndex: true });
    const facts: MediaFacts = {};
    if (format.duration !== undefined && Number.isFinite(format.duration) && format.duration > 0) facts.durationMs = Math.round(format.duration * 1000);
    const video = format.trackInfo?.find((t) => t.video?.pixelWidth && t.video.pixelHeight)?.video;
    if (video?.pixelWidth && video.pixelHeight) {
      facts.width = video.pixelWidth;
      facts.height = video.pixelHeight;
    }
    const values = [common.title, common.artist, common.albumartist, common.album, ...(common.artists ?? []), ...(common.composer ?? []), ...(common.genre ?? [])]
      .map((v) => v?.replace(/\s+/g, ' ').trim().slice(0, VALUE_MAX_CHARS))
      .filter((v): v is string => !!v);
    if (values.length) facts.values = [...new Set(values)];
    return facts;
  } finally {
    await tokenizer.close();
  }
}
