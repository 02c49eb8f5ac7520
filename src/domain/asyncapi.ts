import { stringify } from 'yaml';
import type { EventCatalog } from './catalog';
import { Headers } from '../core';
import { ORIGINS, toAvroValue } from './codec';
import type { DomainEvent, EventDefinition, EventFieldType } from './event';
import { entityIdOf } from './keys';
import { correlationId, DomainHeaders, eventId, eventRecords } from './records';
import { pascal } from './avro';

/**
 * The AsyncAPI 3.0 document of the domain topics, generated from the catalog (`npm run asyncapi`
 * writes docs/asyncapi.yaml; asyncapi.spec.ts fails when the file is not what this makes now).
 * Payloads are the registered Avro schemas themselves; examples are in Avro's JSON encoding, so
 * they are values of those schemas, made by the same code that encodes events.
 */
export const AVRO_FORMAT = 'application/vnd.apache.avro+json;version=1.9.0';
const KAFKA_BINDING = '0.5.0';

/** Example data of the built-in events; other events get a value of each field's type. */
const EXAMPLE_DATA: Record<string, Record<string, unknown>> = {
  UserChanged: { firstName: 'Ada', lastName: 'Lovelace', email: 'ada@example.org' },
  AddressChanged: { street: '12 St James’s Square', city: 'London', postalCode: 'SW1Y 4JH', state: null, country: 'GB' },
};

function exampleValue(type: EventFieldType): unknown {
  if (typeof type === 'object') {
    const { precision, scale } = type.decimal;
    const whole = '123'.slice(0, Math.min(precision - scale, 3)) || '0';
    return scale > 0 ? `${whole}.${'50'.padEnd(scale, '0').slice(0, scale)}` : whole;
  }
  return { string: 'text', int: 42, long: 42n, double: 0.5, boolean: true, date: '2024-05-01', timestamp: 1_714_564_800_000 }[type];
}

/** A made-up but valid event of `definition`, the same on every run. */
export function exampleEvent(definition: EventDefinition, catalog: EventCatalog): DomainEvent {
  const keyFields = catalog.keyFields(definition.entity);
  const entityKey = Object.fromEntries(keyFields.map((f, i) => [f, String(42 + i)]));
  const causation = { topic: 'legacy.crm.users', partition: 0, offset: '1041' };
  const data = definition.kind === 'deleted' ? {} : (EXAMPLE_DATA[definition.name] ?? Object.fromEntries(Object.entries(definition.fields).map(([f, s]) => [f, exampleValue(s.type)])));
  const known = Object.keys(data);
  return {
    eventId: eventId(causation, definition.name, 0),
    type: definition.name,
    entity: definition.entity,
    entityId: entityIdOf(keyFields, entityKey),
    entityKey,
    sourceCommitTime: 1_714_564_800_000,
    origin: 'legacy',
    causation,
    correlationId: correlationId(causation),
    changedFields: known.slice(-1),
    knownFields: known,
    schemaVersion: definition.version ?? 1,
    data,
  };
}

function channelId(topic: string): string {
  const id = topic.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase());
  return id[0]!.toLowerCase() + id.slice(1);
}

const HEADERS = {
  type: 'object',
  properties: {
    [Headers.origin]: { type: 'string', enum: [...ORIGINS], description: 'The system the change came from (also in the envelope).' },
    [Headers.changeTime]: { type: 'string', format: 'date-time', description: 'When the change committed at its source (ISO 8601, UTC).' },
    [DomainHeaders.eventType]: { type: 'string', description: 'The event type.' },
    [DomainHeaders.entity]: { type: 'string', description: 'The entity the event is about.' },
  },
  required: [Headers.origin, Headers.changeTime, DomainHeaders.eventType, DomainHeaders.entity],
};

export interface AsyncApiOptions {
  /** The Kafka servers to list: the local stack's unless told. */
  servers?: Record<string, { host: string; description?: string }>;
}

