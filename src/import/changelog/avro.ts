import { BadRecordError, daysFromCivil, daysInMonth, fromTwosComplement, toTwosComplement, unscaledText } from '../../core';
import type { Column, ColumnKind, TableInfo } from '../../dialects/dialect';
import type { AvroOutput } from '../../runtime/avro-output';
import { avroName } from '../../runtime/avro';

/**
 * Avro schemas derived from a legacy table, and the conversion of the changelog's text images to
 * Avro values. Longs are BigInt (see runtime/avro.ts), so BIGINT and nanosecond timestamps keep
 * every digit.
 *
 * Every row field is optional (a union with null, default null) whatever the column's
 * nullability: a column added or dropped later must remain a compatible schema change for the
 * registry. The column's NOT NULL is kept as the field attribute `banyan.nullable: false`.
 */
export type AvroSchema = Record<string, unknown>;

export function avroTypeOf(kind: ColumnKind): unknown {
  switch (kind.kind) {
    case 'boolean':
      return 'boolean';
    case 'int':
      return 'int';
    case 'long':
      return 'long';
    case 'float':
      return 'float';
    case 'double':
      return 'double';
    case 'decimal':
      return { type: 'bytes', logicalType: 'decimal', precision: kind.precision, scale: kind.scale };
    case 'uuid':
      return { type: 'string', logicalType: 'uuid' };
    case 'bytes':
      return 'bytes';
    case 'date':
      return { type: 'int', logicalType: 'date' };
    case 'time':
      return { type: 'long', logicalType: kind.precision > 6 ? 'time-nanos' : 'time-micros' };
    case 'timestamp':
      return { type: 'long', logicalType: `local-timestamp-${timeUnit(kind.precision)}` };
    case 'timestamptz':
      return { type: 'long', logicalType: `timestamp-${timeUnit(kind.precision)}` };
    case 'string':
    case 'json':
    case 'other':
      return 'string';
  }
}

function timeUnit(precision: number): 'millis' | 'micros' | 'nanos' {
  return precision <= 3 ? 'millis' : precision <= 6 ? 'micros' : 'nanos';
}

export { avroName };

/** Field names for the columns, unique even when two columns clean up to the same name. */
export function fieldNames(columns: Column[]): string[] {
  const used = new Set<string>();
  return columns.map((c) => {
    let name = avroName(c.name);
    for (let i = 2; used.has(name); i++) name = `${avroName(c.name)}_${i}`;
    used.add(name);
    return name;
  });
}

export interface TableSchemas {
  key: AvroSchema;
  value: AvroSchema;
}

export function tableSchemas(table: TableInfo, database: string): TableSchemas {
  const namespace = ['banyan', 'legacy', database, table.schema, table.name].filter(Boolean).map((p) => avroName(p!)).join('.');
  const names = fieldNames(table.columns);
  const rowFields = table.columns.map((c, i) => ({
    name: names[i],
    type: ['null', avroTypeOf(c.type)],
    default: null,
    'banyan.column': c.name,
    'banyan.sqlType': c.sqlType,
    ...(c.nullable ? {} : { 'banyan.nullable': false }),
  }));
  const keyFields = table.primaryKey.map((k) => {
    const column = table.columns.find((c) => c.name === k)!;
    return { name: names[table.columns.indexOf(column)], type: avroTypeOf(column.type), 'banyan.column': k };
  });
  const row = { type: 'record', name: 'Row', fields: rowFields };
  return {
    key: { type: 'record', name: 'Key', namespace, fields: keyFields },
    value: {
      type: 'record',
      name: 'Change',
      namespace,
      doc: `Changes of legacy table ${[table.schema, table.name].filter(Boolean).join('.')} in ${database}`,
      fields: [
        { name: 'op', type: 'string', doc: 'insert | update | delete | snapshot' },
        { name: 'before', type: ['null', row], default: null },
        { name: 'after', type: ['null', 'Row'], default: null },
        {
          name: 'source',
          type: {
            type: 'record',
            name: 'Source',
            fields: [
              { name: 'database', type: 'string' },
              { name: 'table', type: 'string' },
              { name: 'position', type: 'string', doc: 'the changelog position, sortable as text' },
              { name: 'changedAt', type: { type: 'long', logicalType: 'timestamp-millis' } },
              { name: 'origin', type: ['null', 'string'], default: null, doc: 'the writer’s tag; Banyan’s own writes carry one' },
            ],
          },
        },
      ],
    },
  };
}

