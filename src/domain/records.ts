import { createHash } from 'node:crypto';
import { BadRecordError, Headers, type SourceRecord } from '../core';
import type { EventCatalog } from './catalog';
import { toAvroValue } from './codec';
import type { Causation, DomainEvent } from './event';

/** Headers of domain records besides the core ones (origin, change time). */
export const DomainHeaders = {
  eventType: 'banyan.event.type',
  entity: 'banyan.entity',
} as const;

/**
 * A deterministic, UUID-shaped id (version 5 bits) from the source record and the event's place
 * among those it made: a replay of the same input makes the same ids, so consumers can drop
 * repeats by id.
 */
export function eventId(causation: Causation, type: string, index: number): string {
  return uuidOf(`${causation.topic}\u0000${causation.partition}\u0000${causation.offset}\u0000${type}\u0000${index}`);
}

/** The correlation id of every event made of one source record: deterministic too. */
export function correlationId(causation: Causation): string {
  return uuidOf(`${causation.topic}\u0000${causation.partition}\u0000${causation.offset}`);
}

function uuidOf(text: string): string {
  const bytes = createHash('sha256').update(text).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The event as records for the transform runner: its topic's record, keyed by the entity key, with
 * key and value already Avro-encoded (bodies without the registry's framing) for the topic's
 * schemas, the same schema objects on every record of a topic. A deleted-kind event is followed by
 * a tombstone of the same key, both in one group (written all or none), so a compacted topic
 * forgets the entity. Throws a BadRecordError for an event that does not fit its definition.
 */
export function eventRecords(event: DomainEvent, catalog: EventCatalog): SourceRecord[] {
  const value = toAvroValue(event, catalog);
  const definition = catalog.definition(event.type)!;
  const { topic } = definition;
  const schema = catalog.schemas(topic);
  const types = catalog.types(topic);
  const key: Record<string, string> = {};
  for (const field of definition.key!) key[field] = event.entityKey[field]!;
  let encodedValue: Buffer;
  try {
    encodedValue = types.value.toBuffer(value);
  } catch (error) {
    // checkEvent passed, so this is a catalog defect rather than bad data; still name the event.
    throw new BadRecordError(`event ${event.type} of ${event.entity} "${event.entityId}" cannot be encoded for ${topic}: ${(error as Error).message}`, {
      stage: 'processing',
      code: 'AVRO_ENCODE',
    });
  }
  const encodedKey = types.key.toBuffer(key);
  const headers: Record<string, string> = {
    [Headers.origin]: event.origin,
    [Headers.changeTime]: new Date(event.sourceCommitTime).toISOString(),
    [DomainHeaders.eventType]: event.type,
    [DomainHeaders.entity]: event.entity,
  };
  const record: SourceRecord = {
    topic,
    key,
    // For a dead letter: the event as mappings made it, readable.
    value: event as unknown as Record<string, unknown>,
    schema,
    headers,
    timestamp: event.sourceCommitTime,
    encoded: { key: encodedKey, value: encodedValue },
  };
  if (definition.kind !== 'deleted') return [record];
  const group = `delete:${event.eventId}`;
  return [
    { ...record, group },
    { topic, key, value: null, schema, headers: { ...headers }, timestamp: event.sourceCommitTime, encoded: { key: encodedKey, value: null }, group },
  ];
}
