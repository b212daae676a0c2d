// A plain-language search ("tax documents from last year", "videos over 1 GB from last
// week on nas", "photos of 2024 only on my phone") turned into the structured query, all
// locally and without a model: sizes, dates (rules for the relative forms and for calendar
// dates), devices, locations, folders and tags named as the library names them,
// negation, "only on", and the vocabulary of kinds and topics. What is left are words.
// Each part it understood is said in `notes` (sd search --explain).
import { SdError } from '../../errors.js';
import { CREATED_NOTE, addFilterToken, emptyQuery, isEmptyQuery, isFilterToken, parseSizeFilter, type Comparison, type SearchQuery } from './query.js';
import { KIND_WORDS, STOP_WORDS, TOPIC_WORDS, singular, stem } from './vocabulary.js';

/** Longer than this is not a query (refused at once, never slow). */
export const MAX_QUERY_CHARS = 1000;

/** What the parser may know of the library: names it can recognise in a sentence. */
export interface PlainContext {
  now: number;
  /** Devices by slug and name (the local one marked). */
  devices: ReadonlyArray<{ slug: string; name: string; local: boolean }>;
  locations: readonly string[];
  tags: readonly string[];
  /** Whether some folder (of any device) has this name. */
  folderExists(name: string): boolean;
}

export interface ParsedSearch {
  query: SearchQuery;
  /** What each recognised part meant, in order ("last year → modified 2025-01-01 .. 2025-12-31"). */
  notes: string[];
}

const DAY = 86_400_000;
const UNIT_MS: Record<string, number> = { second: 1000, minute: 60_000, hour: 3_600_000, day: DAY, week: 7 * DAY, month: 30.44 * DAY, year: 365.25 * DAY };
const NUMBER_WORDS: Record<string, number> = { a: 1, an: 1, one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10, twelve: 12, few: 3, couple: 2 };
const NUM = '(\\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|twelve|a few|a couple of)';
const UNIT = '(minute|hour|day|week|month|year)s?';
const SIZE = '(\\d+(?:\\.\\d+)?)\\s*([kmgtp]?)(i?)b(?:ytes?)?';
const MONTHS = 'jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?';

function count(text: string): number {
  const t = text.replace(/^a (few|couple of)$/, '$1');
  return NUMBER_WORDS[t] ?? Number(t);
}

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Start of the calendar day / week (Monday) / month / year holding `ms`, in local time. */
function startOf(ms: number, unit: 'day' | 'week' | 'month' | 'year'): Date {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  if (unit === 'week') d.setDate(d.getDate() - ((d.getDay() + 6) % 7));
  if (unit === 'month') d.setDate(1);
  if (unit === 'year') d.setMonth(0, 1);
  return d;
}

function shift(d: Date, unit: 'day' | 'week' | 'month' | 'year', n: number): Date {
  const r = new Date(d);
  if (unit === 'day') r.setDate(r.getDate() + n);
  else if (unit === 'week') r.setDate(r.getDate() + 7 * n);
  else if (unit === 'month') r.setMonth(r.getMonth() + n);
  else r.setFullYear(r.getFullYear() + n);
  return r;
}

class Sentence {
  /** The sentence in lower case, with what was understood blanked out. */
  text: string;
  readonly q = emptyQuery();
  readonly notes: string[] = [];
  /** Which date the sentence's dates are about: a photo's "taken in 2024" is its EXIF date. */
  dateField: 'modified' | 'taken' = 'modified';

  constructor(
    readonly original: string,
    readonly ctx: PlainContext,
  ) {
    this.text = ` ${original.toLowerCase().replace(/[’‘]/g, "'")} `;
  }

  /** Applies `rule` to every match of `re` (global) that it accepts (returns true), blanking those. */
  take(re: RegExp, rule: (m: RegExpExecArray) => boolean): void {
    const out: string[] = [];
    let last = 0;
    for (const m of this.text.matchAll(re)) {
      if (!rule(m as RegExpExecArray)) continue;
      out.push(this.text.slice(last, m.index), ' '.repeat(m[0].length));
      last = m.index! + m[0].length;
    }
    out.push(this.text.slice(last));
    this.text = out.join('');
  }

  modifiedBetween(from: number | undefined, to: number | undefined, said: string): void {
    const field = this.q[this.dateField];
    if (from !== undefined) field.push({ op: '>=', ms: from });
    if (to !== undefined) field.push({ op: '<', ms: to });
    this.notes.push(`${said.trim()} → ${this.dateField} ${from !== undefined ? day(from) : '…'} .. ${to !== undefined ? day(to - 1) : 'now'}`);
  }