type Converter = (text: string) => unknown;

export function converterFor(kind: ColumnKind): Converter {
  switch (kind.kind) {
    case 'boolean':
      return (t) => {
        if (t === 'true' || t === 't' || t === '1') return true;
        if (t === 'false' || t === 'f' || t === '0') return false;
        throw new Error(`"${t}" is not a boolean`);
      };
    case 'int':
      return (t) => {
        const n = Number(t);
        if (!Number.isInteger(n) || n < -2147483648 || n > 2147483647) throw new Error(`"${t}" is not a 32-bit integer`);
        return n;
      };
    case 'long':
      return (t) => {
        if (!/^-?\d+$/.test(t)) throw new Error(`"${t}" is not an integer`);
        return BigInt(t);
      };
    case 'float':
    case 'double':
      return (t) => {
        const n = Number(t.replace(/^(-?)inf(inity)?$/i, '$1Infinity'));
        if (Number.isNaN(n) && !/^nan$/i.test(t)) throw new Error(`"${t}" is not a number`);
        return n;
      };
    case 'decimal':
      return (t) => decimalToBytes(t, kind.scale);
    case 'uuid':
      return (t) => {
        if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(t)) throw new Error(`"${t}" is not a UUID`);
        return t.toLowerCase();
      };
    case 'bytes':
      return (t) => {
        const hex = t.replace(/^(\\x|0x)/i, '');
        if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) throw new Error('not a hexadecimal byte string');
        return Buffer.from(hex, 'hex');
      };
    case 'date':
      return (t) => {
        const m = /^(-?\d{4,})-(\d{2})-(\d{2})$/.exec(t);
        if (!m) throw new Error(`"${t}" is not a date (YYYY-MM-DD)`);
        return daysFromCivil(...validDate(t, Number(m[1]), Number(m[2]), Number(m[3])));
      };
    case 'time': {
      const digits = kind.precision > 6 ? 9 : 6;
      return (t) => {
        const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$/.exec(t);
        if (!m) throw new Error(`"${t}" is not a time (HH:MM:SS[.fraction])`);
        const seconds = BigInt(Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]));
        return seconds * BigInt(SCALE[digits]!) + BigInt(fractionUnits(m[4], digits));
      };
    }
    case 'timestamp':
    case 'timestamptz': {
      const digits = kind.precision <= 3 ? 3 : kind.precision <= 6 ? 6 : 9;
      return (t) => timestampToUnits(t, digits);
    }
    case 'string':
    case 'json':
    case 'other':
      return (t) => t;
  }
}

const TIMESTAMP = /^(-?\d{4,})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]00(?::?00)?)?$/;
const SCALE = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

/** 'YYYY-MM-DD HH:MM:SS.fffffff' (UTC, or local for timestamps without zone) → units since the epoch. */
function timestampToUnits(t: string, digits: number): bigint {
  const m = TIMESTAMP.exec(t);
  if (!m) throw new Error(`"${t}" is not a timestamp (YYYY-MM-DD HH:MM:SS[.fraction], UTC)`);
  if (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6]) > 59) throw new Error(`"${t}" is not a valid time of day`);
  const seconds = daysFromCivil(...validDate(t, Number(m[1]), Number(m[2]), Number(m[3]))) * 86_400 + Number(m[4]) * 3600 + Number(m[5]) * 60 + Number(m[6]);
  const part = fractionUnits(m[7], digits);
  // Within ±285 years of 1970 micro- and milliseconds are exact numbers: one BigInt at the end.
  if (digits <= 6 && Math.abs(seconds) < 9_000_000_000) return BigInt(seconds * SCALE[digits]! + part);
  return BigInt(seconds) * BigInt(SCALE[digits]!) + BigInt(part);
}

