// The structured search query, and its text form: plain words (matched against names,
// prefix-wise) and filters kind:, ext:, size:, modified:, in:, on:, tag:, and -word. Pure:
// text in, a structured query out. plain.ts turns a sentence into the same structure.
import { SdError } from '../../errors.js';
import { KIND_EXTENSIONS } from '../kinds.js';

export type Comparison = '>' | '>=' | '<' | '<=' | '=';

export interface SearchQuery {
  /** Each must start a word of the name. */
  words: string[];
  /** For each group, one of its words (whole, or its plural) must (a topic: tax → tax, 1040, w-2...). */
  anyOf: string[][];
  /** None of these may. */
  without: string[];
  /** Kinds (image, document, dir...) or, from a plain sentence, extensions: either matches. */
  kinds: string[];
  kindExtensions: string[];
  notKinds: string[];
  /** ext: filters: one of these, on top of the kinds. */
  extensions: string[];
  sizes: Array<{ op: Comparison; bytes: number }>;
  modified: Array<{ op: Comparison; ms: number }>;
  /** When a photo was taken (its EXIF date, from extraction). */
  taken: Array<{ op: Comparison; ms: number }>;
  /** How long a recording or video plays (from extraction). */
  durations: Array<{ op: Comparison; ms: number }>;
  /** Devices holding the content (1: this file has no copy on another device). */
  copies: Array<{ op: Comparison; n: number }>;
  /** Content the Data Guardian counts at risk (fewer counting copies than its policy wants). */
  atRisk: boolean;
  /** Location names (any device's): in one of them. */
  locations: string[];
  /** Folder names: below a folder so named. */
  folders: string[];
  /** Device names: on one of them. */
  devices: string[];
  /** Device names: content held on these and on no other device. */
  onlyOn: string[];
  /** Device names: content held on none of these. */
  notOn: string[];
  tags: string[];
}

export function emptyQuery(): SearchQuery {
  return { words: [], anyOf: [], without: [], kinds: [], kindExtensions: [], notKinds: [], extensions: [], sizes: [], modified: [], taken: [], durations: [], copies: [], atRisk: false, locations: [], folders: [], devices: [], onlyOn: [], notOn: [], tags: [] };
}

/** Whether a query asks for anything at all. */
export function isEmptyQuery(q: SearchQuery): boolean {
  return Object.values(q).every((v) => v === false || (Array.isArray(v) && v.length === 0));
}

export { KIND_EXTENSIONS } from '../kinds.js';
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

const DURATION_UNIT_MS: Record<string, number> = { '': 1000, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 };

/** A length of play: 90 or 90s (seconds), 10m or 10min, 1.5h; as ms. */
export function parseDurationFilter(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|min|h)?$/i.exec(text);
  if (!m) throw new SdError('USAGE', `duration filter '${text}' is not a length; write e.g. duration:>10m, duration:<90s or duration:>1.5h`);
  return Math.round(Number(m[1]) * DURATION_UNIT_MS[(m[2] ?? '').toLowerCase()]!);
}

function splitComparison(value: string): { op: Comparison; rest: string } {
  const m = /^(>=|<=|>|<|=)?(.*)$/.exec(value)!;
  return { op: (m[1] as Comparison | undefined) ?? '=', rest: m[2]! };
}

/**
 * Why there is no created: filter. A file's creation (birth) time is when its inode was
 * made on that disk: a copy, a sync, a restore or a download makes it new, so the same
 * bytes have a different one on each device. The time of the last change travels with
 * copies (cp -p, rsync -t, sdfs's own), and a photo's EXIF date with its bytes.
 */
export const CREATED_NOTE = 'creation times are not kept (each copy and device has its own); the date of the last change stands in (modified:), and taken: is when a photo was taken';

const FILTER = /^(kind|ext|size|modified|created|taken|duration|copies|is|in|on|device|tag):(.+)$/i;

/** Whether a token is a filter (kind:x, size:>1MB, ...) or an excluded word (-draft). */
export function isFilterToken(token: string): boolean {
  return FILTER.test(token) || /^-[\p{L}\p{N}]/u.test(token);
}

