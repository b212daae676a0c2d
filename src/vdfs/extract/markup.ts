// Markup to text: one linear scanner over tags, with the rules of HTML (drop script and
// style, break at blocks) or of an XML document (which elements hold text, which break).

/** Named character references: XML's five and the HTML ones prose uses. */
const ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', shy: '', ensp: '\u2002', emsp: '\u2003', thinsp: '\u2009',
  copy: '©', reg: '®', trade: '™', deg: '°', plusmn: '±', times: '×', divide: '÷', micro: 'µ', para: '¶', sect: '§', middot: '·',
  cent: '¢', pound: '£', euro: '€', yen: '¥', curren: '¤', laquo: '«', raquo: '»', lsaquo: '‹', rsaquo: '›', iexcl: '¡', iquest: '¿',
  ndash: '–', mdash: '—', hellip: '…', bull: '•', lsquo: '‘', rsquo: '’', sbquo: '‚', ldquo: '“', rdquo: '”', bdquo: '„', prime: '′', Prime: '″',
  dagger: '†', Dagger: '‡', permil: '‰', frac12: '½', frac14: '¼', frac34: '¾', sup1: '¹', sup2: '²', sup3: '³', ordf: 'ª', ordm: 'º',
  larr: '←', rarr: '→', uarr: '↑', darr: '↓', harr: '↔', le: '≤', ge: '≥', ne: '≠', asymp: '≈', infin: '∞', minus: '−', szlig: 'ß',
  AElig: 'Æ', aelig: 'æ', OElig: 'Œ', oelig: 'œ', Oslash: 'Ø', oslash: 'ø', Aring: 'Å', aring: 'å', Ccedil: 'Ç', ccedil: 'ç',
  ETH: 'Ð', eth: 'ð', THORN: 'Þ', thorn: 'þ', Ntilde: 'Ñ', ntilde: 'ñ', Scaron: 'Š', scaron: 'š', Zcaron: 'Ž', zcaron: 'ž', Yuml: 'Ÿ', yuml: 'ÿ',
};

/** Latin letters with a diacritic, as named in HTML: &eacute; &Uuml; ... */
const ACCENTED: Record<string, string> = { grave: '\u0300', acute: '\u0301', circ: '\u0302', tilde: '\u0303', uml: '\u0308' };

function namedEntity(name: string): string | undefined {
  const plain = ENTITIES[name];
  if (plain !== undefined) return plain;
  const m = /^([A-Za-z])(grave|acute|circ|tilde|uml)$/.exec(name);
  return m ? (m[1]! + ACCENTED[m[2]!]!).normalize('NFC') : undefined;
}

/** Character references decoded: named (those above), decimal and hex; unknown ones stay as written. */
export function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([A-Za-z][A-Za-z0-9]{1,31}));/g, (whole, dec?: string, hex?: string, name?: string) => {
    if (name !== undefined) return namedEntity(name) ?? whole;
    const code = dec !== undefined ? Number(dec) : parseInt(hex!, 16);
    const valid = code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff);
    return valid ? String.fromCodePoint(code) : '\ufffd';
  });
}

/** One tag as the scanner saw it: its name as written, whether it closes or closes itself. */
interface Tag {
  name: string;
  closing: boolean;
  selfClosing: boolean;
}

/**
 * Walks markup in one pass: text runs to onText (entities still encoded), tags to onTag,
 * which returns the name of an element whose raw content to skip up to its end tag (HTML's
 * script and style), until the end or until stop() says enough. Comments, CDATA's brackets,
 * declarations and instructions are dropped.
 */
