/**
 * The emulator's notion of "now". Record timestamps, session expiry, query cursors, the daily
 * API window and CDC retention all read it, so a test can move time forward instead of waiting.
 */
export class EmulatorClock {
  private offsetMs = 0;

  constructor(private readonly source: () => number = Date.now) {}

  now(): number {
    return this.source() + this.offsetMs;
  }

  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`clock can only move forward, got ${ms} ms`);
    this.offsetMs += ms;
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
