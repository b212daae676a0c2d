// A PDF's text and properties with pdf.js (unpdf's build of it for servers: pure JS, no
// canvas), page after page until enough text is had. Loaded on first use: it is 1.6 MB.
import { ExtractError } from './extract-error.js';
import { collapseWhitespace } from './text.js';

export interface PdfText {
  text: string;
  /** Pages were left unread: the text had reached maxTextBytes. */
  stoppedEarly: boolean;
  pages: number;
  /** Title, author, subject, keywords. */
  values: string[];
}

/** The document information entries a word search should find. */
const INFO_KEYS = ['Title', 'Author', 'Subject', 'Keywords'] as const;
const VALUE_MAX_CHARS = 200;

type Pdf = Awaited<ReturnType<(typeof import('unpdf'))['getDocumentProxy']>>;

/** The text of the PDF's pages in order, read until it passes maxTextBytes; rejects with ExtractError if it is no PDF. */
export async function readPdf(bytes: Uint8Array, maxTextBytes: number): Promise<PdfText> {
  const { getDocumentProxy } = await import('unpdf');
  let pdf: Pdf;
  try {
    // verbosity 0: pdf.js would print its warnings about each malformed file to stdout.
    // No eval (fonts compiled as functions) and no system fonts: text needs neither.
    // A plain Uint8Array view: pdf.js refuses a Buffer (the same memory, no copy).
    const data = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    pdf = await getDocumentProxy(data, { verbosity: 0, isEvalSupported: false, useSystemFonts: false, disableFontFace: true });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ExtractError(err instanceof Error && err.name === 'PasswordException' ? 'PDF is encrypted: it needs a password' : `not a valid PDF: ${reason}`);
  }
  try {
    const parts: string[] = [];
    let bytesSoFar = 0;
    let failed = 0;
    let page = 1;
    for (; page <= pdf.numPages && bytesSoFar <= maxTextBytes; page++) {
      try {
        const text = collapseWhitespace(await pageText(pdf, page));
        if (!text) continue;
        parts.push(text);
        bytesSoFar += Buffer.byteLength(text, 'utf8') + 1;
      } catch {
        failed++; // one broken page: the others still say something
      }
    }
    if (failed > 0 && failed === page - 1) throw new ExtractError(`not a valid PDF: none of its ${failed} pages could be read`);
    return { text: parts.join('\n'), stoppedEarly: page <= pdf.numPages, pages: pdf.numPages, values: await infoValues(pdf) };
  } finally {
    await pdf.loadingTask.destroy();
  }
}

async function pageText(pdf: Pdf, pageNumber: number): Promise<string> {
  const page = await pdf.getPage(pageNumber);
  try {
    const content = await page.getTextContent();
    let text = '';
    for (const item of content.items) if ('str' in item) text += item.hasEOL ? `${item.str}\n` : item.str;
    return text;
  } finally {
    page.cleanup();
  }
}

async function infoValues(pdf: Pdf): Promise<string[]> {
  try {
    const info = (await pdf.getMetadata()).info as Record<string, unknown>;
    const values = new Set<string>();
    for (const key of INFO_KEYS) {
      const v = info[key];
      if (typeof v !== 'string') continue;
      const clean = v.replace(/\s+/g, ' ').trim().slice(0, VALUE_MAX_CHARS);
      if (clean) values.add(clean);
    }
    return [...values];
  } catch {
    return []; // a broken info dictionary: the text is still worth having
  }
}