/**
 * The date's parts if it exists in the proleptic Gregorian calendar. MySQL's zero date
 * (0000-00-00) and invalid dates kept under ALLOW_INVALID_DATES (2024-02-30) have no Avro date:
 * daysFromCivil would roll them over (to 2024-03-01), so they are refused, never shifted.
 */
function validDate(text: string, year: number, month: number, day: number): [number, number, number] {
  if (month < 1 || month > 12 || day < 1) throw new Error(`"${text}" is not a calendar date (a zero date or a zero month or day)`);
  const last = daysInMonth(year, month);
  if (day > last) throw new Error(`"${text}" is not a calendar date (month ${month} of ${year} has ${last} days)`);
  return [year, month, day];
}

/** The fraction digits as units of 10^-digits; more precision than the type holds is an error. */
function fractionUnits(text: string | undefined, digits: number): number {
  if (!text) return 0;
  let length = text.length;
  while (length > 0 && text.charCodeAt(length - 1) === 48) length--;
  if (length > digits) throw new Error(`fraction .${text} has more than ${digits} digits`);
  return length === 0 ? 0 : Number(text.slice(0, length)) * SCALE[digits - length]!;
}

/** A plain decimal string → Avro decimal bytes (big-endian two's complement of the unscaled value). */
export function decimalToBytes(text: string, scale: number): Buffer {
  const m = /^([+-])?(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!m || (m[2] === '' && !m[3])) throw new Error(`"${text}" is not a decimal number`);
  const fractionDigits = (m[3] ?? '').replace(/0+$/, '');
  if (fractionDigits.length > scale) throw new Error(`"${text}" has more than ${scale} decimal places`);
  const digits = `${m[2] || '0'}${fractionDigits.padEnd(scale, '0')}`;
  // Up to 15 digits the unscaled value is an exact number: no BigInt needed.
  if (digits.length <= 15) {
    const n = Number(digits);
    return numberToTwosComplement(m[1] === '-' ? -n : n);
  }
  let unscaled = BigInt(digits);
  if (m[1] === '-') unscaled = -unscaled;
  return toTwosComplement(unscaled)!;
}

