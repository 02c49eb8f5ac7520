import avro from 'avsc';
import { avroType } from './avro';
import { civilFromDays, daysFromCivil, fromTwosComplement, isCalendarDate, toTwosComplement, unscaledText } from '../core';

/**
 * A reader for Avro values that a mapping can use as they are: logical types become the text a
 * person (and a config file) writes, with every digit kept, and longs stay BigInt (runtime/avro.ts).
 *
 * | Avro                                   | value read                                   |
 * | -------------------------------------- | -------------------------------------------- |
 * | bytes/fixed, logicalType decimal       | exact decimal text, all `scale` digits: "1234.50" |
 * | int date                               | "YYYY-MM-DD" (proleptic Gregorian)           |
 * | long timestamp-millis/micros/nanos     | ISO-8601 UTC with 3/6/9 fraction digits and Z |
 * | long local-timestamp-millis/micros/nanos | the same without the Z (no zone)            |
 * | int time-millis, long time-micros/nanos | "HH:MM:SS.fff", ".ffffff", ".fffffffff"      |
 * | string uuid                            | the string                                   |
 * | long                                   | bigint                                       |
 * | bytes                                  | Buffer                                       |
 *
 * Writing takes the same text back (round trips are exact). Years outside 0000–9999 are written as
 * ISO 8601's expanded years with a sign and six digits (`-000043-03-15`, `+010000-01-01`), as
 * JavaScript's Date writes them.
 */
export function readerType(schema: object): avro.Type {
  return avro.Type.forSchema(schema as avro.Schema, {
    logicalTypes: LOGICAL_TYPES,
    // Longs (plain, or underneath one of our logical types) read as BigInt; a long with a logical
    // type we do not know stays a plain BigInt long too.
    typeHook: (s) => {
      if (typeof s !== 'object' || s === null || Array.isArray(s) || (s as { type?: unknown }).type !== 'long') return undefined;
      const logical = (s as { logicalType?: unknown }).logicalType;
      if (typeof logical === 'string' && logical in LOGICAL_TYPES && !UNDERLYING.has(s)) return undefined;
      return BIG_LONG;
    },
  });
}

/** runtime/avro.ts's BigInt long (avroType answers `long` with it). */
const BIG_LONG = avroType({ type: 'long' });

/**
 * Schemas whose underlying type is being built: the type hook then answers the BigInt long rather
 * than building the logical type again (avsc builds a logical type's underlying type from the
 * same schema object).
 */
const UNDERLYING = new WeakSet<object>();

abstract class BanyanLogical extends avro.types.LogicalType {
  constructor(schema: avro.Schema, opts?: unknown) {
    // Runs before super() on purpose: the underlying type is built inside it.
    UNDERLYING.add(schema as object);
    try {
      super(schema, opts);
    } finally {
      UNDERLYING.delete(schema as object);
    }
  }

  /** The same logical type with the same parameters reads as is; the bare underlying type is converted. */
  protected override _resolve(type: avro.Type): ((value: unknown) => unknown) | undefined {
    if (avro.Type.isType(type, 'logical:' + this.logicalName())) {
      return this.sameAs(type) ? (v) => v : undefined;
    }
    if (type.typeName === this.underlyingType.typeName) return (v) => this._fromValue(v);
    return undefined;
  }

  protected abstract logicalName(): string;
  protected sameAs(other: avro.Type): boolean {
    return JSON.stringify(other.schema()) === JSON.stringify(this.schema());
  }
}

class DecimalType extends BanyanLogical {
  private readonly scale: number;
  private readonly precision: number;
  private readonly size: number | undefined;

  constructor(schema: avro.Schema, opts?: unknown) {
    super(schema, opts);
    const s = schema as { precision?: unknown; scale?: unknown; size?: number };
    if (typeof s.precision !== 'number' || s.precision < 1) throw new Error('decimal: precision must be a positive integer');
    this.precision = s.precision;
    this.scale = typeof s.scale === 'number' ? s.scale : 0;
    this.size = s.size;
  }

  protected logicalName(): string {
    return 'decimal';
  }