  device(name: string): { slug: string; name: string; local: boolean } | undefined {
    if (/^(this|here|local)$/.test(name)) return this.ctx.devices.find((d) => d.local);
    const exact = this.ctx.devices.find((d) => d.slug.toLowerCase() === name || d.name.toLowerCase() === name);
    if (exact) return exact;
    const byWord = this.ctx.devices.filter((d) => d.name.toLowerCase().split(/[^\p{L}\p{N}]+/u).includes(name));
    return byWord.length === 1 ? byWord[0] : undefined;
  }
}

export function parsePlain(text: string, ctx: PlainContext): ParsedSearch {
  if (text.length > MAX_QUERY_CHARS) throw new SdError('USAGE', `a query of ${text.length} characters is too long (at most ${MAX_QUERY_CHARS})`);
  const s = new Sentence(text, ctx);
  filters(s);
  phrases(s);
  sizes(s);
  // A folder or location of two words (taxes 2025) before dates take its year; then dates
  // (in 2024 is a year even where a folder is named 2024), then single-word places.
  places(s, 2);
  copies(s);
  mediaWords(s);
  dates(s);
  places(s, 1);
  words(s);
  if (isEmptyQuery(s.q)) throw new SdError('USAGE', `'${text.trim()}': nothing to search for in it (no word, kind, size, date, device, location or tag it could use)`);
  return { query: s.q, notes: s.notes };
}

/** kind:, size:, in:, on:, tag:, -word: as sd search always took them. */
function filters(s: Sentence): void {
  s.take(/(?<=\s)\S+(?=\s)/g, (m) => {
    const token = s.original.slice(m.index - 1, m.index - 1 + m[0].length);
    if (!isFilterToken(token)) return false;
    addFilterToken(s.q, token);
    s.notes.push(`${token} → filter`);
    return true;
  });
}

/** "quoted words" are one phrase. */
function phrases(s: Sentence): void {
  s.take(/"([^"]+)"/g, (m) => {
    s.q.words.push(m[1]!.trim());
    s.notes.push(`"${m[1]}" → the phrase`);
    return true;
  });
}

function sizes(s: Sentence): void {
  const bytes = (m: RegExpExecArray, at: number) => parseSizeFilter(`${m[at]}${m[at + 1]}${m[at + 2]}b`);
  s.take(new RegExp(`\\b(over|above|more than|bigger than|larger than|greater than|at least|>=?)\\s*${SIZE}\\b`, 'g'), (m) => {
    s.q.sizes.push({ op: m[1] === 'at least' || m[1] === '>=' ? '>=' : '>', bytes: bytes(m, 2) });
    s.notes.push(`${m[0].trim()} → size ${m[1] === 'at least' ? '≥' : '>'} ${bytes(m, 2)} bytes`);
    return true;
  });
  s.take(new RegExp(`\\b(under|below|less than|smaller than|at most|<=?)\\s*${SIZE}\\b`, 'g'), (m) => {
    s.q.sizes.push({ op: m[1] === 'at most' || m[1] === '<=' ? '<=' : '<', bytes: bytes(m, 2) });
    s.notes.push(`${m[0].trim()} → size ${m[1] === 'at most' ? '≤' : '<'} ${bytes(m, 2)} bytes`);
    return true;
  });
  for (const [re, op, n, what] of [
    [/\b(huge|enormous|giant)\b/g, '>=', 1e9, '1 GB'],
    [/\b(big|large|biggest|largest)\b/g, '>=', 1e8, '100 MB'],
    [/\b(small|tiny|smallest)\b/g, '<', 1e6, '1 MB'],
  ] as const) {
    s.take(re, (m) => {
      s.q.sizes.push({ op, bytes: n });
      s.notes.push(`${m[0]} → size ${op === '>=' ? '≥' : '<'} ${what}`);
      return true;
    });
  }
}

/** How a sentence compares a count or a length ("fewer than 2 copies", "longer than 10 minutes"). */
const COMPARING: Record<string, Comparison> = {
  'fewer than': '<', 'less than': '<', under: '<', 'shorter than': '<', 'at most': '<=',
  'more than': '>', over: '>', 'longer than': '>', 'at least': '>=',
};

