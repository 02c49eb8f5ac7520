interface ClockTimer {
  due: number;
  fire: () => void;
  handle?: NodeJS.Timeout;
}

/**
 * The emulator's notion of "now". Record timestamps, session expiry, query cursors, the daily
 * API window, CDC retention and the CometD long-poll hold all read it, so a test can move time
 * forward instead of waiting.
 */
export class EmulatorClock {
  private offsetMs = 0;
  private readonly timers = new Set<ClockTimer>();

  constructor(private readonly source: () => number = Date.now) {}

  now(): number {
    return this.source() + this.offsetMs;
  }

  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`clock can only move forward, got ${ms} ms`);
    this.offsetMs += ms;
    for (const timer of [...this.timers]) this.arm(timer);
  }

  /** Calls `fire` once the clock reaches now + ms, by real time passing or by `advance`; returns a cancel. */
  schedule(ms: number, fire: () => void): () => void {
    const timer: ClockTimer = { due: this.now() + ms, fire };
    this.timers.add(timer);
    // Never fires inside this call, even for 0 ms: the caller finishes setting up first.
    timer.handle = setTimeout(() => this.arm(timer), Math.max(0, ms));
    return () => {
      clearTimeout(timer.handle);
      this.timers.delete(timer);
    };
  }

  private arm(timer: ClockTimer): void {
    clearTimeout(timer.handle);
    const remaining = timer.due - this.now();
    if (remaining > 0) {
      timer.handle = setTimeout(() => this.arm(timer), remaining);
      return;
    }
    this.timers.delete(timer);
    timer.fire();
  }
}

/** Salesforce's datetime format in REST answers: `2024-01-31T09:30:00.000+0000`. */
export function formatDateTime(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '+0000');
}

/** Parses ISO-8601 datetimes including Salesforce's `+0000` offset form; NaN when unparseable. */
export function parseDateTime(text: string): number {
  const normalized = text.replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(normalized)) return NaN;
  return Date.parse(normalized);
}
