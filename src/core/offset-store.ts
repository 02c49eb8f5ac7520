import type { Json } from './envelope';

export const OffsetStore = Symbol.for('banyan.OffsetStore');

/**
 * Where sources' positions live. Writes happen inside the same Kafka transaction as the records
 * (see TransactionalWriter); the store only reads what was committed.
 */
export interface OffsetStore {
  /** The last committed offset of each partition of `sourceName`, keyed by `partitionKey`. */
  load(sourceName: string): Promise<Map<string, Record<string, Json>>>;
}
