import { unscaledText } from '../../core';
/**
 * Exact decimal arithmetic on text, for unit changes and relative-change filters: a price of
 * 1234.50 divided by 100 is 12.3450, never 12.344999999. A value is an unscaled BigInt and a scale
 * (the number of fraction digits): 12.3450 is { unscaled: 123450n, scale: 4 }.
 */
export interface Decimal {
  unscaled: bigint;
  scale: number;
}

const TEXT = /^([+-])?(\d+)?(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/**
 * The exact decimal of a value as a mapping meets it: decimal text (what readerType gives for a
 * decimal column), a BigInt long, a number (a Salesforce double: its shortest text, the digits
 * Salesforce sent). Undefined for anything else, NaN and the infinities.
 */
export function parseDecimal(value: unknown): Decimal | undefined {
  if (typeof value === 'bigint') return { unscaled: value, scale: 0 };
  if (typeof value === 'number') return Number.isFinite(value) ? parseDecimal(String(value)) : undefined;
  if (typeof value !== 'string') return undefined;
  const m = TEXT.exec(value.trim());
  if (!m || (m[2] === undefined && !m[3])) return undefined;
  const fraction = m[3] ?? '';
  let unscaled = BigInt(`${m[2] ?? ''}${fraction}` || '0');
  if (m[1] === '-') unscaled = -unscaled;
  let scale = fraction.length - Number(m[4] ?? 0);
  if (scale < 0) {
    unscaled *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { unscaled, scale };
}

/** Plain decimal text with exactly `scale` fraction digits (no exponent). */
export function decimalText(d: Decimal): string {
  return unscaledText(d.unscaled, d.scale);
}

/** d × 10^n, exact: only the scale moves. */
export function shift(d: Decimal, n: number): Decimal {
  const scale = d.scale - n;
  return scale >= 0 ? { unscaled: d.unscaled, scale } : { unscaled: d.unscaled * 10n ** BigInt(-scale), scale: 0 };
}

/** The same value at `scale` fraction digits, or undefined when that would drop a non-zero digit. */
export function rescale(d: Decimal, scale: number): Decimal | undefined {
  if (scale >= d.scale) return { unscaled: d.unscaled * 10n ** BigInt(scale - d.scale), scale };
  const factor = 10n ** BigInt(d.scale - scale);
  return d.unscaled % factor === 0n ? { unscaled: d.unscaled / factor, scale } : undefined;
}

/** The fewest fraction digits that hold the value (12.3450 → 12.345). */
export function normalize(d: Decimal): Decimal {
  let { unscaled, scale } = d;
  while (scale > 0 && unscaled % 10n === 0n) {
    unscaled /= 10n;
    scale--;
  }
  return { unscaled, scale };
}

/** Digits before the point (0.5 has none; 12.5 has 2). */
export function integerDigits(d: Decimal): number {
  const whole = (d.unscaled < 0n ? -d.unscaled : d.unscaled) / 10n ** BigInt(d.scale);
  return whole === 0n ? 0 : whole.toString().length;
}

/** Whether the value is a whole number. */
export function isInteger(d: Decimal): boolean {
  return d.unscaled % 10n ** BigInt(d.scale) === 0n;
}

/**
 * Whether |after − before| < ratio × |before|, exactly. A change from zero is never below the
 * ratio (any change of nothing is infinitely large).
 */
export function relativeChangeBelow(before: Decimal, after: Decimal, ratio: Decimal): boolean {
  const scale = Math.max(before.scale, after.scale);
  const b = rescale(before, scale)!.unscaled;
  const a = rescale(after, scale)!.unscaled;
  if (b === 0n) return false;
  const diff = a > b ? a - b : b - a;
  const base = b < 0n ? -b : b;
  // diff / 10^scale < (ratio.unscaled / 10^ratio.scale) × base / 10^scale
  return diff * 10n ** BigInt(ratio.scale) < ratio.unscaled * base;
}

/** Whether the text is 10^n for a whole n ≥ 0 ("1", "10", "1000"), and n. */
export function powerOfTen(value: Decimal): number | undefined {
  const d = normalize(value);
  if (d.scale !== 0 || d.unscaled <= 0n) return undefined;
  const text = d.unscaled.toString();
  return /^10*$/.test(text) ? text.length - 1 : undefined;
}