/** The Data Guardian's words: at risk, only one copy, fewer than N copies, N copies. */
function copies(s: Sentence): void {
  s.take(/\bat[\s-]+risk\b/g, () => {
    s.q.atRisk = true;
    s.notes.push('at risk → fewer copies than the Data Guardian wants');
    return true;
  });
  s.take(/\b(?:(?:with\s+)?(?:only|just)\s+(?:one|1|a single)\s+cop(?:y|ies)|(?:with\s+)?(?:a\s+)?single\s+cop(?:y|ies)|(?:with\s+)?no\s+(?:other\s+)?(?:cop(?:y|ies)|backups?)|not\s+backed\s+up)\b/g, (m) => {
    s.q.copies.push({ op: '=', n: 1 });
    s.notes.push(`${m[0].trim()} → on one device only (no copy on another)`);
    return true;
  });
  s.take(new RegExp(`\\b(?:with\\s+)?(fewer than|less than|under|at least|more than|over)?\\s*${NUM}\\s+cop(?:y|ies)\\b`, 'g'), (m) => {
    const n = count(m[2]!);
    const op = COMPARING[m[1] ?? ''] ?? '>=';
    s.q.copies.push({ op, n });
    s.notes.push(`${m[0].trim()} → on ${op === '>=' ? 'at least ' : op === '<' ? 'fewer than ' : 'more than '}${n} device${n === 1 ? '' : 's'}`);
    return true;
  });
}

/** What extraction knows: how long a recording plays, when a photo was taken (and "created", which no one knows). */
function mediaWords(s: Sentence): void {
  // "videos longer than 10 minutes", "songs under 3 minutes": how long they play.
  s.take(new RegExp(`\\b(longer than|over|more than|at least|shorter than|under|less than|at most)\\s+${NUM}\\s+(second|minute|hour)s?(?:\\s+long)?\\b`, 'g'), (m) => {
    const ms = count(m[2]!) * UNIT_MS[m[3]!]!;
    const op = COMPARING[m[1]!]!;
    s.q.durations.push({ op, ms });
    s.notes.push(`${m[0].trim()} → plays ${op} ${ms / 1000} s`);
    return true;
  });
  // "taken in 2024", "photos shot last summer": the dates that follow are when a photo was taken.
  s.take(/\b(?:taken|shot|photographed|captured)\b/g, () => {
    s.dateField = 'taken';
    return true;
  });
  // No creation time is kept (see CREATED_NOTE): "created in 2024" is read as changed in it.
  s.take(/\b(?:created|made|written|authored)\b(?=\s+(?:in|on|before|after|since|during|last|this|today|yesterday|\d))/g, (m) => {
    s.notes.push(`${m[0]} → ${CREATED_NOTE}`);
    return true;
  });
}

function dates(s: Sentence): void {
  const now = s.ctx.now;
  const ago = (n: number, unit: string) => now - n * UNIT_MS[unit]!;
  // "haven't touched in 2 years", "not opened for a month": not modified since.
  s.take(new RegExp(`\\b(?:i\\s+)?(?:haven'?t|have not|hasn'?t|has not|not|never)\\s+(?:been\\s+)?(?:touched|modified|changed|edited|opened|used|looked at|updated)\\s+(?:in|for|since)\\s+(?:the\\s+(?:last|past)\\s+)?${NUM}\\s+${UNIT}\\b`, 'g'), (m) => {
    s.modifiedBetween(undefined, ago(count(m[1]!), m[2]!), m[0]);
    return true;
  });
  s.take(new RegExp(`\\bolder than\\s+${NUM}\\s+${UNIT}\\b`, 'g'), (m) => {
    s.modifiedBetween(undefined, ago(count(m[1]!), m[2]!), m[0]);
    return true;
  });
  s.take(new RegExp(`\\b(?:newer than|(?:from |in |within |over |during )?the (?:last|past))\\s+(?:${NUM}\\s+)?${UNIT}\\b`, 'g'), (m) => {
    s.modifiedBetween(ago(m[1] ? count(m[1]) : 1, m[2]!), undefined, m[0]);
    return true;
  });
  s.take(new RegExp(`\\b${NUM}\\s+${UNIT}\\s+ago\\b`, 'g'), (m) => {
    const n = count(m[1]!);
    const unit = UNIT_MS[m[2]!]!;
    s.modifiedBetween(now - (n + 0.5) * unit, now - (n - 0.5) * unit, m[0]);
    return true;
  });
  // Calendar periods: last year (all of 2025), this month, last week, today, yesterday.
  s.take(/\b(?:(?:from|in|of|during)\s+)?(last|this|previous|past)\s+(week|month|year)\b/g, (m) => {
    const unit = m[2] as 'week' | 'month' | 'year';
    const start = startOf(now, unit);
    if (m[1] === 'this') s.modifiedBetween(start.getTime(), undefined, m[0]);
    else s.modifiedBetween(shift(start, unit, -1).getTime(), start.getTime(), m[0]);
    return true;
  });
  s.take(/\b(?:(?:from|of|on)\s+)?(today|yesterday)\b/g, (m) => {
    const start = shift(startOf(now, 'day'), 'day', m[1] === 'today' ? 0 : -1);
    s.modifiedBetween(start.getTime(), shift(start, 'day', 1).getTime(), m[0]);
    return true;
  });
  // A month, with or without its year (march 2024, in march: the last march).
  s.take(new RegExp(`\\b(?:(before|after|since|until|from|in|of|during)\\s+)?((?:${MONTHS})(?:\\s+\\d{1,2}(?:st|nd|rd|th)?)?(?:,?\\s+(?:19|20)\\d\\d)?)\\b`, 'g'), (m) => {
    const period = monthPeriod(m[2]!, now);
    if (!period) return false;
    dateRange(s, m[1], period.start, period.end, m[0]);
    return true;
  });
  // A year: in 2024 (all of it), before 2023, since 2020.
  s.take(/\b(?:(before|after|since|until|from|in|of|during)\s+)?((?:19|20)\d\d)\b/g, (m) => {
    const start = new Date(Number(m[2]), 0, 1);
    dateRange(s, m[1], start, shift(start, 'year', 1), m[0]);
    return true;
  });
}

