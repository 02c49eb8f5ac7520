import type { Producer } from 'kafkajs';
import { builtinCatalog } from './catalog';
import type { DomainEvent } from './event';
import { eventRecords } from './records';
import { registerDomainSchemas, type RegisteredTopic } from './registry';
import { kafkaOf, type SubscribeOptions } from './subscribe';

/** Confluent framing: magic byte 0, the schema id (big-endian), the Avro body. */
function frame(id: number, body: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeInt32BE(id, 1);
  return Buffer.concat([header, body]);
}

export interface Publisher {
  /** Writes the events in one Kafka transaction: all of them or none. A deleted-kind event is followed by its tombstone. */
  publish(events: DomainEvent[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * The publishing helper of domain services, the counterpart of `subscribe`: events checked against
 * the catalog, encoded with its registered schemas (BACKWARD), keyed by entity, written
 * transactionally with the same headers the transforms write. A domain service's events carry
 * `origin: 'domain'` and the time the change committed in that service as `sourceCommitTime`: the
 * legacy sink's last-writer-wins compares it with the legacy side's (docs/conflicts.md).
 */
export async function createPublisher(options: SubscribeOptions, transactionalId: string): Promise<Publisher> {
  const kafka = kafkaOf(options.kafka, 'banyan-domain-publisher');
  const catalog = options.catalog ?? builtinCatalog();
  const ids: Record<string, RegisteredTopic> = await registerDomainSchemas(options.schemaRegistry, catalog);
  const producer: Producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  return {
    async publish(events) {
      // A service's events are the domain's: one marked legacy or salesforce would only ever be observed, never written back.
      const foreign = events.find((e) => e.origin !== 'domain');
      if (foreign) throw new Error(`${foreign.type} ${foreign.entityId}: a domain service publishes events of origin 'domain', not '${foreign.origin}'`);
      const byTopic = new Map<string, Array<{ key: Buffer; value: Buffer | null; headers: Record<string, string>; timestamp: string }>>();
      for (const event of events) {
        for (const record of eventRecords(event, catalog)) {
          const { key, value } = ids[record.topic]!;
          const messages = byTopic.get(record.topic) ?? [];
          messages.push({
            key: frame(key, record.encoded!.key),
            value: record.encoded!.value ? frame(value, record.encoded!.value) : null,
            headers: record.headers,
            timestamp: String(record.timestamp),
          });
          byTopic.set(record.topic, messages);
        }
      }
      const transaction = await producer.transaction();
      try {
        await transaction.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
        await transaction.commit();
      } catch (error) {
        await transaction.abort().catch(() => undefined);
        throw error;
      }
    },
    close: () => producer.disconnect(),
  };
}