function scanMarkup(src: string, onText: (text: string) => void, onTag: (tag: Tag) => string | undefined, stop: () => boolean = () => false): void {
  let i = 0;
  while (i < src.length && !stop()) {
    const lt = src.indexOf('<', i);
    if (lt < 0) {
      onText(src.slice(i));
      return;
    }
    if (lt > i) onText(src.slice(i, lt));
    if (src.startsWith('<!--', lt)) {
      const end = src.indexOf('-->', lt + 4);
      i = end < 0 ? src.length : end + 3;
      continue;
    }
    if (src.startsWith('<![CDATA[', lt)) {
      const end = src.indexOf(']]>', lt + 9);
      onText(src.slice(lt + 9, end < 0 ? src.length : end).replace(/&/g, '&amp;'));
      i = end < 0 ? src.length : end + 3;
      continue;
    }
    const gt = src.indexOf('>', lt + 1);
    if (gt < 0) {
      if (!/^<\/?[A-Za-z_]/.test(src.slice(lt, lt + 3))) onText(src.slice(lt)); // text with a '<'; else a tag cut off at the end
      return;
    }
    const source = src.slice(lt, gt + 1);
    i = gt + 1;
    const m = /^<(\/?)([A-Za-z_][\w:.-]*)/.exec(source);
    if (!m) {
      if (source[1] !== '!' && source[1] !== '?') onText(source); // a lone '<' in text
      continue;
    }
    const skip = onTag({ name: m[2]!, closing: m[1] === '/', selfClosing: source.endsWith('/>') });
    if (skip !== undefined) {
      const endTag = new RegExp(`</${skip}[\\s>]`, 'gi'); // skip names are plain words
      endTag.lastIndex = i;
      const end = endTag.exec(src)?.index ?? -1;
      i = end < 0 ? src.length : src.indexOf('>', end) + 1 || src.length;
    }
  }
}

/** HTML elements whose content is no text a reader sees. */
const HTML_SKIP = new Set(['script', 'style', 'noscript', 'template', 'svg', 'math', 'object', 'iframe']);
/** HTML elements that start or end a block: a line break in the text. */
const HTML_BLOCKS = new Set([
  'address', 'article', 'aside', 'blockquote', 'br', 'dd', 'details', 'dialog', 'div', 'dl', 'dt', 'fieldset', 'figcaption', 'figure', 'footer',
  'form', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'li', 'main', 'nav', 'ol', 'p', 'pre', 'section', 'summary', 'table', 'td', 'th',
  'title', 'tr', 'ul', 'caption', 'body', 'head', 'html',
]);

/** The text of an HTML (or any XML) page: script, style and comments dropped, blocks on lines of their own. */
export function htmlToText(html: string): string {
  const out: string[] = [];
  scanMarkup(html, (text) => out.push(text), (tag) => {
    const name = tag.name.toLowerCase();
    if (!tag.closing && !tag.selfClosing && HTML_SKIP.has(name)) {
      // Still a line apart from its neighbours, so words around it do not join.
      out.push('\n');
      return name;
    }
    if (HTML_BLOCKS.has(name)) out.push('\n');
    return undefined;
  });
  return decodeEntities(out.join(''));
}

/** How one XML vocabulary (WordprocessingML, ODF...) lays out its text. */
export interface XmlTextRules {
  /** Text counts only inside these elements (their descendants too); everywhere when absent. */
  textIn?: ReadonlySet<string>;
  /** Elements whose content is left out (deleted text, phonetic runs). */
  skip?: ReadonlySet<string>;
  /** Elements that end a paragraph: a line break after them. */
  paragraphs: ReadonlySet<string>;
  /** Empty elements that stand for a line break (w:br). */
  lineBreaks?: ReadonlySet<string>;
  /** Empty elements that stand for a space (w:tab, text:s). */
  spaces?: ReadonlySet<string>;
}

/**
 * The text of an XML document under its vocabulary's rules, a line per paragraph; the scan
 * stops once maxChars characters of text are had (`cut` says so): a book-length document
 * need not be walked to its end for the first pages' words.
 */
export function xmlToText(xml: string, rules: XmlTextRules, maxChars = Infinity): { text: string; cut: boolean } {
  const out: string[] = [];
  let chars = 0;
  let inside = 0; // open textIn elements
  let skipped = 0; // open skip elements
  const push = (text: string) => {
    out.push(text);
    chars += text.length;
  };
  scanMarkup(xml, (text) => {
    if (skipped === 0 && (!rules.textIn || inside > 0)) push(text);
  }, (tag) => {
    const open = !tag.closing && !tag.selfClosing;
    if (rules.skip?.has(tag.name)) skipped = Math.max(0, skipped + (open ? 1 : tag.closing ? -1 : 0));
    if (rules.textIn?.has(tag.name)) inside = Math.max(0, inside + (open ? 1 : tag.closing ? -1 : 0));
    if (skipped > 0) return undefined;
    if (tag.closing && rules.paragraphs.has(tag.name)) push('\n');
    else if (!tag.closing && rules.lineBreaks?.has(tag.name)) push('\n');
    else if (!tag.closing && rules.spaces?.has(tag.name)) push(' ');
    return undefined;
  }, () => chars > maxChars);
  return { text: decodeEntities(out.join('')), cut: chars > maxChars };
}