const MONTH_INDEX: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };

/**
 * The period a month names ("march", "mar 5th", "june 2024", "march 5, 2024"): that day,
 * or that month; without a year, the last one that has begun. Undefined when it names no
 * date: a day its month lacks, or a short name alone ("mar", "dec": words). These are
 * chrono-node's readings, which test/search-months pins against it over every form and
 * day; chrono itself took 60–250 ms on its first use in a process (its parsers' patterns),
 * which every sd search naming a month is.
 */
export function monthPeriod(text: string, now: number): { start: Date; end: Date } | undefined {
  const m = /^([a-z]+)(?:\s+(\d{1,2})(st|nd|rd|th)?)?(?:,?\s+((?:19|20)\d\d))?$/.exec(text);
  const month = m ? MONTH_INDEX[m[1]!.slice(0, 3)] : undefined;
  if (!m || month === undefined) return undefined;
  const [, name, dayText, suffix, yearText] = m;
  if (!dayText && !yearText && name!.length <= 3 && name !== 'may') return undefined;
  // No day is above 31: a bare number that is, with no year after it, is a year of two
  // digits (march 32 is March 2032, march 99 March 1999), as chrono reads it.
  if (dayText && !suffix && !yearText && Number(dayText) > 31) {
    const n = Number(dayText);
    const start = new Date(n > 50 ? 1900 + n : 2000 + n, month, 1);
    return { start, end: shift(start, 'month', 1) };
  }
  const unit = dayText ? 'day' : 'month';
  const day = dayText ? Number(dayText) : 1;
  let start = new Date(yearText ? Number(yearText) : new Date(now).getFullYear(), month, day);
  if (day < 1 || start.getMonth() !== month) return undefined;
  if (!yearText && start.getTime() > now) start = shift(start, 'year', -1);
  return { start, end: shift(start, unit, 1) };
}

/** A period named with a preposition: before it, after it, since its start, until its end, or within it. */
function dateRange(s: Sentence, preposition: string | undefined, start: Date, end: Date, said: string): void {
  if (preposition === 'before') s.modifiedBetween(undefined, start.getTime(), said);
  else if (preposition === 'after') s.modifiedBetween(end.getTime(), undefined, said);
  else if (preposition === 'since') s.modifiedBetween(start.getTime(), undefined, said);
  else if (preposition === 'until') s.modifiedBetween(undefined, end.getTime(), said);
  else s.modifiedBetween(start.getTime(), end.getTime(), said);
}