/** Adds one filter token to q (see isFilterToken); a bad value is a USAGE error. */
export function addFilterToken(q: SearchQuery, token: string): void {
  if (token.startsWith('-')) {
    q.without.push(token.slice(1));
    return;
  }
  const filter = FILTER.exec(token)!;
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
  } else if (key === 'created') {
    throw new SdError('USAGE', `created:${value}: ${CREATED_NOTE}`);
  } else if (key === 'taken') {
    const { op, rest } = splitComparison(value);
    q.taken.push({ op, ms: parseDateFilter(rest) });
  } else if (key === 'duration') {
    const { op, rest } = splitComparison(value);
    q.durations.push({ op, ms: parseDurationFilter(rest) });
  } else if (key === 'copies') {
    const { op, rest } = splitComparison(value);
    if (!/^\d+$/.test(rest)) throw new SdError('USAGE', `copies filter '${value}' is not a number of copies; write e.g. copies:1 or copies:<2`);
    q.copies.push({ op, n: Number(rest) });
  } else if (key === 'is') {
    if (value.toLowerCase() !== 'at-risk') throw new SdError('USAGE', `is:${value} is not known; is:at-risk finds files the Data Guardian counts at risk`);
    q.atRisk = true;
  } else if (key === 'in') {
    q.locations.push(value);
  } else if (key === 'tag') {
    q.tags.push(value);
  } else {
    q.devices.push(value);
  }
}

export function parseQuery(text: string): SearchQuery {
  const q = emptyQuery();
  for (const token of text.split(/\s+/).filter(Boolean)) {
    if (isFilterToken(token)) addFilterToken(q, token);
    else q.words.push(token);
  }
  return q;
}

/** Words as one FTS5 phrase, whole (quotes in them dropped): a name as the name index holds it. */
export function ftsPhrase(words: string): string {
  return `"${words.replace(/"/g, ' ').trim()}"`;
}

/** A word as FTS5 matches it: a phrase of its tokens, the last one a prefix unless `exact`; undefined when it has no letter or digit. */
function ftsTerm(word: string, exact = false): string | undefined {
  const phrase = ftsPhrase(word);
  return /[\p{L}\p{N}]/u.test(phrase) ? `${phrase}${exact ? '' : '*'}` : undefined;
}

/** A word and its plural, as whole words (invoice, invoices; tax, taxes; copy, copies). */
function withPlural(word: string): string[] {
  if (!/\p{L}$/u.test(word)) return [word];
  if (/(x|ch|sh|s)$/.test(word)) return [word, `${word}es`];
  if (/[^aeiou]y$/.test(word)) return [word, `${word.slice(0, -1)}ies`];
  return [word, `${word}s`];
}

/**
 * Forms of a typed word that should match it: itself, and split where letters meet digits
 * (w2 → "w 2", which matches W-2) or joined where it was split (w-2 → w2).
 */
export function wordForms(word: string): string[] {
  const forms = new Set([word]);
  const split = word.replace(/(\p{L})(?=\p{N})|(\p{N})(?=\p{L})/gu, '$1$2 ');
  if (split !== word) forms.add(split);
  const joined = word.replace(/[^\p{L}\p{N}]+/gu, '');
  if (joined !== word && joined.length > 0) forms.add(joined);
  return [...forms];
}

/**
 * The FTS5 expression for the query's words: every word (in any of its forms) and one
 * word of every group must start a word of the name, and none of `without`; a word of
 * punctuation only is left out; undefined when no word is left to match.
 */
export function ftsExpression(q: Pick<SearchQuery, 'words' | 'anyOf' | 'without'>): string | undefined {
  const any = (words: readonly string[], exact = false) => {
    // A typed word is a prefix; its split form (w2 → "w 2") is whole, or "2" would take in every number starting with 2.
    const forms = words.flatMap((w) => wordForms(w).map((form, i) => ({ form, exact: exact || (i > 0 && /\s/.test(form)) })));
    const all = exact ? forms.flatMap((f) => withPlural(f.form).map((form) => ({ form, exact: true }))) : forms;
    const terms = [...new Set(all.map((f) => ftsTerm(f.form, f.exact)).filter((x): x is string => x !== undefined))];
    return terms.length === 0 ? undefined : terms.length === 1 ? terms[0]! : `(${terms.join(' OR ')})`;
  };
  // A group's words (a topic's) are whole words and their plurals: a dozen prefixes would
  // each be expanded over the index (measured: 23 ms for the tax group at 1M names, 0.7 ms so).
  const positive = [...q.words.map((w) => any([w])), ...q.anyOf.map((g) => any(g, true))].filter((p): p is string => p !== undefined);
  if (positive.length === 0) return undefined;
  const negative = any(q.without);
  return negative ? `(${positive.join(' AND ')}) NOT ${negative}` : positive.join(' AND ');
}

/** The FTS5 expression of words none of which may match (for a query with no positive word). */
export function ftsAny(words: readonly string[]): string | undefined {
  const terms = [...new Set(words.flatMap(wordForms))].map((w) => ftsTerm(w)).filter((x): x is string => x !== undefined);
  return terms.length ? terms.join(' OR ') : undefined;
}
