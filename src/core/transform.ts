import type { DeadLetter, SourceRecord } from './envelope';

/**
 * One record a transform consumed, decoded: the key and value as the registry's Avro schemas read
 * them (longs as BigInt, decimals as bytes), `null` value for a tombstone.
 */
export interface TransformInput {
  topic: string;
  partition: number;
  /** The record's offset in its partition, as Kafka gives it (a decimal string). */
  offset: string;
  key: unknown;
  value: Record<string, unknown> | null;
  headers: Record<string, string>;
  /** The record's Kafka timestamp, in ms since the epoch. */
  timestamp: number;
}

/**
 * What a mapping made of one input: the records to write (domain events and their tombstones, in
 * order), or why it could not (a dead letter), or why it chose to write nothing (`dropped`, counted
 * by reason: an echo, a filtered change, a change type not served).
 */
export interface TransformResult {
  records: SourceRecord[];
  deadLetters?: DeadLetter[];
  /** Inputs deliberately turned into nothing, by reason (`echo`, `filtered`, `lifecycle:new-owned`…). */
  dropped?: Record<string, number>;
}

/**
 * A pure mapping from one input record to zero or more output records: no I/O, no clock, no state.
 * The runner around it consumes, produces and commits in one Kafka transaction. It throws a
 * BadRecordError for an input it cannot map (the runner dead-letters it with the error).
 */
export type Transform<In = TransformInput, Out = TransformResult> = (input: In) => Out;
