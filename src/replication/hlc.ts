// Hybrid logical clock for shared metadata (tags, user metadata): wall-clock ms, a
// counter for events within one ms, and the device id as the last tie-breaker. Stamps
// format to strings that sort in clock order, so "newer" is a string comparison.

export interface HlcStamp {
  ms: number;
  counter: number;
  device: string;
}

const MS_DIGITS = 15;
const COUNTER_DIGITS = 6;
const MAX_COUNTER = 10 ** COUNTER_DIGITS - 1;
/** A remote stamp this far ahead of our wall clock is not believed (a broken clock). */
const MAX_DRIFT_MS = 24 * 3600 * 1000;

export function formatHlc(s: HlcStamp): string {
  return `${String(s.ms).padStart(MS_DIGITS, '0')}.${String(s.counter).padStart(COUNTER_DIGITS, '0')}.${s.device}`;
}

export function parseHlc(text: string): HlcStamp {
  const m = /^(\d{15})\.(\d{6})\.(.+)$/.exec(text);
  if (!m) throw new Error(`not an HLC stamp: '${text.slice(0, 80)}'`);
  return { ms: Number(m[1]), counter: Number(m[2]), device: m[3]! };
}

export class HlcClock {
  private ms = 0;
  private counter = 0;

  /** `last`: the newest stamp this device has seen (so a clock set back never reissues one). */
  constructor(
    private readonly device: string,
    last?: string | null,
    private readonly wallClock: () => number = Date.now,
  ) {
    if (last) this.observe(last);
  }

  /** A new stamp, later than every stamp issued or observed so far. */
  tick(): string {
    const now = this.wallClock();
    if (now > this.ms) {
      this.ms = now;
      this.counter = 0;
    } else if (this.counter < MAX_COUNTER) {
      this.counter++;
    } else {
      this.ms++;
      this.counter = 0;
    }
    return formatHlc({ ms: this.ms, counter: this.counter, device: this.device });
  }

  /** Takes in a stamp from another device, so the next tick sorts after it. */
  observe(stamp: string): void {
    const s = parseHlc(stamp);
    if (s.ms > this.wallClock() + MAX_DRIFT_MS) return;
    if (s.ms > this.ms || (s.ms === this.ms && s.counter > this.counter)) {
      this.ms = s.ms;
      this.counter = s.counter;
    }
  }
}
