import { afterAll, describe, expect, it } from 'vitest';
import { createTopic, freshName, readAll, testKafka } from '../helpers';

/**
 * read_committed as Banyan's consumers read it (kafkajs, patched: patches/kafkajs+*.patch). The
 * broker lists a fetch's aborted transactions in the order they were aborted, not by their first
 * offset (KAFKA-5121's review: the client must sort them); several producers' transactions
 * interleave on one partition whenever a transform or a sink has more than one input partition,
 * and a successor fencing a killed instance aborts them in its own order.
 */
describe('read_committed over interleaved aborted transactions', () => {
  const kafka = testKafka();
  const producers: Array<{ disconnect(): Promise<void> }> = [];
  afterAll(async () => {
    for (const p of producers) await p.disconnect().catch(() => undefined);
  });

  const transactional = async () => {
    const producer = kafka.producer({ transactionalId: freshName('tx'), idempotent: true, maxInFlightRequests: 1 });
    producers.push(producer);
    await producer.connect();
    return producer;
  };

  it('yields none of the records of transactions aborted out of their first-offset order', async () => {
    const topic = freshName('aborted');
    await createTopic(kafka, topic, 1);
    const [a, b, c] = [await transactional(), await transactional(), await transactional()];
    const send = (tx: Awaited<ReturnType<typeof a.transaction>>, value: string) => tx.send({ topic, messages: [{ key: value, value, partition: 0 }] });
    // a1 b1 a2 b2 on the partition, then b aborted before a: the broker lists b first.
    const ta = await a.transaction();
    await send(ta, 'a1');
    const tb = await b.transaction();
    await send(tb, 'b1');
    await send(ta, 'a2');
    await send(tb, 'b2');
    await tb.abort();
    await ta.abort();
    const tc = await c.transaction();
    await send(tc, 'c1');
    await tc.commit();

    const values = (await readAll(kafka, topic)).map((m) => m.value?.toString());
    expect(values).toEqual(['c1']);
  });
});