/** The shortest big-endian two's complement of a safe integer. */
function numberToTwosComplement(value: number): Buffer {
  let width = 1;
  while (value >= 2 ** (8 * width - 1) || value < -(2 ** (8 * width - 1))) width++;
  const bytes = Buffer.allocUnsafe(width);
  let v = value < 0 ? 2 ** (8 * width) + value : value;
  for (let i = width - 1; i >= 0; i--) {
    bytes[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return bytes;
}

/** The inverse of decimalToBytes, for tests and for sinks reading decimals back. */
export function bytesToDecimal(bytes: Buffer, scale: number): string {
  return unscaledText(fromTwosComplement(bytes), scale);
}

/** Writes one converted value in its Avro type's binary form. */
type ValueWriter = (out: AvroOutput, text: string) => void;

function writerFor(kind: ColumnKind): ValueWriter {
  const convert = converterFor(kind);
  switch (kind.kind) {
    case 'boolean':
      return (out, t) => out.boolean(convert(t) as boolean);
    case 'int':
    case 'date':
      return (out, t) => out.long(convert(t) as number);
    case 'long':
      // Up to 15 digits the number path is exact and skips a BigInt.
      return (out, t) => (t.length <= 15 && /^-?\d+$/.test(t) ? out.long(Number(t)) : out.bigLong(convert(t) as bigint));
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return (out, t) => out.bigLong(convert(t) as bigint);
    case 'float':
      return (out, t) => out.float(convert(t) as number);
    case 'double':
      return (out, t) => out.double(convert(t) as number);
    case 'decimal':
    case 'bytes':
      return (out, t) => out.bytes(convert(t) as Buffer);
    case 'uuid':
    case 'string':
    case 'json':
    case 'other':
      return (out, t) => out.string(convert(t) as string);
  }
}

export interface ChangeEncoder {
  /** The key record's Avro body from an image's key columns. */
  key(out: AvroOutput, image: Record<string, string | null>, where: string): Buffer;
  /** The change record's Avro body (the value schema of tableSchemas). */
  value(out: AvroOutput, op: string, change: ChangeValue, where: string): Buffer;
  /** Columns the last `value` wrote as null under `invalidDates: null` (for the record's header). */
  nulled(): string[];
}

/**
 * What becomes of a date or timestamp that is no calendar date (MySQL's zero date, an invalid
 * date kept under ALLOW_INVALID_DATES, PostgreSQL's infinity): `dead-letter` (the default) sends
 * the row to the dead-letter topic; `null` writes null in a nullable column (Debezium's rule for
 * zero dates) and names the column in the record's header; a NOT NULL column is dead-lettered.
 */
export type InvalidDates = 'dead-letter' | 'null';

const CALENDAR_SHAPE = /^(-?\d{4,})-(\d{2})-(\d{2})(?:$|[T ])/;

/** A value shaped as a date that names no day of the calendar, or an infinity. */
function isNonCalendarDate(text: string): boolean {
  if (/^[+-]?infinity$/i.test(text)) return true;
  const m = CALENDAR_SHAPE.exec(text);
  if (!m) return false;
  try {
    validDate(text, Number(m[1]), Number(m[2]), Number(m[3]));
    return false;
  } catch {
    return true;
  }
}

const TEMPORAL = new Set<ColumnKind['kind']>(['date', 'timestamp', 'timestamptz']);

export interface ChangeValue {
  before: Record<string, string | null> | null;
  after: Record<string, string | null> | null;
  position: string;
  changedAt: number;
  origin: string | null;
}

/**
 * Writes changes of `table` straight from their text images into Avro's binary form of the
 * schemas tableSchemas gives, with the same conversions as rowConverter/keyConverter (the spec
 * checks both paths give the same bytes): no JavaScript row objects in between.
 */
export function changeEncoder(table: TableInfo, database: string, tableLabel: string, invalidDates: InvalidDates = 'dead-letter'): ChangeEncoder {
  const names = fieldNames(table.columns);
  const columns = table.columns.map((c, i) => ({
    column: c.name,
    field: names[i]!,
    write: writerFor(c.type),
    nullsInvalid: invalidDates === 'null' && c.nullable && TEMPORAL.has(c.type.kind),
  }));
  let nulled: string[] = [];
  const keyColumns = table.primaryKey.map((k) => columns[table.columns.findIndex((c) => c.name === k)]!);

  const writeValue = (out: AvroOutput, column: string, write: ValueWriter, text: string, where: string) => {
    try {
      write(out, text);
    } catch (error) {
      throw new BadRecordError(`column "${column}" of ${where}: ${(error as Error).message}`, {
        stage: 'processing',
        code: 'UNCONVERTIBLE_VALUE',
        context: { column, value: text.slice(0, 200) },
      });
    }
  };
  const writeRow = (out: AvroOutput, image: Record<string, string | null> | null, where: string) => {
    if (image === null) return out.branch(0);
    out.branch(1);
    for (const { column, write, nullsInvalid } of columns) {
      const text = image[column];
      if (text === null || text === undefined) {
        out.branch(0);
      } else if (nullsInvalid && isNonCalendarDate(text)) {
        out.branch(0);
        if (!nulled.includes(column)) nulled.push(column);
      } else {
        out.branch(1);
        writeValue(out, column, write, text, where);
      }
    }
  };
  return {
    key(out, image, where) {
      const mark = out.mark();
      try {
        for (const { column, field, write } of keyColumns) {
          const text = image[column];
          if (text === null || text === undefined) {
            throw new BadRecordError(`primary-key field "${field}" of ${where} is null`, { stage: 'processing', code: 'NULL_KEY' });
          }
          writeValue(out, column, write, text, where);
        }
      } catch (error) {
        out.rewind(mark);
        throw error;
      }
      return out.since(mark);
    },
    value(out, op, change, where) {
      const mark = out.mark();
      nulled = [];
      try {
        out.string(op);
        writeRow(out, change.before, where);
        writeRow(out, change.after, where);
        out.string(database);
        out.string(tableLabel);
        out.string(change.position);
        out.long(change.changedAt);
        if (change.origin === null) out.branch(0);
        else {
          out.branch(1);
          out.string(change.origin);
        }
      } catch (error) {
        out.rewind(mark);
        throw error;
      }
      return out.since(mark);
    },
    nulled: () => nulled,
  };
}
