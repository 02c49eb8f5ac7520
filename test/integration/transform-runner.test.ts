import { afterEach, describe, expect, it } from 'vitest';
import type { Kafka } from 'kafkajs';
import { BadRecordError, Headers, type SourceRecord, type Transform } from '../../src/core';
import { AvroDecoder, AvroEncoder } from '../../src/runtime/avro';
import { createRootLogger } from '../../src/runtime/logger';
import { KafkaOffsetStore } from '../../src/runtime/offsets';
import { createSchemaRegistry } from '../../src/runtime/registry';
import { runnerKafka, runnerOptions, type RunnerKafka } from '../../src/runtime/source-runner';
import { TransformRunner, type TransformRunnerOptions } from '../../src/transforms/runner';
import type { BanyanConfig } from '../../src/config';
import { createTopic, freshName, readAll, testConfig, testKafka, textHeaders, waitFor, withAdmin, type ReadMessage } from '../helpers';

/**
 * The transform runner on the real broker and registry, with a small transform of its own: what
 * it guarantees (exactly once, dead letters, fencing) is the runner's, whatever the mapping.
 */
const INPUT_SCHEMA = {
  type: 'record',
  name: 'Input',
  namespace: 'banyan.test.transform',
  fields: [
    { name: 'n', type: 'long' },
    { name: 'kind', type: 'string' },
  ],
};
const INPUT_KEY_SCHEMA = { type: 'record', name: 'InputKey', namespace: 'banyan.test.transform', fields: [{ name: 'n', type: 'long' }] };
const OUTPUT_SCHEMA = {
  key: { type: 'record', name: 'OutKey', namespace: 'banyan.test.transform', fields: [{ name: 'n', type: 'long' }] },
  value: { type: 'record', name: 'Out', namespace: 'banyan.test.transform', fields: [{ name: 'n', type: 'long' }, { name: 'doubled', type: 'long' }] },
};

/** `ok` → one output; `drop` → filtered; `bad` → a BadRecordError (dead letter). */
function testTransform(output: string): Transform {
  return (input) => {
    const value = input.value as { n: bigint; kind: string };
    if (value.kind === 'drop') return { records: [], dropped: { filtered: 1 } };
    if (value.kind === 'bad') throw new BadRecordError(`n=${value.n} is bad`, { stage: 'processing', code: 'TEST_BAD' });
    const record: SourceRecord = { topic: output, key: { n: value.n }, value: { n: value.n, doubled: value.n * 2n }, schema: OUTPUT_SCHEMA, headers: {} };
    return { records: [record] };
  };
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  config: BanyanConfig;
  kafka: Kafka;
  input: string;
  output: string;
  deadLetters: string;
  name: string;
}

async function setup(partitions = 3): Promise<Setup> {
  const deadLetters = freshName('dlq');
  const config = testConfig();
  config.kafka.topics.deadLetter = deadLetters;
  config.kafka.topics.offsets = freshName('offsets');
  const kafka = testKafka(config);
  const input = freshName('transform-in');
  await createTopic(kafka, input, partitions);
  return { config, kafka, input, output: freshName('transform-out'), deadLetters, name: freshName('tr') };
}

/** Writes inputs n = from…to-1 (kind by `kindOf`), keyed by n, framed through the registry. */
async function produceInputs(s: Setup, from: number, to: number, kindOf: (n: number) => string = () => 'ok'): Promise<void> {
  const encoder = new AvroEncoder(createSchemaRegistry(s.config.schemaRegistry));
  const encode = await encoder.encoderFor(`${s.input}-value`, INPUT_SCHEMA);
  const encodeKey = await encoder.encoderFor(`${s.input}-key`, INPUT_KEY_SCHEMA);
  const producer = s.kafka.producer();
  await producer.connect();
  try {
    const messages = [];
    for (let n = from; n < to; n++) messages.push({ key: Buffer.from(encodeKey({ n: BigInt(n) })), value: Buffer.from(encode({ n: BigInt(n), kind: kindOf(n) })) });
    await producer.send({ topic: s.input, messages });
  } finally {
    await producer.disconnect();
  }
}

