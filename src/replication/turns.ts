// Turns at something only a few may do at once, taken in the order asked: the mirrors of a
// node take one to fetch and apply a stretch of a peer's log, so what they hold in memory
// (blocks in flight, batches waiting to apply) is bounded by the turns, not by the number
// of peers.

/** Gives back a turn; a second call does nothing. */
export type GiveBack = () => void;

export class Turns {
  private taken = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly size: number) {
    if (!(size >= 1)) throw new RangeError(`turns must be at least 1, not ${size}`);
  }

  /** Resolves once a turn is free (first asked, first served). */
  async take(): Promise<GiveBack> {
    if (this.taken < this.size) this.taken++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const next = this.waiting.shift();
      // Handed straight to the next in line: the count stays.
      if (next) next();
      else this.taken--;
    };
  }

  /** Turns in use, and asks waiting for one. */
  get state(): { taken: number; waiting: number } {
    return { taken: this.taken, waiting: this.waiting.length };
  }
}
