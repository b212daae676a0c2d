// What a photo's header says: when and with what it was taken, where (whether), its pixel
// size. EXIF through exifr, which reads only the chunks holding it; the size from the header.
import exifr from 'exifr';
import { ExtractError } from './extract-error.js';
import { imagePixelSize } from './image-size.js';
import type { Extracted } from './extract.js';
import type { OpenFile } from './read.js';

/** What a photo's header gives, in the terms of Extracted. */
export type PhotoFacts = Pick<Extracted, 'takenAt' | 'camera' | 'width' | 'height' | 'gps' | 'latitude' | 'longitude' | 'values'>;

/** Formats exifr reads: JPEG, PNG, HEIF/AVIF, and TIFF with the raw formats built on it. */
const EXIF_MIMES = new Set([
  'image/jpeg', 'image/png', 'image/tiff', 'image/heic', 'image/heif', 'image/avif',
  'image/x-canon-cr2', 'image/x-nikon-nef', 'image/x-sony-arw', 'image/x-adobe-dng', 'image/x-olympus-orf', 'image/x-panasonic-rw2',
]);

/**
 * IFD0, EXIF and GPS only (no thumbnail, maker notes, XMP, ICC, IPTC: more reading for
 * nothing searched). Values raw: exifr would turn the dates into Dates in this process's
 * time zone, and we decide that ourselves (exifDate).
 */
const EXIF_OPTIONS = {
  tiff: true, ifd0: {}, exif: true, gps: true, ifd1: false, interop: false, makerNote: false, userComment: false,
  xmp: false, icc: false, iptc: false, jfif: false, ihdr: false,
  translateKeys: true, translateValues: false, reviveValues: false, sanitize: true, mergeOutput: true,
};

/** EXIF text tags a word search should find. */
const VALUE_TAGS = ['LensModel', 'ImageDescription', 'Artist', 'Copyright'] as const;
const VALUE_MAX_CHARS = 200;

/** The photo's facts; an image whose EXIF cannot be read still has its size (the bytes said image). */
export async function readPhoto(file: OpenFile, head: Buffer, mime: string | undefined, fileName: string, ext: string): Promise<PhotoFacts> {
  // file-type knows every image format read here: an image extension on bytes it cannot place is no image.
  if (mime === undefined) throw new ExtractError(`not a valid ${ext.toUpperCase()} image: its bytes are in no image format`);
  const size = await imagePixelSize(file, head, mime);
  const tags = EXIF_MIMES.has(mime) ? await readExif(fileName) : undefined;
  const facts: PhotoFacts = {};
  if (tags) Object.assign(facts, exifFacts(tags));
  const width = size?.width ?? positive(tags?.ExifImageWidth);
  const height = size?.height ?? positive(tags?.ExifImageHeight);
  if (width !== undefined && height !== undefined) {
    // Orientations 5 to 8 turn the picture a quarter: the size a viewer shows is the other way round.
    const turned = typeof tags?.Orientation === 'number' && tags.Orientation >= 5 && tags.Orientation <= 8;
    facts.width = turned ? height : width;
    facts.height = turned ? width : height;
  }
  return facts;
}

type Tags = Record<string, unknown>;

async function readExif(fileName: string): Promise<Tags | undefined> {
  try {
    const tags: unknown = await exifr.parse(fileName, EXIF_OPTIONS);
    return typeof tags === 'object' && tags !== null ? (tags as Tags) : undefined;
  } catch {
    return undefined; // no EXIF or broken EXIF: the image is still an image
  }
}

function exifFacts(tags: Tags): PhotoFacts {
  const facts: PhotoFacts = {};
  const takenAt = exifDate(tags.DateTimeOriginal, tags.OffsetTimeOriginal) ?? exifDate(tags.CreateDate, tags.OffsetTimeDigitized);
  if (takenAt !== undefined) facts.takenAt = takenAt;
  const camera = cameraName(text(tags.Make), text(tags.Model));
  if (camera) facts.camera = camera;
  const lat = tags.latitude;
  const lon = tags.longitude;
  if (typeof lat === 'number' && typeof lon === 'number' && Number.isFinite(lat) && Number.isFinite(lon) && Math.abs(lat) <= 90 && Math.abs(lon) <= 180) {
    facts.gps = true;
    facts.latitude = lat;
    facts.longitude = lon;
  }
  const values = [...new Set(VALUE_TAGS.map((t) => text(tags[t])?.slice(0, VALUE_MAX_CHARS)).filter((v): v is string => !!v))];
  if (values.length) facts.values = values;
  return facts;
}

/**
 * An EXIF date ("2023:05:01 12:34:56") as epoch ms. With its offset tag ("+02:00") it is
 * exact; without one (most cameras) it is the camera's wall clock, taken in this device's
 * time zone, as a person searching "photos of May 1st" reads dates.
 */
export function exifDate(value: unknown, offset: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})/.exec(value.trim());
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  if (year < 1800 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  const o = typeof offset === 'string' ? /^([+-])(\d{2}):(\d{2})$/.exec(offset.trim()) : null;
  if (o) {
    const minutes = (o[1] === '-' ? -1 : 1) * (Number(o[2]) * 60 + Number(o[3]));
    return Date.UTC(year, month - 1, day, hour, minute, second) - minutes * 60_000;
  }
  return new Date(year, month - 1, day, hour, minute, second).getTime();
}

/** "Apple" + "iPhone 13" is "Apple iPhone 13"; "Canon" + "Canon EOS R5" is "Canon EOS R5", not the make twice. */
function cameraName(make: string | undefined, model: string | undefined): string | undefined {
  if (!model) return make;
  if (!make) return model;
  const brand = make.split(/\s+/)[0]!.toLowerCase();
  return model.toLowerCase().startsWith(brand) ? model : `${make} ${model}`;
}

function text(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const clean = value.replace(/\0/g, '').replace(/\s+/g, ' ').trim();
  return clean || undefined;
}

function positive(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}
