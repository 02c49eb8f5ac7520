import type avro from 'avsc';
import { ConfigError, type ConfigIssue } from '../core';
import { domainAvroType, keySchema, pascal, valueSchema, type AvroSchema } from './avro';
import type { EventDefinition } from './event';

/**
 * The events Banyan ships. A configuration may declare more (its `events:` section); the built-in
 * ones are the reference example of the design: a legacy `users` row (user and address columns in
 * one table) and a Salesforce Contact both become these.
 */
export const BUILTIN_EVENTS: EventDefinition[] = [
  {
    name: 'UserChanged',
    entity: 'user',
    topic: 'domain.user',
    kind: 'changed',
    doc: 'A user was created or changed: the fields named in changedFields changed, those in knownFields carry their current value.',
    fields: {
      firstName: { type: 'string' },
      lastName: { type: 'string' },
      email: { type: 'string' },
    },
  },
  {
    name: 'UserDeleted',
    entity: 'user',
    topic: 'domain.user',
    kind: 'deleted',
    doc: 'The user was deleted at its source. Its address goes with it (an AddressDeleted for the same id).',
    fields: {},
  },
  {
    name: 'AddressChanged',
    entity: 'address',
    topic: 'domain.address',
    kind: 'changed',
    doc: "A user's postal address was set or changed; its entity id is the user's.",
    fields: {
      street: { type: 'string' },
      city: { type: 'string' },
      postalCode: { type: 'string' },
      state: { type: 'string' },
      country: { type: 'string' },
    },
  },
  {
    name: 'AddressDeleted',
    entity: 'address',
    topic: 'domain.address',
    kind: 'deleted',
    doc: 'The address is gone: its user was deleted.',
    fields: {},
  },
];

/** The schemas of one domain topic: the SAME objects on every call (the runtime caches encoders by schema object). */
export interface TopicSchemas {
  key: AvroSchema;
  value: AvroSchema;
}

const AVRO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

/**
 * The events of one configuration: the built-in ones and those its `events:` section declares.
 * Built once at start and validated as a whole; then it only answers questions.
 */
export class EventCatalog {
  readonly events: readonly EventDefinition[];
  private readonly byTopic = new Map<string, EventDefinition[]>();
  private readonly byName = new Map<string, EventDefinition>();
  private readonly keys = new Map<string, string[]>();
  private readonly schemaCache = new Map<string, TopicSchemas>();
  private readonly typeCache = new Map<string, { key: avro.Type; value: avro.Type }>();

  /**
   * Throws a ConfigError listing every problem, each under `paths[i]` (where definition i was
   * written, e.g. `events[2]`) or the event's name.
   */
  constructor(definitions: readonly EventDefinition[], where = 'the event catalog', paths: readonly string[] = []) {
    const issues = validate(definitions, (i) => paths[i] ?? `event ${definitions[i]!.name}`);
    if (issues.length) throw new ConfigError(where, issues);
    this.events = definitions.map((d) => ({ ...d, key: d.key ?? ['id'], version: d.version ?? 1 }));
    for (const event of this.events) {
      this.byName.set(event.name, event);
      if (!this.byTopic.has(event.topic)) this.byTopic.set(event.topic, []);
      this.byTopic.get(event.topic)!.push(event);
      this.keys.set(event.entity, event.key!);
    }
  }

  /** The domain topics, in the order their first event was declared. */
  topics(): string[] {
    return [...this.byTopic.keys()];
  }

  /** The event types written to `topic` (none for a topic the catalog does not know). */
  eventsOf(topic: string): EventDefinition[] {
    return [...(this.byTopic.get(topic) ?? [])];
  }

  /** The event type named `name`, or undefined. */
  definition(name: string): EventDefinition | undefined {
    return this.byName.get(name);
  }

  /** The entity whose events `topic` carries. */
  entityOf(topic: string): string | undefined {
    return this.byTopic.get(topic)?.[0]!.entity;
  }

  /** The entity's key fields, in order (`['id']` unless declared). */
  keyFields(entity: string): string[] {
    const key = this.keys.get(entity);
    if (!key) throw new Error(`unknown entity "${entity}" (the catalog has ${[...this.keys.keys()].join(', ')})`);
    return [...key];
  }

  /** The key and value schemas of `topic`, built once: the same objects every time. */
  schemas(topic: string): TopicSchemas {
    let schemas = this.schemaCache.get(topic);
    if (!schemas) {
      const events = this.byTopic.get(topic);
      if (!events) throw new Error(`"${topic}" is not a domain topic (the catalog has ${this.topics().join(', ')})`);
      const entity = events[0]!.entity;
      schemas = { key: keySchema(entity, this.keyFields(entity)), value: valueSchema(entity, events) };
      this.schemaCache.set(topic, schemas);
    }
    return schemas;
  }

