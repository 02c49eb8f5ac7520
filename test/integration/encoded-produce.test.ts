import { Partitioners } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchBuilder } from '../../src/runtime/batch-builder';
import { encodedRequestCount } from '../../src/runtime/encoded-produce';
import { PRODUCER_FENCED, RecordSetProducer } from '../../src/runtime/transactional-producer';
import { createTopic, freshName, readAll, readTopic, testConfig, testKafka, withAdmin } from '../helpers';

/**
 * Record batches Banyan encodes itself, sent through kafkajs's transactions to the real broker
 * (which checks CRCs, sequences and epochs) and read back by an ordinary kafkajs consumer. Run
 * twice (vitest.config.ts): the second time the same record sets go through kafkajs's own encoder.
 */
const config = testConfig();
const encoded = config.kafka.encodedProduce;

describe(`record batches through a transactional producer (kafka.encodedProduce: ${encoded})`, () => {
  const kafka = testKafka(config);
  const producers: Array<{ close(): Promise<void> }> = [];
  afterAll(async () => {
    for (const p of producers) await p.close().catch(() => undefined);
  });

  const batchOf = (topic: string, from: number, to: number, maxSetBytes = 2_000) => {
    const builder = new BatchBuilder({ maxMessageBytes: 1_000_000, maxSetBytes, partitionsOf: () => 3 });
    for (let i = from; i < to; i++) {
      builder.add(topic, `key-${i % 10}`, Buffer.from(`value-${i}`), { 'banyan.operation': 'insert', n: String(i) }, 1_700_000_000_000 + i);
    }
    // Small requests: one transaction spans many produce requests and several batches per partition.
    return builder.requests(3_000);
  };

  /** A producer on a fresh 3-partition topic that has committed records 0–99. */
  const producerWithCommits = async (topicPrefix: string, transactionalId = freshName('tx')) => {
    const topic = freshName(topicPrefix);
    await createTopic(kafka, topic, 3);
    const producer = new RecordSetProducer(kafka, transactionalId, encoded);
    producers.push(producer);
    await producer.init();
    await producer.commitTransaction(batchOf(topic, 0, 100));
    return { topic, producer };
  };

  /** The record numbers a read_committed consumer sees, all of them: every transaction has ended. */
  const committedNumbers = async (topic: string) => {
    const messages = await readAll(kafka, topic);
    return messages.map((m) => Number(m.headers!.n!.toString())).sort((a, b) => a - b);
  };
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

  it('delivers every record once, in order per key, in the partition Kafka’s default partitioner picks', async () => {
    const topic = freshName('encoded');
    await createTopic(kafka, topic, 3);
    const producer = new RecordSetProducer(kafka, freshName('tx'), encoded);
    producers.push(producer);
    await producer.init();
    const first = batchOf(topic, 0, 300);
    expect(first.length).toBeGreaterThan(3);
    const encodedBefore = encodedRequestCount();
    await producer.commitTransaction(first);
    await producer.commitTransaction(batchOf(topic, 300, 600));
    // The records took the path the setting names: Banyan's Produce requests, or none of them.
    expect(encodedRequestCount() > encodedBefore).toBe(encoded);

    const messages = await readAll(kafka, topic);
    expect(messages).toHaveLength(600);
    const partitioner = Partitioners.DefaultPartitioner();
    const partitionMetadata = [0, 1, 2].map((partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }));
    const seen = new Map<string, number[]>();
    for (const m of messages) {
      const n = Number(m.headers!.n!.toString());
      expect(m.value!.toString()).toBe(`value-${n}`);
      expect(m.key!.toString()).toBe(`key-${n % 10}`);
      expect(m.timestamp).toBe(String(1_700_000_000_000 + n));
      expect(m.headers!['banyan.operation']!.toString()).toBe('insert');
      expect(m.partition).toBe(partitioner({ topic, partitionMetadata, message: { key: m.key, value: null } }));
      seen.set(m.key!.toString(), [...(seen.get(m.key!.toString()) ?? []), n]);
    }
    for (const ns of seen.values()) expect(ns).toEqual([...ns].sort((a, b) => a - b));
    expect(new Set(messages.map((m) => m.headers!.n!.toString())).size).toBe(600);
  });

  it('after a failed transaction starts again with a new epoch: the failed records stay invisible, the next ones land', async () => {
    const { topic, producer } = await producerWithCommits('encoded-retry');
    const compacted = freshName('compacted');
    await withAdmin(kafka, (admin) =>
      admin.createTopics({ waitForLeaders: true, topics: [{ topic: compacted, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] }),
    );

    // A compacted topic refuses a record without a key (INVALID_RECORD): the whole transaction fails.
    const refused = new BatchBuilder({ maxMessageBytes: 1_000_000, maxSetBytes: 100_000, partitionsOf: () => 1 });
    refused.add(compacted, null, 'no key', undefined, Date.now());
    await expect(producer.commitTransaction([...batchOf(topic, 100, 200), ...refused.requests(100_000)])).rejects.toThrow(/INVALID_RECORD|failed the validation/i);

    // The next commit runs on a new epoch whose sequences start again at 0 (the broker checks).
    await producer.commitTransaction(batchOf(topic, 200, 300));
    expect(await committedNumbers(topic)).toEqual([...range(0, 100), ...range(200, 300)]);
  });

  it('once fenced by a newer instance, refuses every later transaction instead of fencing it back', async () => {
    const transactionalId = freshName('tx');
    const { topic, producer } = await producerWithCommits('encoded-fenced', transactionalId);

    const newer = new RecordSetProducer(kafka, transactionalId, encoded);
    producers.push(newer);
    await newer.init();
    await expect(producer.commitTransaction(batchOf(topic, 100, 200))).rejects.toMatchObject({ code: PRODUCER_FENCED });
    await expect(producer.commitTransaction(batchOf(topic, 200, 300))).rejects.toMatchObject({ code: PRODUCER_FENCED });
    // The newer instance was not fenced back: it still commits.
    await newer.commitTransaction(batchOf(topic, 300, 400));

    expect(await committedNumbers(topic)).toEqual([...range(0, 100), ...range(300, 400)]);
  });

  it('leaves plain kafkajs messages to kafkajs in the same process', async () => {
    const topic = freshName('plain');
    await createTopic(kafka, topic, 1);
    new RecordSetProducer(kafka, freshName('tx'), true); // installs the encoded path, whatever the run's setting
    const plain = kafka.producer();
    await plain.connect();
    await plain.send({ topic, messages: [{ key: 'k', value: 'plain value', headers: { h: 'v' } }] });
    await plain.disconnect();
    const [message] = await readTopic(kafka, topic, 1);
    expect(message!.value!.toString()).toBe('plain value');
    expect(message!.headers!.h!.toString()).toBe('v');
  });
});
