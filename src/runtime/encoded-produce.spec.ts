import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Message } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { encodedMessages, installEncodedProduce, KAFKAJS_VERSION, nextSequence, SequenceNumbers } from './encoded-produce';
import { readRecords, RecordSetWriter, type RecordSet } from './record-batch';

const require = createRequire(import.meta.url);
type Encoded = { buffer: Buffer };
type RequestArgs = Record<string, unknown> & { topicData: unknown[] };
type Request = { encode: () => Promise<Encoded> };
// kafkajs's own Produce request (v3; v4–v7 reuse its body), not the hooked one: the reference.
const kafkajsProduceV3 = require('kafkajs/src/protocol/requests/produce/v3/request') as (args: RequestArgs) => Request;
const kafkajsProduce = require('kafkajs/src/protocol/requests/produce') as { protocol: (a: { version: number }) => (args: RequestArgs) => { request: Request } };
const sendMessages = require('kafkajs/src/producer/sendMessages') as (deps: Record<string, unknown>) => (args: Record<string, unknown>) => Promise<unknown>;
const createRetry = require('kafkajs/src/retry') as (options: Record<string, number>) => unknown;
const { KafkaJSRequestTimeoutError } = require('kafkajs/src/errors') as { KafkaJSRequestTimeoutError: new (message: string) => Error };
const { DefaultPartitioner } = require('kafkajs/src/producer/partitioners') as { DefaultPartitioner: () => unknown };

installEncodedProduce();

interface TestRecord {
  key: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, string>;
  timestamp: number;
}

/** Keys and values of every kind, unicode headers, a record without headers, a timestamp gap beyond 32 bits. */
const RECORDS: Record<string, TestRecord[]> = {
  'orders/0': [
    { key: Buffer.from([0, 1, 2]), value: Buffer.from('first'), headers: { 'banyan.origin': 'legacy', 'ü-name': 'välue' }, timestamp: 1_700_000_000_000 },
    { key: 'text key', value: null, timestamp: 1_700_000_000_000 },
    { key: null, value: Buffer.alloc(3000, 9), headers: { empty: '' }, timestamp: 1_700_005_000_123 },
  ],
  'orders/2': [{ key: 'k', value: 'only one', headers: { a: 'b', c: 'd' }, timestamp: 1_700_000_000_001 }],
  'banyan.offsets/1': [{ key: '["src",{}]', value: '{"position":42}', timestamp: 1_700_000_000_002 }],
};

function recordSets(): RecordSet[] {
  return Object.entries(RECORDS).map(([where, records]) => {
    const [topic, partition] = where.split('/');
    const writer = new RecordSetWriter(topic!, Number(partition), 256);
    for (const r of records) writer.append(r.key, r.value, r.headers, r.timestamp);
    return writer.finish();
  });
}

/** The same records as kafkajs messages, per topic and partition, with the sequence kafkajs would give each. */
function kafkajsTopicData(firstSequence: (where: string) => number) {
  const topics = new Map<string, Array<{ partition: number; firstSequence: number; messages: Message[] }>>();
  for (const [where, records] of Object.entries(RECORDS)) {
    const [topic, partition] = where.split('/');
    const messages = records.map((r) => ({ key: r.key, value: r.value, headers: r.headers, timestamp: String(r.timestamp) }));
    topics.set(topic!, [...(topics.get(topic!) ?? []), { partition: Number(partition), firstSequence: firstSequence(where), messages }]);
  }
  return [...topics].map(([topic, partitions]) => ({ topic, partitions }));
}

/** Our topicData as kafkajs's sendBatch hands it to the Produce request: placeholders, one per set. */
function ourTopicData(sets: RecordSet[]) {
  return encodedMessages(sets).map(({ topic, messages }) => ({
    topic,
    partitions: messages.map((m) => ({ partition: m.partition!, messages: [m] })),
  }));
}

let producerIds = 5_000n;
const producer = (transactionalId: string) => ({ transactionalId, producerId: String(producerIds++), producerEpoch: 7, acks: -1, timeout: 30_000 });

/** The base sequence of every record batch in a Produce request body, by "topic/partition". */
function baseSequences(body: Buffer): Record<string, number> {
  const found: Record<string, number> = {};
  let pos = 2 + Math.max(body.readInt16BE(0), 0) + 2 + 4;
  for (let topics = body.readInt32BE((pos += 4) - 4); topics > 0; topics--) {
    const topicLength = body.readInt16BE(pos);
    const topic = body.toString('utf8', pos + 2, pos + 2 + topicLength);
    pos += 2 + topicLength;
    for (let partitions = body.readInt32BE((pos += 4) - 4); partitions > 0; partitions--) {
      const partition = body.readInt32BE(pos);
      const size = body.readInt32BE(pos + 4);
      found[`${topic}/${partition}`] = body.readInt32BE(pos + 8 + 53);
      pos += 8 + size;
    }
  }
  return found;
}

