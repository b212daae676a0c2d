// A one-line progress display on stderr, drawn only when stderr is a terminal.

export class ProgressLine {
  private last = 0;
  private drawn = false;
  private readonly enabled: boolean;

  constructor(enabled = process.stderr.isTTY === true) {
    this.enabled = enabled;
  }

  update(text: string, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const width = process.stderr.columns || 80;
    process.stderr.write(`\r\x1b[K${text.slice(0, width - 1)}`);
    this.drawn = true;
  }

  /** Draws a bar for done/total. */
  bar(label: string, done: number, total: number): void {
    if (!this.enabled) return;
    const width = 30;
    const fraction = total > 0 ? Math.min(1, done / total) : 0;
    const filled = Math.round(fraction * width);
    this.update(`${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`);
  }

  clear(): void {
    if (this.drawn) process.stderr.write('\r\x1b[K');
    this.drawn = false;
  }
}
