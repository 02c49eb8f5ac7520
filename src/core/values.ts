/**
 * The calendar and decimal arithmetic every layer that reads or writes Avro values needs (the
 * changelog's converters, the runtime's reader, the domain's events): one exact implementation,
 * standard library only. Each caller keeps its own text forms and error messages.
 */

/** The days of `month` (1–12) in a proleptic Gregorian `year`. */
export function daysInMonth(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Whether year-month-day names a day of the proleptic Gregorian calendar (no zero month or day, no 02-30). */
export function isCalendarDate(year: number, month: number, day: number): boolean {
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

/**
 * Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). Unlike
 * Date.UTC it takes years 0–99 as written. The date must be a calendar date (isCalendarDate):
 * anything else would roll over (2024-02-30 → 2024-03-01).
 */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** The date of days since 1970-01-01 (civil_from_days, the inverse of daysFromCivil). */
export function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

/** Big-endian two's complement (Avro's decimal bytes): the shortest form, or `size` bytes (undefined when it does not fit). */
export function toTwosComplement(value: bigint, size?: number): Buffer | undefined {
  let width = 1;
  while (value >= 1n << BigInt(8 * width - 1) || value < -(1n << BigInt(8 * width - 1))) width++;
  if (size !== undefined) {
    if (width > size) return undefined;
    width = size;
  }
  const unsigned = value < 0n ? (1n << BigInt(8 * width)) + value : value;
  return Buffer.from(unsigned.toString(16).padStart(width * 2, '0'), 'hex');
}

/** The integer of big-endian two's complement bytes. */
export function fromTwosComplement(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  let value = BigInt(`0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex')}`);
  if (bytes[0]! & 0x80) value -= 1n << BigInt(bytes.length * 8);
  return value;
}

/** An unscaled integer as decimal text with exactly `scale` places ("12.50"). */
export function unscaledText(unscaled: bigint | number, scale: number): string {
  const negative = unscaled < 0;
  const digits = (typeof unscaled === 'number' ? Math.abs(unscaled) : negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale > 0 ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return negative ? `-${text}` : text;
}
