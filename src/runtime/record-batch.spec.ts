import { createRequire } from 'node:module';
import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { BatchBuilder } from './batch-builder';
import { BATCH_HEADER_BYTES, crc32c, murmur2, partitionForKey, RecordSetWriter, sealBatch, varintSize, writeVarint } from './record-batch';

const require = createRequire(import.meta.url);
// kafkajs's own decoder and CRC are the reference our bytes are checked against.
const Decoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => unknown;
const decodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (decoder: unknown) => Promise<DecodedBatch>;
const kafkajsCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C') as (buffer: Buffer) => number;

interface DecodedBatch {
  firstOffset: string;
  firstTimestamp: string;
  maxTimestamp: string;
  producerId: string;
  producerEpoch: number;
  firstSequence: number;
  inTransaction: boolean;
  lastOffsetDelta: number;
  records: Array<{ key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer>; timestamp: string; offset: string }>;
}

async function decode(batch: Buffer): Promise<DecodedBatch> {
  return decodeBatch(new Decoder(batch));
}

describe('record batches', () => {
  it('computes CRC-32C as Kafka does', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    const random = Buffer.from(Array.from({ length: 1003 }, (_, i) => (i * 7919 + 13) & 0xff));
    expect(crc32c(random)).toBe(kafkajsCrc32c(random) >>> 0);
    expect(crc32c(random, 5, 900)).toBe(kafkajsCrc32c(random.subarray(5, 900)) >>> 0);
  });

  it('picks the partition for a key as kafkajs and the Java client do', () => {
    const partitioner = Partitioners.DefaultPartitioner();
    const partitionMetadata = Array.from({ length: 7 }, (_, partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }));
    for (let i = 0; i < 200; i++) {
      const key = Buffer.from(`key-${i}-${'x'.repeat(i % 5)}`);
      expect(partitionForKey(key, 7)).toBe(partitioner({ topic: 't', partitionMetadata, message: { key, value: null } }));
    }
    // Java's Utils.murmur2 of "21" (a value from Kafka's own tests).
    expect(murmur2(Buffer.from('21'))).toBe(-973932308);
  });

  it('writes zigzag varints of 32-bit and larger values', () => {
    const buf = Buffer.alloc(16);
    for (const n of [0, -1, 1, 63, -64, 64, 300, -300, 2 ** 31, -(2 ** 31) - 5, 2 ** 40 + 3, -(2 ** 45)]) {
      const end = writeVarint(buf, 0, n);
      expect(end).toBe(varintSize(n));
      let z = 0;
      let scale = 1;
      for (let i = 0; i < end; i++) {
        z += (buf[i]! & 0x7f) * scale;
        scale *= 128;
      }
      expect(z % 2 === 0 ? z / 2 : -(z + 1) / 2).toBe(n);
    }
  });

  it('encodes records that kafkajs decodes back: keys, values, headers, timestamps, nulls and producer fields', async () => {
    const writer = new RecordSetWriter('orders', 2, 256);
    writer.append(Buffer.from([1, 2, 3]), Buffer.from('first'), { 'banyan.origin': 'legacy', 'ü-key': 'välue' }, 1_700_000_000_123);
    writer.append('text key', null, undefined, 1_700_000_000_100);
    // Large enough to make the buffer grow several times.
    writer.append(null, Buffer.alloc(5000, 7), { a: '' }, 1_700_000_009_999);
    const set = writer.finish();
    const batch = sealBatch(set, { producerId: 4242n, producerEpoch: 3, baseSequence: 17, transactional: true });
    expect(batch.readUInt32BE(17)).toBe(crc32c(batch, 21));
    expect(batch.length).toBe(set.buffer.length);

    const decoded = await decode(batch);
    expect(decoded).toMatchObject({
      firstTimestamp: '1700000000123',
      maxTimestamp: '1700000009999',
      producerId: '4242',
      producerEpoch: 3,
      firstSequence: 17,
      inTransaction: true,
      lastOffsetDelta: 2,
    });
    const [a, b, c] = decoded.records;
    expect(a!.key).toEqual(Buffer.from([1, 2, 3]));
    expect(a!.value!.toString()).toBe('first');
    expect(Object.fromEntries(Object.entries(a!.headers).map(([k, v]) => [k, v.toString()]))).toEqual({ 'banyan.origin': 'legacy', 'ü-key': 'välue' });
    expect(b!.key!.toString()).toBe('text key');
    expect(b!.value).toBeNull();
    expect(b!.timestamp).toBe('1700000000100');
    expect(c!.key).toBeNull();
    expect(c!.value).toEqual(Buffer.alloc(5000, 7));
    expect(c!.headers.a!.length).toBe(0);
    expect(decoded.records.map((r) => r.offset)).toEqual(['0', '1', '2']);
  });

  it('refuses a record larger than the room it is given and writes nothing', () => {
    const writer = new RecordSetWriter('t', 0);
    const size = writer.append(null, Buffer.alloc(100), undefined, 1, 50);
    expect(size).toBeLessThan(-100);
    expect(writer.count).toBe(0);
    expect(writer.size).toBe(BATCH_HEADER_BYTES);
  });
});