  /** avsc types of `topic`'s own schemas, with the JavaScript values of event.ts (see avro.ts). */
  types(topic: string): { key: avro.Type; value: avro.Type } {
    let types = this.typeCache.get(topic);
    if (!types) {
      const { key, value } = this.schemas(topic);
      types = { key: domainAvroType(key), value: domainAvroType(value) };
      this.typeCache.set(topic, types);
    }
    return types;
  }
}

function validate(definitions: readonly EventDefinition[], pathOf: (i: number) => string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const names = new Map<string, number>();
  const topicEntity = new Map<string, string>();
  const entityTopic = new Map<string, string>();
  const entityKey = new Map<string, { key: string[]; by: string }>();
  const deletedOf = new Map<string, string>();
  definitions.forEach((event, i) => {
    const at = pathOf(i);
    const issue = (path: string, message: string) => issues.push({ path: `${at}${path}`, message: `event ${event.name}: ${message}` });
    if (!AVRO_NAME.test(event.name)) issue('.name', `"${event.name}" is not an Avro name (letters, digits and _, not starting with a digit)`);
    if (names.has(event.name)) issue('.name', `the name is taken by ${pathOf(names.get(event.name)!)}`);
    else names.set(event.name, i);
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(event.entity)) issue('.entity', `"${event.entity}" is not an entity name (letters, digits and _, starting with a letter)`);
    if (!TOPIC_NAME.test(event.topic)) issue('.topic', `"${event.topic}" is not a Kafka topic name`);
    const reserved = ['Causation', `${pascal(event.entity)}Event`, `${pascal(event.entity)}Key`];
    if (reserved.includes(event.name)) issue('.name', `"${event.name}" is the name of a record of the topic's own schemas (${reserved.join(', ')})`);
    if (event.version !== undefined && (!Number.isInteger(event.version) || event.version < 1)) issue('.version', `version ${event.version} is not a whole number from 1`);

    const other = topicEntity.get(event.topic);
    if (other !== undefined && other !== event.entity) issue('.topic', `topic ${event.topic} carries entity ${other}; one topic carries the events of one entity (its key)`);
    else topicEntity.set(event.topic, event.entity);
    const otherTopic = entityTopic.get(event.entity);
    if (otherTopic !== undefined && otherTopic !== event.topic) issue('.topic', `entity ${event.entity} is on topic ${otherTopic}; all of an entity's events go to one topic, so they stay in order`);
    else entityTopic.set(event.entity, event.topic);

    const key = event.key ?? ['id'];
    if (key.length === 0) issue('.key', 'a key has at least one field');
    key.forEach((field, k) => {
      if (!AVRO_NAME.test(field)) issue(`.key[${k}]`, `key field "${field}" is not an Avro name`);
    });
    if (new Set(key).size !== key.length) issue('.key', `key fields repeat: ${key.join(', ')}`);
    const known = entityKey.get(event.entity);
    if (known && known.key.join(',') !== key.join(',')) issue('.key', `key (${key.join(', ')}) differs from (${known.key.join(', ')}) of ${known.by}, another event of entity ${event.entity}`);
    else if (!known) entityKey.set(event.entity, { key, by: event.name });

    if (event.kind === 'deleted') {
      if (Object.keys(event.fields).length) issue('.fields', 'a deleted-kind event carries no fields (the entity is gone)');
      const before = deletedOf.get(event.topic);
      if (before) issue('.kind', `topic ${event.topic} already has a deleted-kind event, ${before}: a sink must know what a delete of the entity is`);
      else deletedOf.set(event.topic, event.name);
    } else if (event.kind !== 'changed') {
      issue('.kind', `kind "${String(event.kind)}" is neither changed nor deleted`);
    }
    for (const [field, spec] of Object.entries(event.fields)) {
      if (!AVRO_NAME.test(field)) issue(`.fields.${field}`, `field "${field}" is not an Avro name`);
      if (typeof spec.type === 'object') {
        const { precision, scale } = spec.type.decimal;
        if (!Number.isInteger(precision) || precision < 1 || !Number.isInteger(scale) || scale < 0 || scale > precision) {
          issue(`.fields.${field}`, `field ${field}: decimal(${precision},${scale}) needs a precision from 1 and a scale from 0 to the precision`);
        }
      } else if (!FIELD_TYPES.includes(spec.type)) {
        issue(`.fields.${field}`, `field ${field}: unknown type "${String(spec.type)}" (${FIELD_TYPES.join(', ')} or decimal(p,s))`);
      }
    }
  });
  return issues;
}

/** The event field types without parameters (decimal(p,s) is the one with). */
export const FIELD_TYPES: readonly string[] = ['string', 'int', 'long', 'double', 'boolean', 'date', 'timestamp'];

let builtin: EventCatalog | undefined;

/** The catalog of the built-in events alone (built once). */
export function builtinCatalog(): EventCatalog {
  return (builtin ??= new EventCatalog(BUILTIN_EVENTS, 'the built-in events'));
}
