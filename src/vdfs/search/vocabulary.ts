// The everyday words a plain-language query may use, and what files they mean: kinds of
// files (photos, videos, documents...) and topics (tax, invoices...) as the words their
// names tend to hold. Small on purpose: a word not here is searched for as it is.

/** A word for a kind of file: the kinds (query.ts KIND_EXTENSIONS / ENTRY_KINDS) or extensions it means, and name words that also mark it. */
export interface KindWord {
  kinds?: readonly string[];
  extensions?: readonly string[];
  /** Only files whose name holds one of these (a screenshot is an image, but not every image is one). */
  mustName?: readonly string[];
}

const RAW = ['cr2', 'cr3', 'nef', 'arw', 'dng', 'raf', 'orf', 'rw2', 'raw'];

// Photos and pictures are images (camera raw included: kinds.ts); raw alone is only raw.
export const KIND_WORDS: Record<string, KindWord> = {
  photo: { kinds: ['image'] },
  picture: { kinds: ['image'] },
  pic: { kinds: ['image'] },
  image: { kinds: ['image'] },
  screenshot: { kinds: ['image'], mustName: ['screenshot', 'screen shot', 'scrn'] },
  raw: { extensions: RAW },
  video: { kinds: ['video'] },
  movie: { kinds: ['video'] },
  film: { kinds: ['video'] },
  clip: { kinds: ['video'] },
  recording: { kinds: ['audio', 'video'] },
  music: { kinds: ['audio'] },
  song: { kinds: ['audio'] },
  track: { kinds: ['audio'] },
  audio: { kinds: ['audio'] },
  podcast: { kinds: ['audio'] },
  document: { kinds: ['document'] },
  doc: { kinds: ['document'] },
  paper: { kinds: ['document'] },
  letter: { extensions: ['pdf', 'doc', 'docx', 'odt', 'txt', 'md', 'rtf'] },
  note: { extensions: ['txt', 'md', 'org', 'rtf'] },
  pdf: { extensions: ['pdf'] },
  spreadsheet: { extensions: ['xls', 'xlsx', 'ods', 'csv', 'numbers'] },
  presentation: { extensions: ['ppt', 'pptx', 'odp', 'key'] },
  slide: { extensions: ['ppt', 'pptx', 'odp', 'key'] },
  ebook: { extensions: ['epub', 'mobi', 'azw3', 'pdf'] },
  book: { extensions: ['epub', 'mobi', 'azw3', 'pdf'] },
  archive: { kinds: ['archive'] },
  zip: { extensions: ['zip'] },
  code: { kinds: ['code'] },
  source: { kinds: ['code'] },
  script: { extensions: ['sh', 'py', 'js', 'ts', 'rb', 'pl', 'ps1'] },
  folder: { kinds: ['dir'] },
  directory: { kinds: ['dir'] },
  dir: { kinds: ['dir'] },
};

/** Topics: a word in the query stands for any of these in a name (prefixes, as the search matches). */
export const TOPIC_WORDS: Record<string, readonly string[]> = {
  tax: ['tax', 'taxes', '1040', 'w2', 'w-2', '1099', 'irs', 'receipt', 'invoice', 'deduction', 'return'],
  invoice: ['invoice', 'bill', 'receipt', 'billing'],
  receipt: ['receipt', 'invoice', 'purchase', 'order'],
  bank: ['bank', 'statement', 'account'],
  statement: ['statement', 'bank'],
  salary: ['salary', 'payslip', 'paystub', 'pay stub', 'payroll', 'w2', 'w-2'],
  resume: ['resume', 'cv', 'curriculum'],
  cv: ['cv', 'resume', 'curriculum'],
  contract: ['contract', 'agreement', 'lease', 'nda'],
  insurance: ['insurance', 'policy', 'claim'],
  medical: ['medical', 'health', 'doctor', 'prescription', 'lab'],
  passport: ['passport', 'visa', 'id'],
  backup: ['backup', 'bak', 'snapshot'],
};

/** Words that carry no meaning for a search (articles, pronouns, "files"...). */
export const STOP_WORDS = new Set([
  'a', 'an', 'the', 'my', 'mine', 'our', 'your', 'me', 'i', 'we', 'you', 'all', 'any', 'every', 'everything', 'some', 'each',
  'file', 'files', 'stuff', 'thing', 'things', 'item', 'items', 'one', 'ones', 'show', 'find', 'search', 'list', 'give', 'get', 'look',
  'for', 'with', 'that', 'which', 'who', 'where', 'what', 'are', 'is', 'was', 'were', 'be', 'been', 'have', 'has', 'had', 'do', 'did',
  'and', 'or', 'of', 'from', 'in', 'on', 'at', 'to', 'by', 'about', 'please', 'there', 'those', 'these', 'this', 'it', 'its', 'them',
  'stored', 'saved', 'kept', 'located', 'sitting', 'lying', 'just',
]);

/** A word's stem for prefix matching: what its singular and plural begin with (reports → report, categories → categor). */
export function stem(word: string): string {
  if (word.length > 4 && word.endsWith('ies')) return word.slice(0, -3);
  return singular(word);
}

/** Singular of a plural word, for the tables above (photos → photo, movies → movie, taxes → tax). */
export function singular(word: string): string {
  if (word.length > 4 && word.endsWith('ies')) return `${word.slice(0, -3)}y`;
  if (word.length > 3 && /(x|ch|sh|ss)es$/.test(word)) return word.slice(0, -2);
  if (word.length > 3 && word.endsWith('s') && !word.endsWith('ss')) return word.slice(0, -1);
  return word;
}
