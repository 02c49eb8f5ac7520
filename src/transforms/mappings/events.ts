import type { DeadLetter, TransformInput } from '../../core';
import type { DomainEvent, EventDefinition } from '../../domain/event';
import { entityIdOf } from '../../domain/keys';
import { correlationId, eventId } from '../../domain/records';
import type { Conversion } from './conversions';
import { coerce, show, ValueError } from './types';
import { isEcho, viewOf, type ChangeView, type InputFormat } from './views';
import { jsonSafe } from '../../runtime/dead-letters';

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
    const { drafts } = outcome;
    if (drafts.length === 0) return { events: [], deadLetters: [], dropped: { [outcome.dropped ?? 'unchanged']: 1 } };
    // The events of one input share its causation and correlation id.
    const causation = { topic: input.topic, partition: input.partition, offset: input.offset };
    const correlation = correlationId(causation);
    const events: DomainEvent[] = [];
    for (let i = 0; i < drafts.length; i++) events.push(envelope(drafts[i]!, i, causation, correlation, view));
    return { events, deadLetters: [], dropped: {} };
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
          // The dead-letter writer makes it JSON as every dead letter is (BigInt as text, bytes as hex).
          payload: { key: input.key, value: input.value, headers: input.headers },
          key: JSON.stringify(input.key, jsonSafe),
          topic: input.topic,
        },
      ],
      dropped: {},
    };
  }
}

function envelope(draft: EventDraft, index: number, causation: DomainEvent['causation'], correlation: string, view: ChangeView): DomainEvent {
  return {
    eventId: eventId(causation, draft.def.name, index),
    type: draft.def.name,
    entity: draft.def.entity,
    entityId: entityIdOf(draft.def.key ?? Object.keys(draft.entityKey), draft.entityKey),
    entityKey: draft.entityKey,
    sourceCommitTime: view.sourceCommitTime,
    origin: view.origin,
    causation,
    correlationId: correlation,
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
  // Plain loops: this runs for every block of every input (docs/performance.md, Transform).
  let changedFields: string[] | undefined;
  for (const f of fields) {
    if (!(view.full ? view.known(f.column) : view.changed(f.column))) continue;
    if (!view.known(f.column)) {
      throw new ValueError('UNKNOWN_VALUE', `${f.column} changed but the record does not carry its new value (event field ${f.field})`);
    }
    (changedFields ??= []).push(f.field);
  }
  if (!changedFields) return undefined;
  const data = emptyData(def);
  const knownFields: string[] = [];
  for (const f of fields) {
    if (!view.known(f.column)) continue;
    knownFields.push(f.field);
    const unusable = view.unusable(f.column);
    if (unusable) throw new ValueError('UNUSABLE_VALUE', unusable);
    data[f.field] = fieldValue(view.value(f.column), f, def);
  }
  return { def, entityKey: entityKeyOf(view, key), changedFields, knownFields, data };
}

/** Every field of the event, null, in the definition's order. */
function emptyData(def: EventDefinition): Record<string, unknown> {
  let names = FIELD_NAMES.get(def);
  if (!names) FIELD_NAMES.set(def, (names = Object.keys(def.fields)));
  const data: Record<string, unknown> = {};
  for (const name of names) data[name] = null;
  return data;
}

const FIELD_NAMES = new WeakMap<EventDefinition, string[]>();

/** An input value through the field's conversions into the event field's type; errors name both. */
export function fieldValue(value: unknown, f: FieldPart, def: EventDefinition): unknown {
  try {
    let converted = value;
    if (f.convert) for (const c of f.convert) converted = c.apply(converted);
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

