/**
 * The systems a change can come from. Every record carries one, in its headers and, for domain
 * events, in its envelope: a sink never writes a change back to the system it came from.
 */
export type Origin = 'legacy' | 'salesforce' | 'domain';

/** Record header names, the same on every topic Banyan writes. */
export const Headers = {
  origin: 'banyan.origin',
  operation: 'banyan.operation',
  sourcePosition: 'banyan.source.position',
  changeTime: 'banyan.change.time',
  /** Set when the change was written by Banyan itself (an echo of one of our own writes). */
  echo: 'banyan.echo',
  /**
   * An update that changed the primary key is a delete of the old key and an insert of the new
   * one: the delete carries the new key, the insert the old one (as JSON of the key columns'
   * text), like Debezium's `__debezium.newkey` / `__debezium.oldkey`.
   */
  newKey: 'banyan.key.new',
  oldKey: 'banyan.key.old',
  /** Columns a documented rule wrote as null (a JSON array), e.g. zero dates under `invalidDates: null`. */
  nulled: 'banyan.nulled',
  /**
   * Columns the table had when the change was read but its changelog image lacks (triggers older
   * than an ALTER TABLE … ADD COLUMN): their null in the value means "not recorded", not NULL.
   */
  missingColumns: 'banyan.missing.columns',
  deadLetterReason: 'banyan.dlq.reason',
  deadLetterStage: 'banyan.dlq.stage',
  deadLetterSource: 'banyan.dlq.source',
  /** The topic the record was meant for, when known (Kafka Connect's `__connect.errors.topic`), so it can be replayed there. */
  deadLetterTopic: 'banyan.dlq.topic',
  deadLetterCode: 'banyan.dlq.code',
  /** Where in Kafka the failed input was (a transform's or sink's input), as Kafka Connect's `__connect.errors.topic/partition/offset`. */
  deadLetterInputTopic: 'banyan.dlq.input.topic',
  deadLetterInputPartition: 'banyan.dlq.input.partition',
  deadLetterInputOffset: 'banyan.dlq.input.offset',
} as const;

/** What happened to a row or an object. `snapshot` is an initial read of a row that already existed. */
export type Operation = 'insert' | 'update' | 'delete' | 'snapshot' | 'reconciled';

/** JSON-safe value used for source partitions and offsets (they are stored as JSON in Kafka). */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/**
 * One change read by a source, ready to be written to Kafka.
 * `value` is an Avro-encodable object for `valueSchema`; `null` value is a tombstone.
 */
export interface SourceRecord {
  topic: string;
  /** The entity's id, so that one entity's changes stay in one partition, in order. */
  key: Record<string, unknown>;
  value: Record<string, unknown> | null;
  /** Avro schemas (JSON form) of key and value; the runner registers them under `<topic>-key|value`. */
  schema: { key: object; value: object };
  headers: Record<string, string>;
  /** When the change was committed at the source, in ms since the epoch. */
  timestamp?: number;
  /**
   * Key and value already in Avro's binary encoding for `schema` (without the registry's framing),
   * from a source that writes its records directly: the runner then sends these bytes, and `key`
   * and `value` only describe the record for a dead letter.
   */
  encoded?: { key: Uint8Array; value: Uint8Array | null };
  /**
   * Marks the records of one change that must not be split, e.g. an update that changed the key
   * (delete, tombstone, insert): adjacent records with the same group are written all together, or
   * all go to the dead-letter topic, so the old key is never deleted without the new one written.
   */
  group?: string;
  /** The Kafka record it was made of, for a pipeline that consumes (a transform): named by its dead letter if it cannot be written. */
  input?: { topic: string; partition: number; offset: string };
}

/** A record that could not be turned into a SourceRecord: it goes to the dead-letter topic. */
export interface DeadLetter {
  /** A readable name of where it came from: `postgres:public.users`, `salesforce:Contact`. */
  source: string;
  reason: string;
  stage: 'receiving' | 'processing' | 'sending';
  code?: string;
  /** The original input, as faithfully as JSON can carry it. */
  payload: unknown;
  key?: string;
  /** The topic the record would have gone to, when the source or the runner knows it. */
  topic?: string;
  /** The Kafka record it was made of, for a pipeline that consumes (transforms, sinks). */
  input?: { topic: string; partition: number; offset: string };
}
