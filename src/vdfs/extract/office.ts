// Office documents' text: OOXML (docx, pptx, xlsx) and ODF (odt, ods, odp) are zips of XML,
// and only the entries holding text and properties are inflated (fflate's unzipSync filter).
import { unzipSync } from 'fflate';
import { ExtractError } from './extract-error.js';
import { decodeEntities, xmlToText, type XmlTextRules } from './markup.js';

/**
 * The most one entry may inflate to (its size as the zip declares it, which fflate holds it
 * to): more is a zip bomb, or a document whose XML we would not hold as one string anyway.
 */
const ENTRY_MAX_BYTES = 64 * 1024 * 1024;
/** The most all inflated entries may take together. */
const TOTAL_MAX_BYTES = 128 * 1024 * 1024;

/** The entries read: text parts and document properties, nothing else (no images, no styles). */
const WANTED = /^(?:word\/document\.xml|ppt\/slides\/slide\d+\.xml|xl\/sharedStrings\.xml|content\.xml|docProps\/core\.xml|meta\.xml)$/;

// Each vocabulary's text: WordprocessingML keeps words in w:t (so field codes in w:instrText
// and deleted w:delText stay out), DrawingML in a:t, a spreadsheet's shared strings in t
// (less the phonetic guides), ODF in text:p and text:h.
const DOCX: XmlTextRules = { textIn: new Set(['w:t']), paragraphs: new Set(['w:p']), lineBreaks: new Set(['w:br', 'w:cr']), spaces: new Set(['w:tab']) };
const PPTX: XmlTextRules = { textIn: new Set(['a:t']), paragraphs: new Set(['a:p']), lineBreaks: new Set(['a:br']) };
const XLSX: XmlTextRules = { textIn: new Set(['t']), skip: new Set(['rPh']), paragraphs: new Set(['si']) };
const ODF: XmlTextRules = {
  textIn: new Set(['text:p', 'text:h']), skip: new Set(['text:tracked-changes', 'office:annotation']), paragraphs: new Set(['text:p', 'text:h']),
  lineBreaks: new Set(['text:line-break']), spaces: new Set(['text:s', 'text:tab']),
};

/** Document properties a word search should find, in OOXML's core.xml and ODF's meta.xml (any namespace prefix). */
const PROPERTY = /<(?:[\w-]+:)?(title|subject|creator|initial-creator|keywords|keyword|description)\b[^>]*>([^<]{1,1000})<\//g;
/** A property value kept at most this long. */
const VALUE_MAX_CHARS = 200;

export interface OfficeText {
  text: string;
  /** The text stopped at maxChars; more was left in the document. */
  cut: boolean;
  /** Title, subject, author, keywords, description. */
  values: string[];
}

/**
 * The text (up to about maxChars characters) and properties of an office document's zip;
 * `label` names it in errors ("DOCX").
 */
export function readOffice(zip: Uint8Array, label: string, maxChars: number): OfficeText {
  const entries = unzipWanted(zip, label);
  const xml = (name: string) => (entries[name] ? new TextDecoder().decode(entries[name]) : undefined);
  const values = properties(xml('docProps/core.xml') ?? xml('meta.xml') ?? '');
  if (entries['word/document.xml']) return { ...xmlToText(xml('word/document.xml')!, DOCX, maxChars), values };
  const slides = Object.keys(entries).filter((n) => n.startsWith('ppt/slides/')).sort((a, b) => slideNumber(a) - slideNumber(b));
  if (slides.length > 0) {
    const texts: string[] = [];
    let chars = 0;
    for (const [i, name] of slides.entries()) {
      const slide = xmlToText(xml(name)!, PPTX, maxChars - chars);
      texts.push(slide.text);
      chars += slide.text.length;
      if (slide.cut || chars > maxChars) return { text: texts.join('\n'), cut: slide.cut || i < slides.length - 1, values };
    }
    return { text: texts.join('\n'), cut: false, values };
  }
  if (entries['xl/sharedStrings.xml']) return { ...xmlToText(xml('xl/sharedStrings.xml')!, XLSX, maxChars), values };
  if (entries['content.xml']) return { ...xmlToText(xml('content.xml')!, ODF, maxChars), values };
  throw new ExtractError(`not a valid ${label}: the zip has no document part (word/document.xml, content.xml...)`);
}

function unzipWanted(zip: Uint8Array, label: string): Record<string, Uint8Array> {
  let declared = 0;
  try {
    return unzipSync(zip, {
      filter: (file) => {
        if (!WANTED.test(file.name)) return false;
        declared += file.originalSize;
        if (file.originalSize > ENTRY_MAX_BYTES || declared > TOTAL_MAX_BYTES) throw new ExtractError(`${label} too large to read: ${file.name} inflates to ${file.originalSize} bytes`);
        return true;
      },
    });
  } catch (err) {
    if (err instanceof ExtractError) throw err;
    throw new ExtractError(`not a valid ${label}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function slideNumber(name: string): number {
  return Number(/(\d+)\.xml$/.exec(name)?.[1] ?? 0);
}

function properties(xml: string): string[] {
  const values = new Set<string>();
  for (const m of xml.matchAll(PROPERTY)) {
    const v = decodeEntities(m[2]!).replace(/\s+/g, ' ').trim().slice(0, VALUE_MAX_CHARS);
    if (v) values.add(v);
  }
  return [...values];
}