  protected override _fromValue(buf: Buffer): string {
    // Up to 6 bytes (±2^47) the unscaled value is an exact number: no BigInt, no hex text.
    if (buf.length > 0 && buf.length <= 6) return unscaledText(buf.readIntBE(0, buf.length), this.scale);
    return unscaledText(fromTwosComplement(buf), this.scale);
  }

  protected override _toValue(value: unknown): Buffer | undefined {
    if (typeof value !== 'string') return undefined;
    const unscaled = unscaledOf(value, this.scale);
    if (unscaled === undefined) return undefined;
    if ((unscaled < 0n ? -unscaled : unscaled).toString().length > this.precision) return undefined;
    return toTwosComplement(unscaled, this.size);
  }

  protected override _export(schema: avro.Schema): void {
    Object.assign(schema as object, { precision: this.precision, scale: this.scale });
  }
}

class DateType extends BanyanLogical {
  protected logicalName(): string {
    return 'date';
  }

  protected override _fromValue(days: number): string {
    return dateText(days);
  }

  protected override _toValue(value: unknown): number | undefined {
    if (typeof value !== 'string') return undefined;
    const m = /^([+-]\d{6}|\d{4})-(\d{2})-(\d{2})$/.exec(value);
    if (!m) return undefined;
    const days = daysOf(Number(m[1]), Number(m[2]), Number(m[3]));
    return days === undefined ? undefined : Number(days);
  }
}

const DIGITS = { millis: 3, micros: 6, nanos: 9 } as const;
/** "00" to "99". */
const TWO = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, '0'));
type Unit = keyof typeof DIGITS;

class TimestampType extends BanyanLogical {
  private readonly digits: number;
  private readonly local: boolean;
  private readonly logical: string;

  constructor(schema: avro.Schema, opts?: unknown) {
    super(schema, opts);
    this.logical = (schema as { logicalType: string }).logicalType;
    const m = /^(local-)?timestamp-(millis|micros|nanos)$/.exec(this.logical)!;
    this.local = m[1] !== undefined;
    this.digits = DIGITS[m[2] as Unit];
  }

  protected logicalName(): string {
    return this.logical;
  }

  protected override _fromValue(units: bigint): string {
    const fast = this.shortText(units);
    if (fast !== undefined) return fast;
    const perSecond = 10n ** BigInt(this.digits);
    const perDay = 86_400n * perSecond;
    const days = floorDiv(units, perDay);
    const inDay = units - days * perDay;
    return `${dateText(Number(days))}T${timeText(inDay, this.digits)}${this.local ? '' : 'Z'}`;
  }

  /**
   * The text by number arithmetic, for instants within ±2^53 ms (beyond any calendar in use):
   * several times faster than the BigInt arithmetic below, the same text.
   */
  private shortText(units: bigint): string | undefined {
    let ms: number;
    let below = '';
    if (this.digits === 3) {
      ms = Number(units);
    } else {
      const perMs = this.digits === 6 ? 1_000n : 1_000_000n;
      const whole = floorDiv(units, perMs);
      ms = Number(whole);
      below = String(units - whole * perMs).padStart(this.digits - 3, '0');
    }
    if (!(ms >= -Number.MAX_SAFE_INTEGER && ms <= Number.MAX_SAFE_INTEGER)) return undefined;
    // Remainders, not Math.floor of a quotient: exact for every safe integer.
    const inDay = ((ms % 86_400_000) + 86_400_000) % 86_400_000;
    const days = (ms - inDay) / 86_400_000;
    const seconds = Math.floor(inDay / 1000);
    return (
      `${dateText(days)}T${TWO[Math.floor(seconds / 3600)]}:${TWO[Math.floor(seconds / 60) % 60]}:${TWO[seconds % 60]}` +
      `.${String(inDay % 1000).padStart(3, '0')}${below}${this.local ? '' : 'Z'}`
    );
  }

  protected override _toValue(value: unknown): bigint | undefined {
    if (typeof value !== 'string') return undefined;
    const m = /^([+-]\d{6}|\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z?)$/.exec(value);
    if (!m || (m[8] === 'Z') === this.local) return undefined;
    const days = daysOf(Number(m[1]), Number(m[2]), Number(m[3]));
    const inDay = timeUnits(m[4]!, m[5]!, m[6]!, m[7], this.digits);
    if (days === undefined || inDay === undefined) return undefined;
    const units = days * 86_400n * 10n ** BigInt(this.digits) + inDay;
    return units >= -(2n ** 63n) && units < 2n ** 63n ? units : undefined;
  }
}

