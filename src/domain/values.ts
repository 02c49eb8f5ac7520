import { civilFromDays, daysFromCivil, fromTwosComplement, isCalendarDate, toTwosComplement, unscaledText } from '../core';
import type { EventFieldType } from './event';

/**
 * The JavaScript values of event fields and their Avro forms. Every conversion is exact or refused:
 * a decimal that does not fit its precision and scale, a date that names no day, a long that is
 * not a BigInt are errors, never rounded or rolled over.
 */

// A sign as ISO 8601 writes expanded years (the runtime reader gives "+010000-01-01", "-000043-03-15").
const DATE = /^([+-]?\d{4,})-(\d{2})-(\d{2})$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** 'YYYY-MM-DD' (proleptic Gregorian) → days since 1970-01-01. */
export function dateToDays(text: string): number {
  const m = DATE.exec(text);
  if (!m) throw new Error(`"${text}" is not a date (YYYY-MM-DD)`);
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (!isCalendarDate(year, month, day)) throw new Error(`"${text}" is not a calendar date`);
  return daysFromCivil(year, month, day);
}

/** Days since 1970-01-01 → 'YYYY-MM-DD' (the inverse of dateToDays). */
export function daysToDate(days: number): string {
  const { year, month, day } = civilFromDays(days);
  const yyyy = year < 0 ? `-${String(-year).padStart(4, '0')}` : String(year).padStart(4, '0');
  return `${yyyy}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

const DECIMAL = /^([+-])?(\d+)(?:\.(\d+))?$/;

/**
 * A decimal string → the unscaled integer at `scale`. Trailing zeros past the scale are exact and
 * dropped ("12.500" at scale 2 is 1250); any other digit past it, or more digits than `precision`,
 * is refused.
 */
export function decimalToUnscaled(text: string, precision: number, scale: number): bigint {
  if (typeof text !== 'string') throw new Error(`${describe(text)} is not a decimal string (decimals are strings, e.g. "12.50", so they stay exact)`);
  const m = DECIMAL.exec(text);
  if (!m) throw new Error(`"${text}" is not a decimal number`);
  const fraction = (m[3] ?? '').replace(/0+$/, '');
  if (fraction.length > scale) throw new Error(`"${text}" has more than ${scale} decimal place${scale === 1 ? '' : 's'} (decimal(${precision},${scale}))`);
  const digits = `${m[2]}${fraction.padEnd(scale, '0')}`.replace(/^0+(?=\d)/, '');
  if (digits.length > precision) throw new Error(`"${text}" has more than ${precision} digits (decimal(${precision},${scale}))`);
  const unscaled = BigInt(digits);
  return m[1] === '-' ? -unscaled : unscaled;
}

/** The unscaled integer → Avro's decimal bytes (the shortest big-endian two's complement). */
export function unscaledToBytes(value: bigint): Buffer {
  return toTwosComplement(value)!;
}

/** Avro's decimal bytes → the decimal string with exactly `scale` places ("12.50"). */
export function bytesToDecimal(bytes: Buffer, scale: number): string {
  return unscaledText(fromTwosComplement(bytes), scale);
}

/** The type as written in the config and the docs: `string`, `decimal(10,2)`. */
export function typeName(type: EventFieldType): string {
  return typeof type === 'string' ? type : `decimal(${type.decimal.precision},${type.decimal.scale})`;
}

/** Why `value` is not a value of `type` (null is checked by the caller: every data field may be null), or undefined. */
export function valueProblem(type: EventFieldType, value: unknown): string | undefined {
  try {
    if (typeof type === 'object') {
      decimalToUnscaled(value as string, type.decimal.precision, type.decimal.scale);
      return undefined;
    }
    switch (type) {
      case 'string':
        return typeof value === 'string' ? undefined : `${describe(value)} is not a string`;
      case 'int':
        return Number.isInteger(value) && (value as number) >= -2147483648 && (value as number) <= 2147483647 ? undefined : `${describe(value)} is not a 32-bit integer`;
      case 'long':
        if (typeof value !== 'bigint') return `${describe(value)} is not a BigInt (longs are BigInt, so they keep every digit)`;
        return value >= INT64_MIN && value <= INT64_MAX ? undefined : `${value} does not fit a 64-bit long`;
      case 'double':
        return typeof value === 'number' ? undefined : `${describe(value)} is not a number`;
      case 'boolean':
        return typeof value === 'boolean' ? undefined : `${describe(value)} is not a boolean`;
      case 'date':
        if (typeof value !== 'string') return `${describe(value)} is not a date string (YYYY-MM-DD)`;
        dateToDays(value);
        return undefined;
      case 'timestamp':
        return Number.isSafeInteger(value) ? undefined : `${describe(value)} is not a timestamp (whole ms since the epoch, a number)`;
    }
  } catch (error) {
    return (error as Error).message;
  }
}

/** A value as an error message shows it: short, with its type when that is the problem. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === undefined) return 'undefined';
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object';
  return String(value);
}
