import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kafka } from 'kafkajs';
import { createSchemaRegistry, registerAvro } from '../../src/runtime/registry';
import { createTopic, freshName, readAll, testConfig, testKafka } from '../helpers';

const userSchema = {
  type: 'record',
  name: 'User',
  namespace: 'banyan.test',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'email', type: 'string' },
    { name: 'balance', type: { type: 'bytes', logicalType: 'decimal', precision: 12, scale: 2 } },
  ],
};

describe('Avro through the registry and a Kafka transaction', () => {
  const config = testConfig();
  const registry = createSchemaRegistry(config.schemaRegistry);
  let kafka: Kafka;

  beforeAll(() => {
    kafka = testKafka(config);
  });
  afterAll(async () => undefined);

  it('reads back with read_committed exactly what a committed transaction wrote, and nothing of an aborted one', async () => {
    const topic = freshName('avro');
    await createTopic(kafka, topic);
    const id = await registerAvro(registry, `${topic}-value`, userSchema);
    const balance = Buffer.from([0x30, 0x39]); // 12345 unscaled = 123.45
    const committed = await registry.encode(id, { id: 1, email: 'ada@example.com', balance });
    const aborted = await registry.encode(id, { id: 2, email: 'ghost@example.com', balance });

    expect(committed[0]).toBe(0); // Confluent wire format: magic byte, then the schema id
    expect(committed.readInt32BE(1)).toBe(id);

    const producer = kafka.producer({ transactionalId: freshName('tx'), idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const abortedTx = await producer.transaction();
    await abortedTx.send({ topic, messages: [{ key: '2', value: aborted }] });
    await abortedTx.abort();
    const tx = await producer.transaction();
    await tx.send({ topic, messages: [{ key: '1', value: committed, headers: { 'banyan.origin': 'legacy' } }] });
    await tx.commit();
    await producer.disconnect();

    // Both transactions ended: everything up to the end offsets is all there is.
    const messages = await readAll(kafka, topic);
    expect(messages).toHaveLength(1);
    const [message] = messages;
    expect(message?.key?.toString()).toBe('1');
    expect(message?.headers?.['banyan.origin']?.toString()).toBe('legacy');
    const decoded = await registry.decode(message!.value!);
    expect(decoded).toEqual({ id: 1, email: 'ada@example.com', balance });
  });

  it('registers a compatible evolution and refuses an incompatible one', async () => {
    const subject = `${freshName('evolve')}-value`;
    const v1 = await registerAvro(registry, subject, userSchema);
    const v2Schema = { ...userSchema, fields: [...userSchema.fields, { name: 'phone', type: ['null', 'string'], default: null }] };
    const v2 = await registerAvro(registry, subject, v2Schema);
    expect(v2).not.toBe(v1);
    expect(await registerAvro(registry, subject, v2Schema)).toBe(v2); // same schema, same id

    const breaking = { ...userSchema, fields: [...userSchema.fields, { name: 'required_without_default', type: 'string' }] };
    await expect(registerAvro(registry, subject, breaking)).rejects.toThrow();
  });
});
