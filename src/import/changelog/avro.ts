import { BadRecordError } from '../../core';
import type { Column, ColumnKind, TableInfo } from '../../dialects/dialect';

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

/** Avro names allow [A-Za-z0-9_] only; legacy columns may hold spaces or dashes. */
export function avroName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[A-Za-z_]/.test(cleaned) ? cleaned : `_${cleaned}`;
}

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

/** Builds, once per table, the function turning a text image into an Avro row value. */
export function rowConverter(table: TableInfo): (image: Record<string, string | null>, where: string) => Record<string, unknown> {
  const names = fieldNames(table.columns);
  const converters = table.columns.map((c, i) => ({ column: c.name, field: names[i]!, convert: converterFor(c.type) }));
  return (image, where) => {
    const row: Record<string, unknown> = {};
    for (const { column, field, convert } of converters) {
      const text = image[column];
      if (text === null || text === undefined) {
        row[field] = null;
        continue;
      }
      try {
        row[field] = convert(text);
      } catch (error) {
        throw new BadRecordError(`column "${column}" of ${where}: ${(error as Error).message}`, {
          stage: 'processing',
          code: 'UNCONVERTIBLE_VALUE',
          context: { column, value: text.slice(0, 200) },
        });
      }
    }
    return row;
  };
}

/** The key of a row: its primary-key fields, not nullable. */
export function keyConverter(table: TableInfo): (image: Record<string, string | null>, where: string) => Record<string, unknown> {
  const toRow = rowConverter(table);
  const names = fieldNames(table.columns);
  const keyFields = table.primaryKey.map((k) => names[table.columns.findIndex((c) => c.name === k)]!);
  return (image, where) => {
    const row = toRow(image, where);
    const key: Record<string, unknown> = {};
    for (const field of keyFields) {
      if (row[field] === null || row[field] === undefined) {
        throw new BadRecordError(`primary-key field "${field}" of ${where} is null`, { stage: 'processing', code: 'NULL_KEY' });
      }
      key[field] = row[field];
    }
    return key;
  };
}

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
        return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / 86_400_000;
      };
    case 'time': {
      const digits = kind.precision > 6 ? 9 : 6;
      return (t) => {
        const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$/.exec(t);
        if (!m) throw new Error(`"${t}" is not a time (HH:MM:SS[.fraction])`);
        const seconds = BigInt(Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]));
        return seconds * 10n ** BigInt(digits) + fraction(m[4], digits);
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

/** 'YYYY-MM-DD HH:MM:SS.fffffff' (UTC, or local for timestamps without zone) → units since the epoch. */
function timestampToUnits(t: string, digits: number): bigint {
  const m = TIMESTAMP.exec(t);
  if (!m) throw new Error(`"${t}" is not a timestamp (YYYY-MM-DD HH:MM:SS[.fraction], UTC)`);
  const seconds = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000;
  return BigInt(seconds) * 10n ** BigInt(digits) + fraction(m[7], digits);
}

/** The fraction digits scaled to `digits` places; more precision than the type holds is an error. */
function fraction(text: string | undefined, digits: number): bigint {
  if (!text) return 0n;
  const trimmed = text.replace(/0+$/, '');
  if (trimmed.length > digits) throw new Error(`fraction .${text} has more than ${digits} digits`);
  return BigInt(trimmed.padEnd(digits, '0') || '0');
}

/** A plain decimal string → Avro decimal bytes (big-endian two's complement of the unscaled value). */
export function decimalToBytes(text: string, scale: number): Buffer {
  const m = /^([+-])?(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!m || (m[2] === '' && !m[3])) throw new Error(`"${text}" is not a decimal number`);
  const fractionDigits = (m[3] ?? '').replace(/0+$/, '');
  if (fractionDigits.length > scale) throw new Error(`"${text}" has more than ${scale} decimal places`);
  let unscaled = BigInt(`${m[2] || '0'}${fractionDigits.padEnd(scale, '0')}`);
  if (m[1] === '-') unscaled = -unscaled;
  return bigintToTwosComplement(unscaled);
}

function bigintToTwosComplement(value: bigint): Buffer {
  let width = 1;
  while (value >= 1n << BigInt(8 * width - 1) || value < -(1n << BigInt(8 * width - 1))) width++;
  const unsigned = value < 0n ? (1n << BigInt(8 * width)) + value : value;
  return Buffer.from(unsigned.toString(16).padStart(width * 2, '0'), 'hex');
}

/** The inverse of decimalToBytes, for tests and for sinks reading decimals back. */
export function bytesToDecimal(bytes: Buffer, scale: number): string {
  let value = bytes.length === 0 ? 0n : BigInt(`0x${bytes.toString('hex')}`);
  if (bytes.length > 0 && bytes[0]! & 0x80) value -= 1n << BigInt(bytes.length * 8);
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(scale + 1, '0');
  const text = scale > 0 ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return negative ? `-${text}` : text;
}
