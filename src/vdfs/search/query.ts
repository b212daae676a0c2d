// Parses a search query: plain words (matched against names, prefix-wise) and filters
// kind:, ext:, size:, modified:, in:. Pure: text in, a structured query out.
import { SdError } from '../../errors.js';

export type Comparison = '>' | '>=' | '<' | '<=' | '=';

export interface SearchQuery {
  words: string[];
  kinds: string[];
  extensions: string[];
  sizes: Array<{ op: Comparison; bytes: number }>;
  modified: Array<{ op: Comparison; ms: number }>;
  locations: string[];
}

/** File categories a `kind:` filter knows, by extension. */
export const KIND_EXTENSIONS: Record<string, readonly string[]> = {
  image: ['jpg', 'jpeg', 'png', 'gif', 'webp', 'heic', 'heif', 'bmp', 'tif', 'tiff', 'svg', 'raw', 'cr2', 'nef', 'arw', 'dng', 'avif'],
  video: ['mp4', 'mkv', 'mov', 'avi', 'webm', 'm4v', 'wmv', 'flv', 'mpg', 'mpeg', 'm2ts', 'mts', '3gp'],
  audio: ['mp3', 'flac', 'wav', 'ogg', 'm4a', 'aac', 'opus', 'wma', 'aiff'],
  document: ['pdf', 'doc', 'docx', 'odt', 'txt', 'md', 'rtf', 'xls', 'xlsx', 'ods', 'ppt', 'pptx', 'odp', 'csv', 'epub', 'pages', 'key', 'numbers'],
  archive: ['zip', 'tar', 'gz', 'tgz', 'bz2', 'xz', '7z', 'rar', 'zst', 'iso', 'dmg'],
  code: ['js', 'mjs', 'ts', 'tsx', 'jsx', 'py', 'rs', 'go', 'c', 'h', 'cpp', 'hpp', 'java', 'kt', 'rb', 'sh', 'json', 'yaml', 'yml', 'toml', 'html', 'css', 'sql'],
};
export const ENTRY_KINDS: Record<string, string> = { file: 'file', dir: 'dir', folder: 'dir', directory: 'dir', symlink: 'symlink', link: 'symlink' };

const UNIT_POWER: Record<string, number> = { '': 0, k: 1, m: 2, g: 3, t: 4, p: 5 };

export function parseSizeFilter(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmgtp]?)(i?)b?$/i.exec(text);
  if (!m) throw new SdError('USAGE', `size filter '${text}' is not a size; write e.g. size:>100MB or size:<4KiB`);
  return Math.round(Number(m[1]) * (m[3] ? 1024 : 1000) ** UNIT_POWER[m[2]!.toLowerCase()]!);
}

/** A date (2025-01-01, full ISO) or an age (7d, 12h, 30m ago) as epoch ms. */
export function parseDateFilter(text: string, now = Date.now()): number {
  const age = /^(\d+)([dhmw])$/.exec(text);
  if (age) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[age[2] as 'm' | 'h' | 'd' | 'w'];
    return now - Number(age[1]) * unit;
  }
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}(-\d{2})?/.test(text) || Number.isNaN(ms)) {
    throw new SdError('USAGE', `date filter '${text}' is not a date; write e.g. modified:<2025-01-01 or modified:>7d (last 7 days)`);
  }
  return ms;
}

function splitComparison(value: string): { op: Comparison; rest: string } {
  const m = /^(>=|<=|>|<|=)?(.*)$/.exec(value)!;
  return { op: (m[1] as Comparison | undefined) ?? '=', rest: m[2]! };
}

export function parseQuery(text: string): SearchQuery {
  const q: SearchQuery = { words: [], kinds: [], extensions: [], sizes: [], modified: [], locations: [] };
  for (const token of text.split(/\s+/).filter(Boolean)) {
    const filter = /^(kind|ext|size|modified|in):(.+)$/i.exec(token);
    if (!filter) {
      q.words.push(token);
      continue;
    }
    const key = filter[1]!.toLowerCase();
    const value = filter[2]!;
    if (key === 'kind') {
      const kind = value.toLowerCase();
      if (!(kind in KIND_EXTENSIONS) && !(kind in ENTRY_KINDS)) {
        throw new SdError('USAGE', `unknown kind '${value}'; kinds: ${[...Object.keys(ENTRY_KINDS), ...Object.keys(KIND_EXTENSIONS)].join(', ')}`);
      }
      q.kinds.push(kind);
    } else if (key === 'ext') {
      q.extensions.push(...value.toLowerCase().replace(/^\./, '').split(','));
    } else if (key === 'size') {
      const { op, rest } = splitComparison(value);
      q.sizes.push({ op, bytes: parseSizeFilter(rest) });
    } else if (key === 'modified') {
      const { op, rest } = splitComparison(value);
      // An age reads naturally as "newer than": modified:<7d and modified:>7d keep their date meaning.
      q.modified.push({ op, ms: parseDateFilter(rest) });
    } else {
      q.locations.push(value);
    }
  }
  return q;
}

/** The FTS5 expression for the words: every word must start a token of the name. */
export function ftsExpression(words: readonly string[]): string | undefined {
  const terms = words
    .map((w) => w.replace(/"/g, '').trim())
    .filter((w) => /[\p{L}\p{N}]/u.test(w))
    .map((w) => `"${w}"*`);
  return terms.length ? terms.join(' ') : undefined;
}
