// The one error of extraction: a file whose bytes cannot be read as what they claim to be
// (a .pdf that is no PDF, a zip without its document). Apart so the main thread has it cheaply.

/** A file that cannot be parsed as what it claims to be; the message says what failed. */
export class ExtractError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExtractError';
  }
}