/** Where two buffers first differ, with a few bytes of each from there: short enough to read in a failure. */
function firstDifference(ours: Buffer, theirs: Buffer): { offset: number; ours: string; theirs: string } | undefined {
  for (let i = 0; i < Math.max(ours.length, theirs.length); i++) {
    if (ours[i] !== theirs[i]) return { offset: i, ours: ours.toString('hex', i, i + 8), theirs: theirs.toString('hex', i, i + 8) };
  }
  return undefined;
}

describe('encoded Produce requests', () => {
  it(`are written for the kafkajs release package.json pins (${KAFKAJS_VERSION}), the one installed`, () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string> };
    const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, { version?: string; dependencies?: Record<string, string> }> };
    expect(pkg.dependencies.kafkajs).toBe(KAFKAJS_VERSION);
    expect(lock.packages['']!.dependencies!.kafkajs).toBe(KAFKAJS_VERSION);
    expect(lock.packages['node_modules/kafkajs']!.version).toBe(KAFKAJS_VERSION);
    expect((require('kafkajs/package.json') as { version: string }).version).toBe(KAFKAJS_VERSION);
  });

  it.each([3, 4, 5, 6, 7])('equal, byte for byte, the body kafkajs’s own encoder writes for the same records (v%i)', async (version) => {
    const args = producer(`golden-v${version}`);
    for (const request of [0, 1]) {
      const ours = await kafkajsProduce.protocol({ version })({ ...args, topicData: ourTopicData(recordSets()) }).request.encode();
      // The second request of the same producer continues each partition's sequence by its record count.
      const sequence = (where: string) => request * RECORDS[where]!.length;
      const theirs = await kafkajsProduceV3({ ...args, topicData: kafkajsTopicData(sequence) }).encode();
      expect(firstDifference(ours.buffer, theirs.buffer)).toBeUndefined();
      expect(ours.buffer.length).toBe(theirs.buffer.length);
      expect(baseSequences(ours.buffer)).toEqual({ 'orders/0': 3 * request, 'orders/2': request, 'banyan.offsets/1': request });
    }
  });

  it('read back, give kafkajs the records they were written from (the plain path, kafka.encodedProduce: false)', () => {
    for (const set of recordSets()) {
      const written = RECORDS[`${set.topic}/${set.partition}`]!;
      const toBuffer = (v: Buffer | string | null) => (v === null ? null : Buffer.from(v));
      expect(readRecords(set)).toEqual(
        written.map((r) => ({
          key: toBuffer(r.key),
          value: toBuffer(r.value),
          headers: Object.fromEntries(Object.entries(r.headers ?? {}).map(([k, v]) => [k, Buffer.from(v)])),
          timestamp: r.timestamp,
        })),
      );
    }
  });

  it('resend the same base sequence when kafkajs retries a request, and only then move on', async () => {
    const attempts: Buffer[] = [];
    let failNext = true;
    const broker = {
      nodeId: 1,
      // The broker may have written the first attempt: a timeout says nothing either way.
      produce: async (args: RequestArgs) => {
        attempts.push((await kafkajsProduce.protocol({ version: 7 })(args).request.encode()).buffer);
        if (failNext) {
          failNext = false;
          throw new KafkaJSRequestTimeoutError('Request Produce(key: 0, version: 7) timed out');
        }
        return { topics: [], throttleTime: 0 };
      },
    };
    const partitionMetadata = [0, 1, 2].map((partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }));
    const { transactionalId, producerId, producerEpoch } = producer('retried');
    // kafkajs's own send loop and retrier, around a one-broker cluster.
    const send = sendMessages({
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      cluster: {
        refreshMetadataIfNecessary: async () => undefined,
        refreshMetadata: async () => undefined,
        addMultipleTargetTopics: async () => undefined,
        isConnected: () => true,
        findTopicPartitionMetadata: () => partitionMetadata,
        findLeaderForPartitions: (_topic: string, partitions: string[]) => ({ 1: partitions.map(Number) }),
        findBroker: async () => broker,
      },
      partitioner: DefaultPartitioner(),
      eosManager: {
        isTransactional: () => true,
        getTransactionalId: () => transactionalId,
        getProducerId: () => producerId,
        getProducerEpoch: () => producerEpoch,
        getSequence: () => 0,
        updateSequence: () => undefined,
        addPartitionsToTransaction: async () => undefined,
        acquireBrokerLock: async () => undefined,
        releaseBrokerLock: async () => undefined,
      },
      retrier: createRetry({ retries: 3, initialRetryTime: 1, maxRetryTime: 5 }),
    });
    const sets = recordSets();
    const orders0 = sets.find((s) => s.topic === 'orders' && s.partition === 0)!;

    await send({ acks: -1, timeout: 30_000, topicMessages: encodedMessages([orders0]) });
    expect(attempts).toHaveLength(2);
    expect(baseSequences(attempts[0]!)).toEqual({ 'orders/0': 0 });
    // The retry is the same batch: same sequence, same bytes, so the broker drops it if it has it.
    expect(attempts[1]!.equals(attempts[0]!)).toBe(true);

    await send({ acks: -1, timeout: 30_000, topicMessages: encodedMessages(recordSets().filter((s) => s.topic === 'orders')) });
    expect(attempts).toHaveLength(3);
    expect(baseSequences(attempts[2]!)).toEqual({ 'orders/0': 3, 'orders/2': 0 });
  });
});

