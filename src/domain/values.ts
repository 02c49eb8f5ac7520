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
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const last = month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
  if (month < 1 || month > 12 || day < 1 || day > last) throw new Error(`"${text}" is not a calendar date`);
  // H. Hinnant's days_from_civil: unlike Date.UTC it takes years 0–99 as written.
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  return era * 146_097 + yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear - 719_468;
}

/** Days since 1970-01-01 → 'YYYY-MM-DD' (civil_from_days, the inverse of dateToDays). */
export function daysToDate(days: number): string {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
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
  let width = 1;
  while (value >= 1n << BigInt(8 * width - 1) || value < -(1n << BigInt(8 * width - 1))) width++;
  const unsigned = value < 0n ? (1n << BigInt(8 * width)) + value : value;
  return Buffer.from(unsigned.toString(16).padStart(width * 2, '0'), 'hex');
}

/** Avro's decimal bytes → the decimal string with exactly `scale` places ("12.50"). */
export function bytesToDecimal(bytes: Buffer, scale: number): string {
  let value = bytes.length === 0 ? 0n : BigInt(`0x${bytes.toString('hex')}`);
  if (bytes.length > 0 && bytes[0]! & 0x80) value -= 1n << BigInt(bytes.length * 8);
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(scale + 1, '0');
  const text = scale > 0 ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return negative ? `-${text}` : text;
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