function startRunner(s: Setup, extra: Partial<TransformRunnerOptions> = {}, wrap: (kafka: RunnerKafka) => RunnerKafka = (k) => k): TransformRunner {
  const logger = createRootLogger(s.config.log.level);
  const options: TransformRunnerOptions = {
    ...runnerOptions(s.config),
    name: s.name,
    topics: [s.input],
    sessionTimeoutMs: 10_000,
    backoffMs: { min: 100, max: 2000 },
    ...extra,
  };
  const registry = createSchemaRegistry(s.config.schemaRegistry);
  const runner = new TransformRunner(
    testTransform(s.output),
    s.kafka,
    wrap(runnerKafka(s.kafka, options, logger)),
    new AvroEncoder(registry),
    new AvroDecoder(s.config.schemaRegistry),
    new KafkaOffsetStore(s.kafka, s.config.kafka.topics.offsets, 1),
    logger,
    options,
  );
  cleanups.push(() => runner.stop());
  return runner;
}

async function outputs(s: Setup): Promise<bigint[]> {
  const decoder = new AvroDecoder(s.config.schemaRegistry);
  const messages = await readAll(s.kafka, s.output);
  const values = await Promise.all(messages.map(async (m) => ((await decoder.decode(m.value!)) as { n: bigint }).n));
  return values.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function range(from: number, to: number, keep: (n: number) => boolean = () => true): bigint[] {
  const out: bigint[] = [];
  for (let n = from; n < to; n++) if (keep(n)) out.push(BigInt(n));
  return out;
}

async function committedTotal(s: Setup, groupId: string): Promise<number> {
  return withAdmin(s.kafka, async (admin) => {
    const [result] = await admin.fetchOffsets({ groupId, topics: [s.input] });
    return (result?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
  });
}

describe('TransformRunner', () => {
  it('maps every input once, dead-letters what it cannot decode or map with where it came from, counts what it drops', async () => {
    const s = await setup();
    const kindOf = (n: number) => (n % 30 === 7 ? 'drop' : n % 50 === 11 ? 'bad' : 'ok');
    await produceInputs(s, 0, 300, kindOf);
    // Bytes that are no Confluent-framed Avro at all.
    const producer = s.kafka.producer();
    await producer.connect();
    await producer.send({ topic: s.input, messages: [{ key: 'garbage', value: Buffer.from('not avro') }] });
    await producer.disconnect();

    const runner = startRunner(s);
    await runner.start();
    const groupId = runner.status.details.groupId as string;
    await waitFor(async () => (await committedTotal(s, groupId)) === 301, 'all 301 inputs committed');

    expect(await outputs(s)).toEqual(range(0, 300, (n) => kindOf(n) === 'ok'));
    const letters = await readAll(s.kafka, s.deadLetters);
    const headers = letters.map((m: ReadMessage) => textHeaders(m));
    expect(headers.map((h) => h[Headers.deadLetterCode]).sort()).toEqual([...Array(6).fill('TEST_BAD'), 'UNDECODABLE']);
    for (const h of headers) {
      expect(h[Headers.deadLetterInputTopic]).toBe(s.input);
      expect(Number(h[Headers.deadLetterInputPartition])).toBeGreaterThanOrEqual(0);
      expect(h[Headers.deadLetterInputOffset]).toMatch(/^\d+$/);
      expect(h[Headers.deadLetterSource]).toBe(`transform:${s.name}`);
    }
    expect(headers.find((h) => h[Headers.deadLetterCode] === 'UNDECODABLE')![Headers.deadLetterStage]).toBe('receiving');
    const status = runner.status;
    expect(status).toMatchObject({ kind: 'transform', state: 'running', records: 284, deadLetters: 7 });
    expect(status.details).toMatchObject({ inputs: 301, dropped: { filtered: 10 }, lag: 0 });
  });

  it('a second runner joining mid-stream (a rebalance) and the first leaving: no duplicate, no loss', async () => {
    const s = await setup();
    await produceInputs(s, 0, 1000);
    const a = startRunner(s);
    await a.start();
    await waitFor(async () => a.status.records > 0, 'runner A to write its first events');
    const beforeJoin = a.status.records;
    const b = startRunner(s);
    await b.start();
    // Inputs keep coming while the group rebalances.
    for (let n = 1000; n < 4000; n += 100) await produceInputs(s, n, n + 100);
    // Both own partitions once the group has rebalanced.
    await waitFor(
      () => (a.status.details.partitions as string[]).length > 0 && (b.status.details.partitions as string[]).length > 0,
      () => `both runners to own partitions (A ${JSON.stringify(a.status.details.partitions)}, B ${JSON.stringify(b.status.details.partitions)})`,
    );
    const groupId = a.status.details.groupId as string;
    await waitFor(async () => (await committedTotal(s, groupId)) === 4000, 'all 4000 inputs committed');
    await a.stop();
    await produceInputs(s, 4000, 5000);
    await waitFor(async () => (await committedTotal(s, groupId)) === 5000, 'B to take over A’s partitions and commit all 5000');
    expect(await outputs(s)).toEqual(range(0, 5000));
    expect(a.status.records + b.status.records).toBe(5000);
    // The rebalance came mid-stream: A went on writing after B joined, and B wrote too.
    expect(a.status.records).toBeGreaterThan(beforeJoin);
    expect(b.status.records).toBeGreaterThan(0);
    expect(a.status.details.rebalances).toBeGreaterThanOrEqual(2);
  });

  it('a zombie’s late commit is refused once the partition’s new owner initialised its transactional id', async () => {
    const s = await setup(1);
    await produceInputs(s, 0, 100);
    const runner = startRunner(s);
    const groupId = runner.status.details.groupId as string;
    // The zombie: the previous owner of partition 0, stalled with a transaction open (an event
    // written, the input's offsets sent) when the partition moved to the runner.
    const zombie = s.kafka.producer({ transactionalId: runner.transactionalId(s.input, 0), idempotent: true, maxInFlightRequests: 1 });
    await zombie.connect();
    cleanups.push(() => zombie.disconnect());
    await createTopic(s.kafka, s.output, 1);
    const tx = await zombie.transaction();
    await tx.send({ topic: s.output, messages: [{ key: 'zombie', value: 'zombie' }] });
    await tx.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: s.input, partitions: [{ partition: 0, offset: '100' }] }] });

    await runner.start();
    await waitFor(async () => (await committedTotal(s, groupId)) === 100, 'the runner to commit all 100 inputs');
    await expect(tx.commit()).rejects.toMatchObject({ type: expect.stringMatching(/INVALID_PRODUCER_EPOCH|PRODUCER_FENCED/) });
    // Every input mapped by the runner, once; the zombie's event never became visible.
    expect(await outputs(s)).toEqual(range(0, 100));
  });

  it('a runner whose commit stalled past its session is fenced by the new owner, writes nothing, and maps again once the partition is its own anew', async () => {
    const s = await setup(1);
    await produceInputs(s, 0, 100);
    // Runner A's first commit stalls (a stuck network, a long pause) until the test lets it go.
    let release!: () => void;
    const stalled = new Promise<void>((resolve) => (release = resolve));
    let stalls = 0;
    const stalling = (kafka: RunnerKafka): RunnerKafka => ({
      ...kafka,
      producer: (id) => {
        const producer = kafka.producer(id);
        return {
          init: () => producer.init(),
          close: () => producer.close(),
          commitTransaction: async (requests, offsets) => {
            if (stalls++ === 0) await stalled;
            return producer.commitTransaction(requests, offsets);
          },
        };
      },
    });
    const a = startRunner(s, { sessionTimeoutMs: 6000 }, stalling);
    await a.start();
    await waitFor(() => stalls > 0, 'runner A to reach its first commit');
    // A sends no heartbeat while it waits: the group gives the partition to B once A's session ends.
    const b = startRunner(s, { sessionTimeoutMs: 6000 });
    await b.start();
    const groupId = a.status.details.groupId as string;
    await waitFor(async () => (await committedTotal(s, groupId)) === 100, 'B to take the partition over and commit all 100 inputs');
    release();
    await waitFor(() => a.status.details.fencedPartitions === 1, () => `A to be refused as fenced (${JSON.stringify(a.status.details)})`);
    expect(await outputs(s)).toEqual(range(0, 100));

    // B leaves; the partition is A's again, and A maps what comes next (with a producer of its own new generation).
    await b.stop();
    await produceInputs(s, 100, 150);
    await waitFor(async () => (await committedTotal(s, groupId)) === 150, 'A to own the partition again and commit the next 50 inputs');
    expect(await outputs(s)).toEqual(range(0, 150));
    expect(a.status.records).toBe(50);
  }, 120_000);
});
