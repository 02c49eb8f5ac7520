import type { Origin, SourceRecord } from '../core';

/**
 * The shape of Banyan's canonical events, the contract domain services build on. This file is the
 * agreed interface between the domain catalog (schemas, encoding), the mappings that make events
 * and the transform runner that writes them.
 */

/** The value types an event field may have, and the JavaScript value a consumer gets for each. */
export type EventFieldType =
  | 'string' // string
  | 'int' // number (32-bit)
  | 'long' // bigint
  | 'double' // number
  | 'boolean' // boolean
  | 'date' // string, YYYY-MM-DD
  | 'timestamp' // number, ms since the epoch (UTC)
  | { decimal: { precision: number; scale: number } }; // string, e.g. "1234.50" (exact)

export interface EventFieldSpec {
  type: EventFieldType;
  doc?: string;
}

/** One event type: its name, the entity (and so the topic) it belongs to, and its data fields. */
export interface EventDefinition {
  /** `UserChanged`, `AddressChanged`, `UserDeleted`… (an Avro name). */
  name: string;
  /** The entity (change type) it is about: `user`, `address`. */
  entity: string;
  /** `domain.<entity>` unless told otherwise. */
  topic: string;
  /** `changed`: a state change carrying fields; `deleted`: the entity is gone (no fields). */
  kind: 'changed' | 'deleted';
  fields: Record<string, EventFieldSpec>;
  doc?: string;
  /**
   * The entity's key fields, in order (strings): `['id']` unless told otherwise. Every event of an
   * entity names the same ones; a composite key's parts make entityId by the rule of keys.ts.
   */
  key?: string[];
  /** The definition's version, 1 unless told otherwise; events carry it as `schemaVersion`. */
  version?: number;
}

/** Where an event came from: the record it was made of. */
export interface Causation {
  topic: string;
  partition: number;
  offset: string;
}

/** A canonical event as mappings make it and the typed consumer hands it to a handler. */
export interface DomainEvent<Data extends Record<string, unknown> = Record<string, unknown>> {
  /** Deterministic from the causation and the event type: a replay makes the same id. */
  eventId: string;
  type: string;
  entity: string;
  /** The entity's id as text (a composite key's parts joined, see entityKey). */
  entityId: string;
  /** The entity's key fields by name (one for a simple key). */
  entityKey: Record<string, string>;
  /** When the change committed at its source, ms since the epoch. */
  sourceCommitTime: number;
  origin: Origin;
  causation: Causation;
  /** Ties together the events of one source change (e.g. the UserChanged and AddressChanged of one row). */
  correlationId: string;
  /** The data fields this change changed. */
  changedFields: string[];
  /** The data fields whose value in `data` is the current one; a field not named is unknown (its null means nothing). */
  knownFields: string[];
  schemaVersion: number;
  data: Data;
}
