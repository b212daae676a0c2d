// A month named in a sentence ("since march", "in june 2024", "march 5, 2024") is read by
// plain.ts's own rule (monthPeriod). It was chrono-node's reading, and reads the same: every
// form of every month name, every day number the sentence's rule lets through, with and
// without a year, at dates of reading around leap days, month ends and the turn of a year.
import * as chrono from 'chrono-node/en';
import t from 'tap';
import { monthPeriod, parsePlain, type PlainContext } from '../src/vdfs/search/plain.js';

const day = (y: number, m: number, d: number) => new Date(y, m - 1, d);

function startOf(ms: number, unit: 'day' | 'month'): Date {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  if (unit === 'month') d.setDate(1);
  return d;
}

function shift(d: Date, unit: 'day' | 'month' | 'year', n: number): Date {
  const r = new Date(d);
  if (unit === 'day') r.setDate(r.getDate() + n);
  else if (unit === 'month') r.setMonth(r.getMonth() + n);
  else r.setFullYear(r.getFullYear() + n);
  return r;
}

/** The rule as it was, through chrono-node: the period, or undefined where it took no date. */
function chronoPeriod(text: string, now: number): { start: Date; end: Date } | undefined {
  const hit = chrono.parse(text, new Date(now))[0];
  if (!hit || hit.text.length < text.length - 1) return undefined;
  const unit = hit.start.isCertain('day') ? 'day' : 'month';
  let start = startOf(hit.start.date().getTime(), unit);
  if (!hit.start.isCertain('year') && start.getTime() > now) start = shift(start, 'year', -1);
  return { start, end: shift(start, unit, 1) };
}

const NAMES = ['jan', 'january', 'feb', 'february', 'mar', 'march', 'apr', 'april', 'may', 'jun', 'june', 'jul', 'july', 'aug', 'august', 'sep', 'sept', 'september', 'oct', 'october', 'nov', 'november', 'dec', 'december'];
const DAYS = ['', ...Array.from({ length: 100 }, (_, i) => ` ${i}`), ' 00', ' 05', '  5', ' 1st', ' 2nd', ' 3rd', ' 4th', ' 11th', ' 21st', ' 22nd', ' 23rd', ' 31st', ' 32nd', ' 0th', ' 3st', ' 51st'];
const YEARS = ['', ' 2024', ', 2023', ',  2025', ' 1999'];
const READ_AT = [
  new Date(2026, 11, 6, 10), new Date(2026, 0, 15, 9), new Date(2024, 1, 28, 12), new Date(2024, 1, 29, 12), new Date(2025, 2, 1, 0, 30),
  new Date(2026, 5, 30, 23, 59), new Date(2026, 6, 1, 0, 0), new Date(2027, 1, 28, 8), new Date(2026, 2, 31, 12), new Date(2026, 11, 31, 23, 59),
].map((d) => d.getTime());

t.test('every month, day and year form reads as chrono-node read it', async (t) => {
  const differ: string[] = [];
  let cases = 0;
  for (const now of READ_AT) {
    for (const name of NAMES) {
      for (const d of DAYS) {
        for (const y of YEARS) {
          const text = name + d + y;
          const ours = monthPeriod(text, now);
          const theirs = chronoPeriod(text, now);
          cases++;
          if (ours?.start.getTime() !== theirs?.start.getTime() || ours?.end.getTime() !== theirs?.end.getTime()) {
            differ.push(`${JSON.stringify(text)} read on ${new Date(now).toISOString()}: ${ours?.start.toDateString()}..${ours?.end.toDateString()} vs chrono ${theirs?.start.toDateString()}..${theirs?.end.toDateString()}`);
          }
        }
      }
    }
  }
  t.same(differ.slice(0, 20), [], `${cases} readings, none different`);
});

t.test('what a month means in a sentence', async (t) => {
  const now = new Date(2026, 11, 6, 10).getTime();
  t.same(monthPeriod('march 5, 2024', now), { start: day(2024, 3, 5), end: day(2024, 3, 6) }, 'a day of a month of a year');
  t.same(monthPeriod('june 2024', now), { start: day(2024, 6, 1), end: day(2024, 7, 1) }, 'a month of a year');
  t.same(monthPeriod('march', now), { start: day(2026, 3, 1), end: day(2026, 4, 1) }, 'a month alone: the last one that has begun');
  t.same(monthPeriod('dec 24th', now), { start: day(2025, 12, 24), end: day(2025, 12, 25) }, 'a day still to come this year is last year’s');
  t.equal(monthPeriod('mar', now), undefined, 'a short name alone is a word');
  t.equal(monthPeriod('feb 30', now), undefined, 'a day the month lacks is no date');
  t.same(monthPeriod('march 32', now), { start: day(2032, 3, 1), end: day(2032, 4, 1) }, 'a number no day can be is a year of two digits');
  const ctx: PlainContext = { now, devices: [], locations: [], tags: [], folderExists: () => false };
  t.match(parsePlain('reports since march', ctx), { query: { words: ['report'], modified: [{ op: '>=', ms: day(2026, 3, 1).getTime() }] } }, 'since march: from its first day on');
  t.match(parsePlain('report from june 2024', ctx), { query: { words: ['report'], modified: [{ op: '>=', ms: day(2024, 6, 1).getTime() }, { op: '<', ms: day(2024, 7, 1).getTime() }] } }, 'from june 2024: within it');
  t.match(parsePlain('mar report', ctx), { query: { words: ['mar', 'report'], modified: [] } }, 'mar alone stays a word');
});
