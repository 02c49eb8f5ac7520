import type { Json } from './envelope';

export const OffsetStore = Symbol.for('banyan.OffsetStore');

/**
 * Where sources' positions live. Writes happen inside the same Kafka transaction as the records:
 * the store names the topic and builds the message, the runner sends it with the batch; the store
 * itself only reads what was committed.
 */
export interface OffsetStore {
  /** The topic the runner writes offset messages to, in its transaction. */
  readonly topic: string;
  /** Creates the topic if needed; returns its number of partitions. */
  ensureTopic(): Promise<number>;
  /** The last committed offset of each partition of `sourceName`, keyed by `partitionKey`. */
  load(sourceName: string): Promise<Map<string, Record<string, Json>>>;
  /** The message that stores one partition's offset (key: `partitionKey`). */
  message(key: string, offset: Record<string, Json>): { key: string; value: string };
}
