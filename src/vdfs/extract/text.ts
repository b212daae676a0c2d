// Text as the index keeps it: bytes decoded (UTF-8, a BOM's UTF-16, else Windows-1252, none
// when they look binary), whitespace collapsed to single spaces and line breaks, cut to a size.

/** Control bytes other than tab, line feed, form feed, carriage return and escape: binary when seen. */
function isControl(byte: number): boolean {
  return byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0c && byte !== 0x0d && byte !== 0x1b;
}

/** Bytes looked at to tell text from binary. */
const SNIFF_BYTES = 8192;

/**
 * The text the bytes hold, or undefined when they look binary (a NUL, or more than one in
 * a hundred control bytes, in the first 8 KiB). `cut`: the bytes are a prefix of the file,
 * so a character split at their end is dropped rather than taken for bad UTF-8.
 */
export function decodeText(bytes: Uint8Array, cut: boolean): string | undefined {
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder('utf-16le').decode(bytes.subarray(2, bytes.length - (bytes.length % 2)));
  if (bytes.length >= 2 && bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder('utf-16be').decode(bytes.subarray(2, bytes.length - (bytes.length % 2)));
  const sniff = Math.min(bytes.length, SNIFF_BYTES);
  let controls = 0;
  for (let i = 0; i < sniff; i++) {
    const b = bytes[i]!;
    if (b === 0) return undefined;
    if (isControl(b)) controls++;
  }
  if (controls * 100 > sniff) return undefined;
  try {
    // ignoreBOM false: a UTF-8 BOM is dropped. stream: a trailing partial character waits (and is dropped).
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: cut });
  } catch {
    // Not UTF-8: the old single-byte text of Western systems. WHATWG's "latin1" is Windows-1252,
    // which Latin-1 files decode the same under (it differs only in C1 controls, unused in text).
    return new TextDecoder('windows-1252').decode(bytes);
  }
}

/** Runs of spaces and tabs become one space; line breaks with blank lines between, one line break. */
export function collapseWhitespace(text: string): string {
  // Single spaces, most of any text, are left alone: replacing each with itself took most of the time.
  return text.replace(/[^\S\n]{2,}|[^\S\n ]/g, ' ').replace(/ ?\n\s*/g, '\n').trim();
}

/** At most maxBytes of UTF-8 of text, cut before a character, never inside one. */
export function cutUtf8(text: string, maxBytes: number): { text: string; cut: boolean } {
  // Every UTF-16 unit is at most 3 UTF-8 bytes: short text needs no encoding to know it fits.
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text, 'utf8') <= maxBytes) return { text, cut: false };
  const bytes = Buffer.from(text.slice(0, maxBytes), 'utf8'); // maxBytes units hold at least maxBytes bytes
  let end = Math.max(0, maxBytes);
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // back to a character's first byte
  return { text: bytes.toString('utf8', 0, end), cut: true };
}

/** The text fields of an extract: collapsed, cut, and absent when nothing is left. */
export function textFields(raw: string, maxTextBytes: number, alreadyCut: boolean): { text?: string; textTruncated?: boolean } {
  const { text, cut } = cutUtf8(collapseWhitespace(raw), maxTextBytes);
  const truncated = cut || alreadyCut;
  return { ...(text ? { text } : {}), ...(truncated ? { textTruncated: true } : {}) };
}