/** A record set of `count` records as far as sequence numbers care. */
const setOf = (count: number, partition = 0): RecordSet => ({
  topic: 't',
  partition,
  count,
  buffer: new Uint8Array(61),
  firstTimestamp: 0,
  maxTimestamp: 0,
});
const INT32_MAX = 2 ** 31 - 1;

describe('sequence numbers', () => {
  it('wrap to 0 after the largest int32, as Kafka’s DefaultRecordBatch.incrementSequence does', () => {
    // The cases of Kafka's DefaultRecordBatchTest.testIncrementSequence.
    expect(nextSequence(0, 10)).toBe(10);
    expect(nextSequence(INT32_MAX, 1)).toBe(0);
    expect(nextSequence(INT32_MAX - 5, 10)).toBe(4);
    expect(nextSequence(INT32_MAX - 2, 2)).toBe(INT32_MAX);
    expect(nextSequence(INT32_MAX - 2, 3)).toBe(0);

    const sequences = new SequenceNumbers();
    expect(sequences.baseSequence(setOf(INT32_MAX - 2), 'tx', 1n, 0)).toBe(0);
    expect(sequences.baseSequence(setOf(5), 'tx', 1n, 0)).toBe(INT32_MAX - 2);
    // That set held INT32_MAX-2, INT32_MAX-1, INT32_MAX, 0 and 1.
    expect(sequences.baseSequence(setOf(1), 'tx', 1n, 0)).toBe(2);
  });

  it('give a set its number once: a retry of the same set gets the same one', () => {
    const sequences = new SequenceNumbers();
    const set = setOf(4);
    expect(sequences.baseSequence(set, 'tx', 1n, 0)).toBe(0);
    expect(sequences.baseSequence(set, 'tx', 1n, 0)).toBe(0);
    expect(sequences.baseSequence(setOf(1), 'tx', 1n, 0)).toBe(4);
    // The same set sent again by a new epoch (after a failed transaction) is a new batch there.
    expect(sequences.baseSequence(set, 'tx', 1n, 1)).toBe(0);
  });

  it('forget the partitions of an epoch once a newer epoch or producer id of the same transactional id sends', () => {
    const sequences = new SequenceNumbers();
    for (const partition of [0, 1, 2]) sequences.baseSequence(setOf(10, partition), 'tx', 1n, 0);
    sequences.baseSequence(setOf(10), 'other', 2n, 0);
    expect(sequences.size).toBe(4);

    expect(sequences.baseSequence(setOf(3), 'tx', 1n, 1)).toBe(0);
    expect(sequences.size).toBe(2);
    // The fenced epoch still sending changes nothing: the broker refuses it on its epoch.
    expect(sequences.baseSequence(setOf(3, 1), 'tx', 1n, 0)).toBe(0);
    expect(sequences.size).toBe(2);
    expect(sequences.baseSequence(setOf(1), 'tx', 1n, 1)).toBe(3);

    // Epoch exhausted: the broker gives the transactional id a new, larger producer id.
    expect(sequences.baseSequence(setOf(1, 2), 'tx', 9n, 0)).toBe(0);
    expect(sequences.size).toBe(2);
    expect(sequences.baseSequence(setOf(1), 'tx', 1n, 1)).toBe(0);
    expect(sequences.baseSequence(setOf(1, 2), 'tx', 9n, 0)).toBe(1);
  });
});
