import avro from 'avsc';
import type { EventDefinition, EventFieldType } from './event';
import { bytesToDecimal, dateToDays, daysToDate, decimalToUnscaled, unscaledToBytes } from './values';

/**
 * The Avro schemas of the domain topics, and avsc types that read and write them with the
 * JavaScript values of event.ts: decimals as exact strings, dates as 'YYYY-MM-DD', timestamps as
 * ms numbers, longs as BigInt.
 *
 * One value schema per topic: the envelope, and `data`, a union of one record per event type of
 * the topic (every field optional, so adding a field stays a compatible change). One key schema
 * per entity: a record of its key fields, all strings.
 */
export const NAMESPACE = 'banyan.domain';

export type AvroSchema = Record<string, unknown>;

/** 'user' → 'User', 'order_line' → 'OrderLine': the entity's part of the record names. */
export function pascal(entity: string): string {
  return entity
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
}

export function avroFieldType(type: EventFieldType): unknown {
  if (typeof type === 'object') return { type: 'bytes', logicalType: 'decimal', precision: type.decimal.precision, scale: type.decimal.scale };
  switch (type) {
    case 'date':
      return { type: 'int', logicalType: 'date' };
    case 'timestamp':
      return { type: 'long', logicalType: 'timestamp-millis' };
    default:
      return type;
  }
}

export function keySchema(entity: string, keyFields: readonly string[]): AvroSchema {
  return {
    type: 'record',
    name: `${pascal(entity)}Key`,
    namespace: NAMESPACE,
    doc: `The key of entity ${entity}: its key fields as text.`,
    fields: keyFields.map((name) => ({ name, type: 'string' })),
  };
}

/** The record of one event type: its data fields, each null by default (a deleted-kind event has none). */
export function eventRecordSchema(event: EventDefinition): AvroSchema {
  return {
    type: 'record',
    name: event.name,
    namespace: NAMESPACE,
    ...(event.doc ? { doc: event.doc } : {}),
    fields: Object.entries(event.fields).map(([name, spec]) => ({
      name,
      type: ['null', avroFieldType(spec.type)],
      default: null,
      ...(spec.doc ? { doc: spec.doc } : {}),
    })),
  };
}

/** The value schema of a topic whose events are `events` (all of one entity), in catalog order. */
export function valueSchema(entity: string, events: readonly EventDefinition[]): AvroSchema {
  const string = (name: string, doc: string) => ({ name, type: 'string', doc });
  return {
    type: 'record',
    name: `${pascal(entity)}Event`,
    namespace: NAMESPACE,
    doc: `Canonical events of entity ${entity}: ${events.map((e) => e.name).join(', ')}.`,
    fields: [
      { name: 'eventId', type: { type: 'string', logicalType: 'uuid' }, doc: 'Deterministic from the causation and the event type: a replay makes the same id.' },
      string('type', 'The event type: the name of the data branch.'),
      string('entity', 'The entity (change type) the event is about.'),
      string('entityId', 'The entity id as text: a simple key as it is, a composite key by the rule of docs/domain.md.'),
      { name: 'entityKey', type: { type: 'map', values: 'string' }, doc: 'The key fields by name.' },
      { name: 'sourceCommitTime', type: { type: 'long', logicalType: 'timestamp-millis' }, doc: 'When the change committed at its source.' },
      string('origin', 'The system the change came from: legacy, salesforce or domain (a string, so a new system is no breaking change).'),
      {
        name: 'causation',
        doc: 'The source record the event was made of.',
        type: {
          type: 'record',
          name: 'Causation',
          fields: [
            { name: 'topic', type: 'string' },
            { name: 'partition', type: 'int' },
            { name: 'offset', type: 'string' },
          ],
        },
      },
      string('correlationId', 'Shared by the events of one source change.'),
      { name: 'changedFields', type: { type: 'array', items: 'string' }, doc: 'The data fields this change changed.' },
      { name: 'knownFields', type: { type: 'array', items: 'string' }, doc: 'The data fields whose value is the current one; a field not named is unknown.' },
      { name: 'schemaVersion', type: 'int', doc: 'The version of the event definition that made the event.' },
      { name: 'data', type: events.map(eventRecordSchema), doc: 'The event type’s own fields.' },
    ],
  };
}

// The logical types. `_resolve` lets a reader schema read a writer that has the same logical
// type (the value is already converted) or only its underlying type (converted here).

class DecimalString extends avro.types.LogicalType {
  readonly precision: number;
  readonly scale: number;
  constructor(schema: avro.Schema, opts?: avro.ForSchemaOptions) {
    super(schema, opts);
    const { precision, scale = 0 } = schema as unknown as { precision: number; scale?: number };
    if (!Number.isInteger(precision) || precision < 1 || !Number.isInteger(scale) || scale < 0 || scale > precision) {
      throw new Error(`invalid decimal(${precision},${scale})`);
    }
    this.precision = precision;
    this.scale = scale;
  }
  override _fromValue(bytes: Buffer): string {
    return bytesToDecimal(bytes, this.scale);
  }
  override _toValue(text: string): Buffer {
    return unscaledToBytes(decimalToUnscaled(text, this.precision, this.scale));
  }
  override _resolve(type: avro.Type): ((value: unknown) => unknown) | undefined {
    if (type instanceof DecimalString && type.scale === this.scale) return (value) => value;
    if (avro.Type.isType(type, 'bytes')) return (value) => this._fromValue(value as Buffer);
    return undefined;
  }
}

class DateString extends avro.types.LogicalType {
  override _fromValue(days: number): string {
    return daysToDate(days);
  }
  override _toValue(text: string): number {
    return dateToDays(text);
  }
  override _resolve(type: avro.Type): ((value: unknown) => unknown) | undefined {
    if (type instanceof DateString) return (value) => value;
    if (avro.Type.isType(type, 'int')) return (value) => this._fromValue(value as number);
    return undefined;
  }
}

class TimestampMillis extends avro.types.LogicalType {
  override _fromValue(ms: number | bigint): number {
    return Number(ms);
  }
  override _toValue(ms: number): number {
    if (!Number.isSafeInteger(ms)) throw new Error(`${String(ms)} is not a whole number of ms`);
    return ms;
  }
  override _resolve(type: avro.Type): ((value: unknown) => unknown) | undefined {
    if (type instanceof TimestampMillis) return (value) => value;
    if (avro.Type.isType(type, 'long', 'int')) return (value) => this._fromValue(value as number);
    return undefined;
  }
}

/** Plain longs as BigInt: a long event field keeps every digit. */
const BigIntLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(n);
    return buf;
  },
  fromJSON: (n: number | string) => BigInt(n),
  toJSON: (n: bigint) => Number(n),
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

/** An avsc type for a domain schema (or any writer schema of a domain topic) with the values of event.ts. */
export function domainAvroType(schema: object): avro.Type {
  return avro.Type.forSchema(schema as avro.Schema, {
    registry: { long: BigIntLong },
    // A writer schema may spell a long as {"type": "long"}, which the registry entry does not reach.
    typeHook: (s) => (typeof s === 'object' && !Array.isArray(s) && (s as { type?: unknown }).type === 'long' && !('logicalType' in s) ? BigIntLong : undefined),
    logicalTypes: { decimal: DecimalString, date: DateString, 'timestamp-millis': TimestampMillis },
    // A wrong decimal in a schema is an error here, not a silent fall back to raw bytes.
    assertLogicalTypes: true,
  });
}
