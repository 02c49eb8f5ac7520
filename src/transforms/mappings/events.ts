import type { DeadLetter, TransformInput } from '../../core';
import type { DomainEvent, EventDefinition } from '../../domain/event';
import { entityIdOf } from '../../domain/keys';
import { correlationId, eventId } from '../../domain/records';
import type { Conversion } from './conversions';
import { coerce, show, ValueError } from './types';
import { isEcho, viewOf, type ChangeView, type InputFormat } from './views';

/** What a mapping makes of one input record. Pure: the same input always gives the same result. */
export interface MappingResult {
  events: DomainEvent[];
  deadLetters: DeadLetter[];
  /** Inputs turned into nothing on purpose, by reason: `echo`, `unchanged`, `filtered`, `tombstone`. */
  dropped: Record<string, number>;
}

export type MappingFunction = (input: TransformInput) => MappingResult;

/** An event before its envelope: what the mapping decided. */
export interface EventDraft {
  def: EventDefinition;
  entityKey: Record<string, string>;
  changedFields: string[];
  knownFields: string[];
  data: Record<string, unknown>;
}

/** A mapping body's answer: the events, or why none (counted in `dropped`). */
export interface Outcome {
  drafts: EventDraft[];
  /** Set when drafts is empty on purpose. */
  dropped?: 'unchanged' | 'filtered';
}

/**
 * Runs a mapping body on one input with the rules every mapping shares: a tombstone and an echo
 * make nothing (counted); a value that cannot be mapped sends the input, whole, to the dead
 * letters (never some of its events without the others); events get their envelope.
 */
export function runMapping(transform: string, format: InputFormat, input: TransformInput, body: (view: ChangeView) => Outcome): MappingResult {
  if (input.value === null) return { events: [], deadLetters: [], dropped: { tombstone: 1 } };
  if (isEcho(input)) return { events: [], deadLetters: [], dropped: { echo: 1 } };
  let view: ChangeView | undefined;
  try {
    view = viewOf(format, input);
    const outcome = body(view);
    if (outcome.drafts.length === 0) return { events: [], deadLetters: [], dropped: { [outcome.dropped ?? 'unchanged']: 1 } };
    return { events: outcome.drafts.map((d, i) => envelope(d, i, input, view!)), deadLetters: [], dropped: {} };
  } catch (error) {
    if (!(error instanceof ValueError)) throw error;
    const where = view?.label() ?? `${input.topic}/${input.partition}@${input.offset}`;
    return {
      events: [],
      deadLetters: [
        {
          source: `transform:${transform}`,
          reason: `transform ${transform}: ${where}: ${error.message}`,
          stage: 'processing',
          code: error.code,
          payload: jsonSafe({ key: input.key, value: input.value, headers: input.headers }),
          key: JSON.stringify(jsonSafe(input.key)),
          topic: input.topic,
        },
      ],
      dropped: {},
    };
  }
}

function envelope(draft: EventDraft, index: number, input: TransformInput, view: ChangeView): DomainEvent {
  const causation = { topic: input.topic, partition: input.partition, offset: input.offset };
  return {
    eventId: eventId(causation, draft.def.name, index),
    type: draft.def.name,
    entity: draft.def.entity,
    entityId: entityIdOf(draft.def.key ?? Object.keys(draft.entityKey), draft.entityKey),
    entityKey: draft.entityKey,
    sourceCommitTime: view.sourceCommitTime,
    origin: view.origin,
    causation,
    correlationId: correlationId(causation),
    changedFields: draft.changedFields,
    knownFields: draft.knownFields,
    schemaVersion: draft.def.version ?? 1,
    data: draft.data,
  };
}

/** A key column's value as text: numbers as written (a Salesforce 42.0 is 42), bytes as hex. */
function keyText(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined;
  if (Buffer.isBuffer(value)) return value.toString('hex');
  return undefined;
}

export interface KeyPart {
  /** The name in the event's entityKey. */
  name: string;
  /** The input column (or Salesforce field) holding it. */
  column: string;
}

/** The entity key from the input, or a NO_ENTITY_ID error naming the record: an id is never guessed. */
export function entityKeyOf(view: ChangeView, key: KeyPart[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of key) {
    const text = view.known(part.column) ? keyText(view.value(part.column)) : undefined;
    if (text === undefined) {
      const why = view.known(part.column) ? `is ${view.value(part.column) === null ? 'null' : `not usable as an id (${show(view.value(part.column))})`}` : 'is absent';
      throw new ValueError('NO_ENTITY_ID', `no entity id: ${part.column} ${why}`);
    }
    out[part.name] = text;
  }
  return out;
}

export interface FieldPart {
  /** The event field. */
  field: string;
  /** The input column (or Salesforce field). */
  column: string;
  convert?: Conversion[];
}

/**
 * A changed event of `def` from the fields it maps, or undefined when the input changed none of
 * them. changedFields: the mapped fields this change changed (all known ones for a full input);
 * knownFields: those whose current value the input carries; data: every event field, null where
 * unknown.
 */
export function changedDraft(view: ChangeView, def: EventDefinition, key: KeyPart[], fields: FieldPart[]): EventDraft | undefined {
  const changed = fields.filter((f) => (view.full ? view.known(f.column) : view.changed(f.column)));
  if (changed.length === 0) return undefined;
  for (const f of changed) {
    if (!view.known(f.column)) {
      throw new ValueError('UNKNOWN_VALUE', `${f.column} changed but the record does not carry its new value (event field ${f.field})`);
    }
  }
  const known = fields.filter((f) => view.known(f.column));
  const data: Record<string, unknown> = Object.fromEntries(Object.keys(def.fields).map((name) => [name, null]));
  for (const f of known) {
    const unusable = view.unusable(f.column);
    if (unusable) throw new ValueError('UNUSABLE_VALUE', unusable);
    data[f.field] = fieldValue(view.value(f.column), f, def);
  }
  return {
    def,
    entityKey: entityKeyOf(view, key),
    changedFields: changed.map((f) => f.field),
    knownFields: known.map((f) => f.field),
    data,
  };
}

/** An input value through the field's conversions into the event field's type; errors name both. */
export function fieldValue(value: unknown, f: FieldPart, def: EventDefinition): unknown {
  try {
    const converted = (f.convert ?? []).reduce((v, c) => c.apply(v), value);
    return coerce(converted, def.fields[f.field]!.type);
  } catch (error) {
    if (error instanceof ValueError) throw new ValueError(error.code, `${f.column} → ${def.name}.${f.field}: ${error.message}`);
    throw error;
  }
}

/** A deleted event (no data) for the input's entity. */
export function deletedDraft(view: ChangeView, def: EventDefinition, key: KeyPart[]): EventDraft {
  return { def, entityKey: entityKeyOf(view, key), changedFields: [], knownFields: [], data: {} };
}

/** The input made JSON-safe for a dead letter: BigInt as text, bytes as base64. */
export function jsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (Buffer.isBuffer(value)) return { base64: value.toString('base64') };
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)]));
  return value;
}
