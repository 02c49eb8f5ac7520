import { z } from 'zod';
import { BUILTIN_EVENTS, EventCatalog, FIELD_TYPES } from './catalog';
import type { EventDefinition, EventFieldType } from './event';

/**
 * The `events:` section of banyan.yaml: event types a configuration adds to the built-in ones
 * (UserChanged, UserDeleted, AddressChanged, AddressDeleted). The integrator puts this schema in
 * the whole file's schema; buildCatalog turns the parsed section into the catalog.
 *
 * ```yaml
 * events:
 *   - name: OrderChanged
 *     entity: order
 *     key: [orderId]
 *     fields: { status: string, total: decimal(12,2), placedOn: date }
 *   - name: OrderDeleted
 *     entity: order
 *     kind: deleted
 *     key: [orderId]
 * ```
 */

const fieldTypeText = z
  .string()
  .transform((text, ctx): EventFieldType => {
    const t = text.trim();
    if (FIELD_TYPES.includes(t)) return t as EventFieldType;
    const m = /^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$/.exec(t);
    if (m) return { decimal: { precision: Number(m[1]), scale: Number(m[2]) } };
    ctx.addIssue({ code: 'custom', message: `unknown field type "${text}": use ${FIELD_TYPES.join(', ')} or decimal(precision,scale)` });
    return z.NEVER;
  })
  .describe('string, int, long (BigInt), double, boolean, date (YYYY-MM-DD), timestamp (ms) or decimal(p,s) (an exact string). Example: decimal(12,2)');

/** A field: its type alone (`total: decimal(12,2)`), or `{type, doc}`. */
export const eventFieldSchema = z.preprocess(
  // A bare type is short for {type}: one object schema, so a bad type's message is the one shown.
  (v) => (typeof v === 'string' ? { type: v } : v),
  z.strictObject({ type: fieldTypeText, doc: z.string().optional().describe('what the field means, for docs/asyncapi.yaml') }),
);

export const eventConfigSchema = z.strictObject({
  name: z.string().describe('the event type, an Avro name, unique in the catalog. Example: OrderChanged'),
  entity: z.string().describe('the entity (change type) it is about; its events share one topic and one key. Example: order'),
  topic: z.string().optional().describe('the topic of the entity’s events; defaults to domain.<entity>'),
  kind: z
    .enum(['changed', 'deleted'])
    .default('changed')
    .describe('changed: a state change carrying fields; deleted: the entity is gone (no fields; a tombstone follows)'),
  key: z
    .array(z.string())
    .min(1)
    .optional()
    .describe('the entity’s key fields, in order (text); defaults to [id]. Example: [orderId, lineNo]'),
  fields: z.record(z.string(), eventFieldSchema).default({}).describe('the data fields by name: a type, or {type, doc}'),
  doc: z.string().optional().describe('what the event means, for docs/asyncapi.yaml'),
  version: z.coerce.number().int().positive().default(1).describe('the definition’s version; bump it when the meaning of the event changes'),
});

export const eventsSectionSchema = z
  .array(eventConfigSchema)
  .default([])
  .describe('event types this configuration adds to the built-in ones; their Avro schemas are registered under BACKWARD compatibility');

export type EventConfig = z.infer<typeof eventConfigSchema>;
export type EventsConfig = z.infer<typeof eventsSectionSchema>;

/** A parsed `events:` entry as an EventDefinition. */
export function eventDefinition(config: EventConfig): EventDefinition {
  return {
    name: config.name,
    entity: config.entity,
    topic: config.topic ?? `domain.${config.entity}`,
    kind: config.kind,
    fields: Object.fromEntries(Object.entries(config.fields).map(([name, f]) => [name, { type: f.type, ...(f.doc ? { doc: f.doc } : {}) }])),
    ...(config.doc ? { doc: config.doc } : {}),
    ...(config.key ? { key: config.key } : {}),
    version: config.version,
  };
}

/**
 * The catalog of a configuration: the built-in events, then those of its `events:` section (parsed
 * by eventsSectionSchema). Throws a ConfigError naming each bad entry as `events[i]`, the event and
 * the field: a duplicate name, a name that is no Avro name, a topic or key that disagrees with the
 * entity's other events, a second deleted-kind event on a topic, a bad decimal.
 */
export function buildCatalog(extra: EventsConfig = [], where = 'the events section', options: { topicPrefix?: string } = {}): EventCatalog {
  // Every `domain.*` topic moves under another prefix when the config says so (several bridges on
  // one cluster, tests); other topics stay as written.
  const prefix = options.topicPrefix ?? 'domain';
  const placed = (d: EventDefinition): EventDefinition => (prefix !== 'domain' && d.topic.startsWith('domain.') ? { ...d, topic: `${prefix}.${d.topic.slice('domain.'.length)}` } : d);
  const definitions = [...BUILTIN_EVENTS, ...extra.map(eventDefinition)].map(placed);
  const paths = [...BUILTIN_EVENTS.map((e) => `built-in ${e.name}`), ...extra.map((_, i) => `events[${i}]`)];
  return new EventCatalog(definitions, where, paths);
}
