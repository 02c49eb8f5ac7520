import type { Kafka } from 'kafkajs';
import type { Json, OffsetStore } from '../core';
import { ensureTopics, readToEnd } from './kafka';

/**
 * Source positions in a compacted Kafka topic, as Kafka Connect keeps them: the key is
 * `partitionKey(source, partition)`, the value the offset as JSON, written in the same transaction
 * as the records they follow.
 */
export class KafkaOffsetStore implements OffsetStore {
  constructor(
    private readonly kafka: Kafka,
    readonly topic: string,
    private readonly replicationFactor: number,
  ) {}

  /** Creates the topic if needed; returns its number of partitions. */
  async ensureTopic(): Promise<number> {
    const partitions = await ensureTopics(this.kafka, [
      { topic: this.topic, numPartitions: 5, replicationFactor: this.replicationFactor, compacted: true },
    ]);
    return partitions.get(this.topic)!;
  }

  async load(sourceName: string): Promise<Map<string, Record<string, Json>>> {
    const offsets = new Map<string, Record<string, Json>>();
    await readToEnd(this.kafka, this.topic, (message) => {
      const key = message.key?.toString();
      if (!key || !isOwnedBy(key, sourceName)) return;
      if (message.value === null) offsets.delete(key);
      else offsets.set(key, JSON.parse(message.value.toString()) as Record<string, Json>);
    });
    return offsets;
  }

  /** The offsets-topic message for one partition's offset (sent inside the caller's transaction). */
  message(key: string, offset: Record<string, Json>): { key: string; value: string } {
    return { key, value: JSON.stringify(offset) };
  }
}

function isOwnedBy(key: string, sourceName: string): boolean {
  try {
    const parsed = JSON.parse(key) as unknown;
    return Array.isArray(parsed) && parsed[0] === sourceName;
  } catch {
    return false;
  }
}