describe('BatchBuilder', () => {
  const builder = (maxSetBytes: number, partitions = 3) =>
    new BatchBuilder({ maxMessageBytes: 10_000, maxSetBytes, partitionsOf: () => partitions });

  it('keeps each partition in order across sets and puts at most one set of a partition in a request', async () => {
    const b = builder(600);
    for (let i = 0; i < 60; i++) b.add('t', `k${i % 4}`, `value-${i}`.padEnd(40, '.'), undefined, 1000 + i);
    const requests = b.requests(1_000);
    for (const request of requests) {
      const ids = request.map((s) => `${s.topic}/${s.partition}`);
      expect(new Set(ids).size).toBe(ids.length);
      expect(request.reduce((n, s) => n + s.buffer.length, 0) <= 1_000 || request.length === 1).toBe(true);
    }
    const byPartition = new Map<number, string[]>();
    for (const request of requests) {
      for (const set of request) {
        const decoded = await decode(sealBatch(set, { producerId: -1n, producerEpoch: 0, baseSequence: -1, transactional: false }));
        const values = byPartition.get(set.partition) ?? [];
        values.push(...decoded.records.map((r) => r.value!.toString()));
        byPartition.set(set.partition, values);
      }
    }
    const all = [...byPartition.values()].flat();
    expect(all).toHaveLength(60);
    for (const values of byPartition.values()) {
      const order = values.map((v) => Number(/value-(\d+)/.exec(v)![1]));
      expect(order).toEqual([...order].sort((x, y) => x - y));
    }
    // Every record of a key is in the partition Kafka's default partitioner gives that key.
    for (const [partition, values] of byPartition) {
      for (const v of values) expect(partitionForKey(Buffer.from(`k${Number(/value-(\d+)/.exec(v)![1]) % 4}`), 3)).toBe(partition);
    }
  });

  it('refuses a record that no batch within maxMessageBytes can hold, naming its size', () => {
    const b = builder(100_000);
    expect(() => b.add('t', 'k', Buffer.alloc(20_000), undefined, 1)).toThrow(/record of \d+ bytes does not fit in a record batch of kafka.maxMessageBytes \(10000\)/);
    expect(b.requests(1_000_000)).toEqual([]);
  });

  it('spreads records without a key over the partitions in turn', () => {
    const b = builder(100_000);
    for (let i = 0; i < 6; i++) b.add('t', null, 'v', undefined, 1);
    expect(b.requests(1_000_000)[0]!.map((s) => [s.partition, s.count])).toEqual([
      [0, 2],
      [1, 2],
      [2, 2],
    ]);
  });
});
