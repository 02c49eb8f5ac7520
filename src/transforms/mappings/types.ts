import type { EventFieldType } from '../../domain/event';
import { typeName } from '../../domain/values';
import { decimalText, integerDigits, isInteger, parseDecimal, rescale } from './decimal';

/**
 * The type of an input column (or Salesforce field) as the logical-type-aware reader
 * (runtime/avro-logical.ts) gives its values, so a mapping's types can be checked before it runs.
 */
export type ValueKind =
  | { type: 'string' }
  | { type: 'uuid' }
  | { type: 'int' }
  | { type: 'long' }
  | { type: 'float' }
  | { type: 'double' }
  | { type: 'boolean' }
  | { type: 'bytes' }
  /** `wholeDigitsPerValue`: made of a whole-number column (a bigint of cents): its integer digits are checked per value. */
  | { type: 'decimal'; precision: number; scale: number; wholeDigitsPerValue?: boolean }
  | { type: 'date' }
  | { type: 'time' }
  | { type: 'timestamp'; local: boolean; digits: number }
  /** Not known before the value arrives (checked per value). */
  | { type: 'any' };

/** A column of a legacy table's changelog topic, or a field of a Salesforce object, with its type. */
export interface InputColumn {
  /** The column's name as in the table (`first_name`), or the Salesforce field (`MailingAddress.City`). */
  name: string;
  type: ValueKind;
  /** The Avro field of a legacy row that holds it, when it is not avroName(name) (two names that clean to one). */
  field?: string;
}

export function kindText(kind: ValueKind): string {
  switch (kind.type) {
    case 'decimal':
      return `decimal(${kind.precision},${kind.scale})`;
    case 'timestamp':
      return `${kind.local ? 'local-' : ''}timestamp (${kind.digits} fraction digits)`;
    default:
      return kind.type;
  }
}

/**
 * Why values of `kind` cannot be written to a field of `type`, or undefined when they can (every
 * value, or each value checked as it comes: a double into a decimal, a microsecond timestamp into
 * a millisecond one, where a value that would lose a digit is dead-lettered).
 */
export function mismatch(kind: ValueKind, type: EventFieldType): string | undefined {
  if (kind.type === 'any') return undefined;
  const ok = (() => {
    if (typeof type === 'object') {
      if (kind.type === 'decimal') {
        return kind.scale <= type.decimal.scale && (kind.wholeDigitsPerValue || kind.precision - kind.scale <= type.decimal.precision - type.decimal.scale);
      }
      // A whole-number column names no size below its 10 or 19 digits: each value is checked.
      return kind.type === 'int' || kind.type === 'long' || kind.type === 'double' || kind.type === 'float';
    }
    switch (type) {
      case 'string':
        return kind.type === 'string' || kind.type === 'uuid';
      case 'int':
        return kind.type === 'int';
      case 'long':
        return kind.type === 'int' || kind.type === 'long';
      case 'double':
        return kind.type === 'int' || kind.type === 'float' || kind.type === 'double';
      case 'boolean':
        return kind.type === 'boolean';
      case 'date':
        return kind.type === 'date';
      case 'timestamp':
        return kind.type === 'timestamp' && !kind.local;
    }
  })();
  if (ok) return undefined;
  const hint =
    kind.type === 'timestamp' && kind.local
      ? ': a timestamp without a zone names no instant'
      : kind.type === 'decimal' && typeof type === 'object'
        ? ': its values may not fit (add a unit change, or widen the event field)'
        : '';
  return `is ${kindText(kind)}, the event field is ${typeName(type)}${hint}`;
}

/** A value that cannot become the event field's value; the input goes to the dead-letter topic. */
export class ValueError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ValueError';
  }
}