class TimeType extends BanyanLogical {
  private readonly digits: number;
  private readonly logical: string;

  constructor(schema: avro.Schema, opts?: unknown) {
    super(schema, opts);
    this.logical = (schema as { logicalType: string }).logicalType;
    this.digits = DIGITS[this.logical.slice('time-'.length) as Unit];
  }

  protected logicalName(): string {
    return this.logical;
  }

  protected override _fromValue(units: number | bigint): string {
    return timeText(BigInt(units), this.digits);
  }

  protected override _toValue(value: unknown): number | bigint | undefined {
    if (typeof value !== 'string') return undefined;
    const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$/.exec(value);
    const units = m ? timeUnits(m[1]!, m[2]!, m[3]!, m[4], this.digits) : undefined;
    if (units === undefined) return undefined;
    // time-millis is an Avro int.
    return this.digits === 3 ? Number(units) : units;
  }
}

class UuidType extends BanyanLogical {
  protected logicalName(): string {
    return 'uuid';
  }

  protected override _fromValue(text: string): string {
    return text;
  }

  protected override _toValue(value: unknown): string | undefined {
    return typeof value === 'string' ? value : undefined;
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- avsc's own typing of the option
const LOGICAL_TYPES: Record<string, new (schema: avro.Schema, opts?: any) => avro.types.LogicalType> = {
  decimal: DecimalType,
  date: DateType,
  'timestamp-millis': TimestampType,
  'timestamp-micros': TimestampType,
  'timestamp-nanos': TimestampType,
  'local-timestamp-millis': TimestampType,
  'local-timestamp-micros': TimestampType,
  'local-timestamp-nanos': TimestampType,
  'time-millis': TimeType,
  'time-micros': TimeType,
  'time-nanos': TimeType,
  uuid: UuidType,
};

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** "HH:MM:SS.fff…" of units (10^-digits s) since midnight. */
function timeText(units: bigint, digits: number): string {
  const perSecond = 10n ** BigInt(digits);
  const seconds = Number(units / perSecond);
  const fraction = (units % perSecond).toString().padStart(digits, '0');
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(Math.floor(seconds / 3600))}:${two(Math.floor(seconds / 60) % 60)}:${two(seconds % 60)}${digits > 0 ? `.${fraction}` : ''}`;
}

function timeUnits(h: string, m: string, s: string, fraction: string | undefined, digits: number): bigint | undefined {
  if (Number(h) > 23 || Number(m) > 59 || Number(s) > 59) return undefined;
  const f = (fraction ?? '').replace(/0+$/, '');
  if (f.length > digits) return undefined;
  return BigInt(Number(h) * 3600 + Number(m) * 60 + Number(s)) * 10n ** BigInt(digits) + BigInt(f.padEnd(digits, '0') || '0');
}

/** YYYY-MM-DD of days since 1970-01-01; years outside 0000–9999 as ISO 8601's expanded years. */
function dateText(days: number): string {
  const { year, month, day } = civilFromDays(days);
  const y = year >= 0 && year <= 9999 ? String(year).padStart(4, '0') : `${year < 0 ? '-' : '+'}${String(Math.abs(year)).padStart(6, '0')}`;
  return `${y}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/** Days since 1970-01-01 of a calendar date, or undefined when it is no day of the calendar. */
function daysOf(year: number, month: number, day: number): bigint | undefined {
  return isCalendarDate(year, month, day) ? BigInt(daysFromCivil(year, month, day)) : undefined;
}

/** The unscaled value of decimal text at `scale`, or undefined when it has more fraction digits. */
function unscaledOf(text: string, scale: number): bigint | undefined {
  const m = /^([+-])?(\d+)(?:\.(\d*))?$/.exec(text);
  if (!m) return undefined;
  const fraction = (m[3] ?? '').replace(/0+$/, '');
  if (fraction.length > scale) return undefined;
  const unscaled = BigInt(`${m[2]}${fraction.padEnd(scale, '0')}`);
  return m[1] === '-' ? -unscaled : unscaled;
}
