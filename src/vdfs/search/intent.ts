// A command in plain language ("copy my 2024 photos to the nas", "tag everything in taxes
// 2025 as tax") split into what to do, to which files (a search, see plain.ts) and where
// or with what. Pure text work; do-plan.ts turns it into an action.
import { SdError } from '../../errors.js';
import { MAX_QUERY_CHARS } from './plain.js';

export type Verb = 'copy' | 'move' | 'delete' | 'tag';

export interface Intent {
  verb: Verb;
  /** The files, as a search: a sentence or filters. */
  what: string;
  /** Only the files holding content that is also elsewhere ("duplicates in Downloads"): all but one copy of each. */
  duplicates: boolean;
  /** copy, move: where to ("the nas", "archive", "nas backup", an SdPath). */
  to?: string;
  /** tag: the tags. */
  tags?: string[];
}

const VERBS: Array<{ verb: Verb; words: string; needs?: 'to' | 'as' }> = [
  { verb: 'copy', words: 'copy|cp|duplicate|back up|backup|send', needs: 'to' },
  { verb: 'move', words: 'move|mv|put|file|archive', needs: 'to' },
  { verb: 'delete', words: 'delete|remove|rm|trash|erase|get rid of|throw away|clean up' },
  { verb: 'tag', words: 'tag|label|mark', needs: 'as' },
];

const KNOWN = 'copy, move, delete (to the trash) and tag';

export function parseIntent(text: string): Intent {
  const sentence = text.trim().replace(/[.!]+$/, '');
  if (!sentence) throw new SdError('USAGE', `sd do needs a sentence: what to do with which files (it knows ${KNOWN})`);
  if (sentence.length > MAX_QUERY_CHARS) throw new SdError('USAGE', `a sentence of ${sentence.length} characters is too long (at most ${MAX_QUERY_CHARS})`);
  const lower = sentence.toLowerCase();
  for (const v of VERBS) {
    const m = new RegExp(`^(?:please\\s+)?(?:${v.words})\\b\\s*(.*)$`, 'i').exec(sentence);
    if (!m) continue;
    let rest = m[1]!.trim();
    let to: string | undefined;
    let tags: string[] | undefined;
    if (v.needs === 'to') {
      // The last "to/into/onto": what comes after is where.
      const at = /^(.*)\s+(?:to|into|onto|in to)\s+(.+)$/i.exec(rest);
      if (!at) throw new SdError('USAGE', `understood: ${v.verb} ${rest ? `'${rest}'` : '(which files?)'}; not understood: to where ('${v.verb} ... to the nas', '... to archive', '... to sd://laptop/photos/2024')`);
      rest = at[1]!.trim();
      to = at[2]!.trim();
    } else if (v.needs === 'as') {
      const at = /^(.*)\s+(?:as|with)\s+(.+)$/i.exec(rest);
      if (!at) throw new SdError('USAGE', `understood: tag ${rest ? `'${rest}'` : '(which files?)'}; not understood: with which tag ('tag ... as tax')`);
      rest = at[1]!.trim();
      tags = at[2]!.split(/\s*(?:,|\band\b)\s*/i).map((t) => t.trim().replace(/^["'#]|["']$/g, '')).filter(Boolean);
    }
    const dupes = /^(?:(?:all|the|my)\s+)*(?:duplicates?|dupes|duplicated files|duplicate files|copies)\b\s*(.*)$/i.exec(rest);
    const what = (dupes ? dupes[1]! : rest).trim();
    if (!what && !dupes) throw new SdError('USAGE', `understood: ${v.verb}; not understood: which files ('${v.verb} my 2024 photos ...')`);
    return { verb: v.verb, what, duplicates: dupes !== null, ...(to ? { to } : {}), ...(tags ? { tags } : {}) };
  }
  const first = lower.split(/\s+/)[0];
  throw new SdError('USAGE', `not understood: what to do ('${first}'); sd do knows ${KNOWN} ('copy my 2024 photos to the nas')`);
}
