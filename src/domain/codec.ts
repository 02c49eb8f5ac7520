import { BadRecordError } from '../core';
import { NAMESPACE } from './avro';
import type { EventCatalog } from './catalog';
import type { DomainEvent, EventDefinition } from './event';
import { entityIdOf } from './keys';
import { describe, valueProblem } from './values';

/**
 * A DomainEvent and the Avro value of its topic's value schema, both ways. Encoding checks the
 * whole event against its definition first, so a bad one is refused naming the event, the field
 * and the value, not with whatever avsc would say about a byte buffer.
 */

/** The origins an event may name (core's Origin). */
export const ORIGINS: readonly string[] = ['legacy', 'salesforce', 'domain'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** An event that does not fit its definition: BadRecordError (the runner dead-letters the input). */
function invalid(event: DomainEvent, message: string, context: Record<string, unknown> = {}): BadRecordError {
  return new BadRecordError(`event ${event.type} of ${event.entity} "${event.entityId}": ${message}`, {
    stage: 'processing',
    code: 'INVALID_EVENT',
    context: { event: event.type, entityId: event.entityId, ...context },
  });
}

/** The event's definition, after checking the whole event against it. */
export function checkEvent(event: DomainEvent, catalog: EventCatalog): EventDefinition {
  const definition = catalog.definition(event.type);
  if (!definition) throw invalid(event, `unknown event type (the catalog has ${catalog.events.map((e) => e.name).join(', ')})`);
  if (event.entity !== definition.entity) throw invalid(event, `entity "${event.entity}" is not the event type's, "${definition.entity}"`);
  const keyFields = definition.key!;
  const entityKey = event.entityKey ?? {};
  for (const field of keyFields) {
    if (typeof entityKey[field] !== 'string') throw invalid(event, `entityKey.${field} is ${describe(entityKey[field])}, not a string`, { field });
  }
  const extra = Object.keys(entityKey).filter((field) => !keyFields.includes(field));
  if (extra.length) throw invalid(event, `entityKey has ${extra.join(', ')}, not key fields of ${definition.entity} (${keyFields.join(', ')})`);
  const id = entityIdOf(keyFields, entityKey);
  if (event.entityId !== id) throw invalid(event, `entityId does not match entityKey (which makes "${id}")`);
  if (typeof event.eventId !== 'string' || !UUID.test(event.eventId)) throw invalid(event, `eventId ${describe(event.eventId)} is not a lower-case UUID`);
  if (!ORIGINS.includes(event.origin)) throw invalid(event, `origin ${describe(event.origin)} is not one of ${ORIGINS.join(', ')}`);
  if (!Number.isSafeInteger(event.sourceCommitTime)) throw invalid(event, `sourceCommitTime ${describe(event.sourceCommitTime)} is not whole ms since the epoch`);
  const { causation } = event;
  if (!causation || typeof causation.topic !== 'string' || !Number.isInteger(causation.partition) || !/^\d+$/.test(String(causation.offset))) {
    throw invalid(event, `causation ${JSON.stringify(causation)} is not {topic, partition, offset}`);
  }
  if (typeof event.correlationId !== 'string') throw invalid(event, `correlationId ${describe(event.correlationId)} is not a string`);
  if (!Number.isInteger(event.schemaVersion) || event.schemaVersion < 1 || event.schemaVersion > definition.version!) {
    throw invalid(event, `schemaVersion ${describe(event.schemaVersion)} is not a version of its definition (1 to ${definition.version})`);
  }
  const data = event.data ?? {};
  for (const field of Object.keys(data)) {
    const value = data[field];
    const spec = definition.fields[field];
    if (!spec) throw invalid(event, `data.${field} is not a field of ${event.type} (${Object.keys(definition.fields).join(', ') || 'it has none'})`, { field });
    if (value === null || value === undefined) continue;
    const problem = valueProblem(spec.type, value);
    if (problem) throw invalid(event, `data.${field}: ${problem}`, { field, value: describe(value) });
  }
  for (const list of ['changedFields', 'knownFields'] as const) {
    if (!Array.isArray(event[list])) throw invalid(event, `${list} is not a list of field names`);
    for (const field of event[list]) {
      if (!(field in definition.fields)) throw invalid(event, `${list} names "${field}", not a field of ${event.type}`, { field });
    }
  }
  return definition;
}

/** The event as a value of its topic's value schema (checked first: see checkEvent). */
export function toAvroValue(event: DomainEvent, catalog: EventCatalog): Record<string, unknown> {
  const definition = checkEvent(event, catalog);
  const data: Record<string, unknown> = {};
  for (const field of fieldNames(definition)) data[field] = event.data?.[field] ?? null;
  const value = avroValueOf(event, definition, catalog, data);
  // A value of its own: nothing the caller later changes in the event changes it.
  return {
    ...value,
    entityKey: { ...event.entityKey },
    changedFields: [...event.changedFields],
    knownFields: [...event.knownFields],
  };
}

/**
 * The Avro value of a checked event, sharing the event's entity key and field lists: for a caller
 * that encodes it at once (eventRecords).
 */
export function avroValueOf(event: DomainEvent, definition: EventDefinition, catalog: EventCatalog, data = completeData(event, definition)): Record<string, unknown> {
  return {
    eventId: event.eventId,
    type: event.type,
    entity: event.entity,
    entityId: event.entityId,
    entityKey: event.entityKey,
    sourceCommitTime: event.sourceCommitTime,
    origin: event.origin,
    causation: { topic: event.causation.topic, partition: event.causation.partition, offset: String(event.causation.offset) },
    correlationId: event.correlationId,
    changedFields: event.changedFields,
    knownFields: event.knownFields,
    schemaVersion: event.schemaVersion,
    // avsc wraps a union of several records ({name: record}); a union of one is the record itself.
    data: wrapped(catalog, definition.topic) ? { [`${NAMESPACE}.${event.type}`]: data } : data,
  };
}

/**
 * The event's data with every field of its definition, null where absent: its own data when that
 * has them all already (as mappings make it; checkEvent refused any other field).
 */
function completeData(event: DomainEvent, definition: EventDefinition): Record<string, unknown> {
  const names = fieldNames(definition);
  const given = event.data;
  let complete = !!given;
  for (let i = 0; complete && i < names.length; i++) if (given![names[i]!] === undefined) complete = false;
  if (complete) return given;
  const data: Record<string, unknown> = {};
  for (const field of names) data[field] = given?.[field] ?? null;
  return data;
}

/** A definition's field names, listed once (definitions do not change once in a catalog). */
const FIELD_NAMES = new WeakMap<EventDefinition, string[]>();
function fieldNames(definition: EventDefinition): string[] {
  let names = FIELD_NAMES.get(definition);
  if (!names) FIELD_NAMES.set(definition, (names = Object.keys(definition.fields)));
  return names;
}

/** Whether a topic's data is a union of several records, by catalog and topic (asked once). */
const WRAPPED = new WeakMap<EventCatalog, Map<string, boolean>>();
function wrapped(catalog: EventCatalog, topic: string): boolean {
  let byTopic = WRAPPED.get(catalog);
  if (!byTopic) WRAPPED.set(catalog, (byTopic = new Map()));
  let answer = byTopic.get(topic);
  if (answer === undefined) byTopic.set(topic, (answer = catalog.eventsOf(topic).length > 1));
  return answer;
}

/**
 * An Avro value read with a domain topic's schema → the DomainEvent. `type` must name the data
 * branch; a value where they disagree was not written by Banyan and is refused.
 */
export function fromAvroValue(value: Record<string, unknown>): DomainEvent {
  const raw = value.data as Record<string, unknown>;
  let branch: string;
  let fields: Record<string, unknown>;
  const keys = Object.keys(raw);
  // A wrapped union's value has exactly one key, the branch's full name, holding an object.
  if (keys.length === 1 && keys[0]!.startsWith(`${NAMESPACE}.`) && raw[keys[0]!] && typeof raw[keys[0]!] === 'object') {
    branch = keys[0]!.slice(NAMESPACE.length + 1);
    fields = raw[keys[0]!] as Record<string, unknown>;
  } else {
    branch = value.type as string;
    fields = raw;
  }
  if (branch !== value.type) throw new Error(`event ${String(value.eventId)}: type "${String(value.type)}" but its data is a ${branch}`);
  const causation = value.causation as { topic: string; partition: number; offset: string };
  return {
    eventId: value.eventId as string,
    type: value.type as string,
    entity: value.entity as string,
    entityId: value.entityId as string,
    entityKey: { ...(value.entityKey as Record<string, string>) },
    sourceCommitTime: value.sourceCommitTime as number,
    origin: value.origin as DomainEvent['origin'],
    causation: { topic: causation.topic, partition: causation.partition, offset: causation.offset },
    correlationId: value.correlationId as string,
    changedFields: [...(value.changedFields as string[])],
    knownFields: [...(value.knownFields as string[])],
    schemaVersion: value.schemaVersion as number,
    data: { ...fields },
  };
}