export function asyncApiDocument(catalog: EventCatalog, options: AsyncApiOptions = {}): Record<string, unknown> {
  const servers = options.servers ?? {
    local: { host: '127.0.0.1:19092', description: 'The development stack (npm run stack:up); its schema registry is at http://127.0.0.1:18081/apis/ccompat/v7.' },
  };
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const schemas: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  for (const topic of catalog.topics()) {
    const events = catalog.eventsOf(topic);
    const entity = catalog.entityOf(topic)!;
    const { key, value } = catalog.schemas(topic);
    const valueName = `${pascal(entity)}Event`;
    const keyName = `${pascal(entity)}Key`;
    schemas[valueName] = { schemaFormat: AVRO_FORMAT, schema: value };
    schemas[keyName] = { schemaFormat: AVRO_FORMAT, schema: key };
    // The Kafka binding's key is a JSON Schema (bindings 0.5.0 validate it as one): the key's
    // shape, pointing to its Avro schema above.
    const keyBinding = {
      type: 'object',
      description: `Avro record ${(key as { namespace: string }).namespace}.${keyName} (#/components/schemas/${keyName}, subject ${topic}-key), Confluent-framed.`,
      properties: Object.fromEntries(catalog.keyFields(entity).map((f) => [f, { type: 'string' }])),
      required: catalog.keyFields(entity),
    };
    const id = channelId(topic);
    channels[id] = {
      address: topic,
      title: topic,
      description: `The events of entity ${entity}, keyed by its key (${catalog.keyFields(entity).join(', ')}), in order per entity. Subjects ${topic}-key and ${topic}-value, BACKWARD compatible. A deleted-kind event is followed by a tombstone (same key, null value).`,
      messages: Object.fromEntries(events.map((e) => [e.name, { $ref: `#/components/messages/${e.name}` }])),
      bindings: { kafka: { topic, bindingVersion: KAFKA_BINDING } },
    };
    operations[`receive${pascal(id)}`] = {
      action: 'receive',
      channel: { $ref: `#/channels/${id}` },
      title: `Receive ${entity} events`,
      summary: `A domain service reads ${topic} (read_committed; subscribe() in src/domain commits after its handler returned).`,
      messages: events.map((e) => ({ $ref: `#/channels/${id}/messages/${e.name}` })),
    };
    for (const event of events) {
      const example = exampleEvent(event, catalog);
      messages[event.name] = {
        name: event.name,
        title: event.name,
        summary: event.doc ?? `${event.name} (${event.kind})`,
        contentType: 'application/vnd.apache.avro',
        headers: HEADERS,
        payload: { $ref: `#/components/schemas/${valueName}` },
        bindings: { kafka: { key: keyBinding, schemaIdLocation: 'payload', schemaIdPayloadEncoding: 'confluent', bindingVersion: KAFKA_BINDING } },
        examples: [
          {
            name: `${event.name}Example`,
            summary: `${event.name} of ${entity} ${example.entityId}; payload in Avro's JSON encoding${event.kind === 'deleted' ? ' (a tombstone of the same key follows it)' : ''}.`,
            // The headers eventRecords writes for it.
            headers: eventRecords(example, catalog)[0]!.headers,
            payload: JSON.parse(catalog.types(topic).value.toString(toAvroValue(example, catalog))) as unknown,
          },
        ],
      };
    }
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Banyan domain events',
      version: '1.0.0',
      description:
        'The canonical events Banyan writes to the domain topics, for domain services. Every record is Avro in the Confluent wire format (magic byte 0, schema id, body); the envelope and each event are described in docs/domain.md.',
    },
    servers: Object.fromEntries(Object.entries(servers).map(([name, s]) => [name, { host: s.host, protocol: 'kafka', ...(s.description ? { description: s.description } : {}) }])),
    defaultContentType: 'application/vnd.apache.avro',
    channels,
    operations,
    components: { schemas, messages },
  };
}

/** docs/asyncapi.yaml as the generator writes it. */
export function asyncApiYaml(catalog: EventCatalog, options: AsyncApiOptions = {}): string {
  return `# Generated from the event catalog by \`npm run asyncapi\` (src/domain/asyncapi.ts): do not edit by hand.\n${stringify(asyncApiDocument(catalog, options), { lineWidth: 0, aliasDuplicateObjects: false })}`;
}