const ISO_ZONED = /^([+-]\d{6}|\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?Z$/;

/**
 * A value as the event field's type holds it (domain/event.ts EventFieldType): exact or refused,
 * never rounded. Null stays null.
 */
export function coerce(value: unknown, type: EventFieldType): unknown {
  if (value === null || value === undefined) return null;
  if (typeof type === 'object') {
    const d = parseDecimal(value);
    if (!d || typeof value === 'boolean') return refusal(value, type);
    const scaled = rescale(d, type.decimal.scale);
    if (!scaled) throw new ValueError('LOSSY_VALUE', `${show(value)} has more than ${type.decimal.scale} decimal places (event field ${typeName(type)})`);
    if (integerDigits(scaled) > type.decimal.precision - type.decimal.scale) {
      throw new ValueError('OUT_OF_RANGE', `${show(value)} does not fit ${typeName(type)}`);
    }
    return decimalText(scaled);
  }
  switch (type) {
    case 'string':
      return typeof value === 'string' ? value : refusal(value, type);
    case 'boolean':
      return typeof value === 'boolean' ? value : refusal(value, type);
    case 'int': {
      const d = typeof value === 'string' ? undefined : parseDecimal(value);
      if (!d || !isInteger(d)) return refusal(value, type);
      const n = Number(rescale(d, 0)!.unscaled);
      return n >= -2147483648 && n <= 2147483647 ? n : refusal(value, type, ' (beyond 32 bits)');
    }
    case 'long': {
      const d = typeof value === 'string' ? undefined : parseDecimal(value);
      if (!d || !isInteger(d)) return refusal(value, type);
      const n = rescale(d, 0)!.unscaled;
      return n >= -(2n ** 63n) && n < 2n ** 63n ? n : refusal(value, type, ' (beyond 64 bits)');
    }
    case 'double':
      if (typeof value === 'number') return value;
      if (typeof value === 'bigint' && value <= 2n ** 53n && value >= -(2n ** 53n)) return Number(value);
      return refusal(value, type);
    case 'date':
      return typeof value === 'string' && /^([+-]\d{6}|\d{4})-\d{2}-\d{2}$/.test(value) ? value : refusal(value, type, ' (YYYY-MM-DD)');
    case 'timestamp': {
      const m = typeof value === 'string' ? ISO_ZONED.exec(value) : null;
      if (!m) return refusal(value, type, ' (an ISO-8601 time in UTC, ending in Z)');
      if (m[7] && m[7].length > 3 && !/^0*$/.test(m[7].slice(3))) {
        throw new ValueError('LOSSY_VALUE', `${show(value)} has digits below the millisecond, which the event field (timestamp, ms) cannot hold`);
      }
      const ms = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${(m[7] ?? '').slice(0, 3).padEnd(3, '0')}Z`);
      return Number.isNaN(ms) ? refusal(value, type) : ms;
    }
  }
}

/** The TYPE_MISMATCH error of a value that is no value of the field's type (thrown). */
function refusal(value: unknown, type: EventFieldType, why = ''): never {
  throw new ValueError('TYPE_MISMATCH', `${show(value)} is no ${typeName(type)}${why}`);
}

/** A value for a reason text: strings quoted and cut. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'bigint') return String(value);
  if (Buffer.isBuffer(value)) return `bytes(${value.length})`;
  return JSON.stringify(value) ?? String(value);
}

/**
 * The columns of a legacy changelog topic, from its value schema (src/import/changelog/avro.ts
 * tableSchemas: each row field carries its column's name as `banyan.column`), for validateTransforms.
 */
export function legacyColumnsFromSchema(valueSchema: object): InputColumn[] {
  const fields = (valueSchema as { fields?: Array<{ name: string; type: unknown }> }).fields ?? [];
  const before = fields.find((f) => f.name === 'before' || f.name === 'after');
  const row = Array.isArray(before?.type) ? (before.type as unknown[]).find((t) => typeof t === 'object') : undefined;
  const rowFields = (row as { fields?: Array<Record<string, unknown>> } | undefined)?.fields ?? [];
  return rowFields.map((f) => {
    const type = Array.isArray(f.type) ? (f.type as unknown[]).find((t) => t !== 'null') : f.type;
    return { name: String(f['banyan.column'] ?? f.name), field: String(f.name), type: kindOfAvro(type) };
  });
}

/** The ValueKind of an Avro type as readerType reads it. */
export function kindOfAvro(type: unknown): ValueKind {
  if (typeof type === 'string') {
    if (type === 'string' || type === 'int' || type === 'long' || type === 'float' || type === 'double' || type === 'boolean' || type === 'bytes') {
      return { type };
    }
    return { type: 'any' };
  }
  const t = (type ?? {}) as { type?: string; logicalType?: string; precision?: number; scale?: number };
  const logical = t.logicalType ?? '';
  if (logical === 'decimal') return { type: 'decimal', precision: t.precision ?? 0, scale: t.scale ?? 0 };
  if (logical === 'date') return { type: 'date' };
  if (logical === 'uuid') return { type: 'uuid' };
  if (logical.startsWith('time-')) return { type: 'time' };
  const ts = /^(local-)?timestamp-(millis|micros|nanos)$/.exec(logical);
  if (ts) return { type: 'timestamp', local: ts[1] !== undefined, digits: { millis: 3, micros: 6, nanos: 9 }[ts[2] as 'millis'] };
  return kindOfAvro(t.type);
}