/** Devices, locations, folders and tags, by the names the library has; names of `words` words (devices and tags with 1). */
function places(s: Sentence, words: 1 | 2): void {
  const opt = '(?:my\\s+|the\\s+|this\\s+)?';
  if (words === 2) return placesNamed(s, 2, opt);
  s.take(new RegExp(`\\bonly\\s+(?:on|in|at|from)\\s+${opt}([\\p{L}\\p{N}_.-]+)`, 'gu'), (m) => {
    const device = s.device(m[1]!);
    if (!device) return false;
    s.q.onlyOn.push(device.slug);
    s.notes.push(`${m[0].trim()} → only on device ${device.slug} (no copy on another)`);
    return true;
  });
  s.take(new RegExp(`\\b(?:not|never)\\s+(?:on|in|at|from)\\s+${opt}([\\p{L}\\p{N}_.-]+)`, 'gu'), (m) => {
    const device = s.device(m[1]!);
    if (!device) return false;
    s.q.notOn.push(device.slug);
    s.notes.push(`${m[0].trim()} → no copy on device ${device.slug}`);
    return true;
  });
  s.take(new RegExp(`\\b(?:on|from|at|in)\\s+${opt}([\\p{L}\\p{N}_.-]+)(?:\\s+(?:device|computer|machine|drive))?`, 'gu'), (m) => {
    const device = s.device(m[1]!);
    if (!device) return false;
    s.q.devices.push(device.slug);
    s.notes.push(`${m[0].trim()} → on device ${device.slug}`);
    return true;
  });
  placesNamed(s, 1, opt);
  s.take(/\b(?:tagged|labelled|labeled|marked)\s+(?:as\s+|with\s+)?#?([\p{L}\p{N}_.-]+)|(?<=\s)#([\p{L}\p{N}_.-]+)/gu, (m) => {
    const said = m[1] ?? m[2]!;
    const tag = s.ctx.tags.find((t) => t.toLowerCase() === said) ?? said;
    s.q.tags.push(tag);
    s.notes.push(`${m[0].trim()} → tag ${tag}`);
    return true;
  });
}

/** in <location or folder>, a name of `words` words: a location's name, else a folder's that some device has. */
function placesNamed(s: Sentence, words: 1 | 2, opt: string): void {
  const name = Array.from({ length: words }, () => "([\\p{L}\\p{N}_.'-]+)").join('\\s+');
  s.take(new RegExp(`\\b(?:in|inside|under|within|from)\\s+${opt}${name}(?:\\s+(?:folder|directory|location))?`, 'gu'), (m) => {
    const said = m.slice(1, 1 + words).join(' ');
    const original = s.original.match(new RegExp(said.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i'))?.[0] ?? said;
    const location = s.ctx.locations.find((l) => l.toLowerCase() === said);
    if (location) {
      s.q.locations.push(location);
      s.notes.push(`${m[0].trim()} → in location ${location}`);
      return true;
    }
    if (!s.ctx.folderExists(original)) return false;
    s.q.folders.push(original);
    s.notes.push(`${m[0].trim()} → below folders named ${original}`);
    return true;
  });
}

/** What is left: negations, kinds, topics and words; stop words are dropped. */
function words(s: Sentence): void {
  let negate = false;
  for (const raw of s.text.split(/\s+/).filter(Boolean)) {
    const word = raw.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
    if (!word) continue;
    if (/^(not|without|except|excluding|no|never)$/.test(word)) {
      negate = true;
      continue;
    }
    const one = singular(word);
    const kind = KIND_WORDS[one] ?? KIND_WORDS[word];
    if (kind) {
      if (negate) {
        s.q.notKinds.push(...(kind.kinds ?? []));
        s.notes.push(`not ${word} → not of kind ${(kind.kinds ?? kind.extensions ?? []).join(', ')}`);
      } else {
        s.q.kinds.push(...(kind.kinds ?? []));
        s.q.kindExtensions.push(...(kind.extensions ?? []));
        if (kind.mustName) s.q.anyOf.push([...kind.mustName]);
        s.notes.push(`${word} → ${[...(kind.kinds ?? []).map((k) => `kind ${k}`), ...(kind.extensions?.length ? [`.${kind.extensions.join(' .')}`] : []), ...(kind.mustName ? [`named ${kind.mustName.join(' or ')}`] : [])].join(' or ')}`);
      }
      negate = false;
      continue;
    }
    if (negate) {
      s.q.without.push(stem(word));
      s.notes.push(`not ${word} → no name with ${word}`);
      negate = false;
      continue;
    }
    if (STOP_WORDS.has(word)) continue;
    const topic = TOPIC_WORDS[one] ?? TOPIC_WORDS[word];
    if (topic) {
      s.q.anyOf.push([...topic]);
      s.notes.push(`${word} → a name with ${topic.join(', ')}`);
      continue;
    }
    // A name word matches as a prefix: its stem finds the singular and the plural.
    s.q.words.push(stem(word));
    s.notes.push(`${word} → a word starting ${stem(word)}… (in names, text, metadata, tags or folders)`);
  }
}
