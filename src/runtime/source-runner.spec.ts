import { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSSASLAuthenticationError, type Kafka } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { BanyanError, partitionKey, type Json, type OffsetStore, type PollResult, type Source, type StartOffsets } from '../core';
import type { AvroEncoder } from './avro';
import type { KafkaConfig } from './config';
import { createRootLogger } from './logger';
import { readRecords, type RecordSet } from './record-batch';
import { SourceRunner, type RunnerKafka } from './source-runner';
import type { TransactionalProducer } from './transactional-producer';

/**
 * The runner's connect/backoff state machine against a fake source, producer and offset store.
 * Every step is synchronised on something observable (a promise the fakes resolve), never on time;
 * backoff waits are 1 ms so a test never waits one out.
 */

const PARTITION = { table: 't' };
const KEY = partitionKey('fake', PARTITION);

interface Deferred<T = void> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const unreachable = (what: string) => new BanyanError(`${what}: ECONNREFUSED`, { retriable: true, stage: 'receiving' });
const missingTable = () => new BanyanError('table t does not exist', { retriable: false, stage: 'receiving', code: 'TABLE_NOT_FOUND' });
const emptyPoll = (): PollResult => ({ records: [], deadLetters: [], offsets: [], ack: async () => undefined });
const offsetPoll = (pos: number): PollResult => ({ records: [], deadLetters: [], offsets: [{ partition: PARTITION, offset: { pos } }], ack: async () => undefined });

/** What happened, in order: connect/poll/close of the source, init/commit of producers, loads of the store. */
type Journal = string[];

/** A source scripted per call: `connects[i]` decides the i-th connect, `polls[i]` the i-th poll of a connection. */
class FakeSource implements Source {
  readonly name = 'fake';
  connected = false;
  readonly starts: Array<Record<string, Json> | undefined> = [];
  connects: Array<(start: StartOffsets) => Promise<void>> = [];
  polls: Array<() => Promise<PollResult>> = [];
  private readonly counts = { attempt: 0, connected: 0, poll: 0 };
  private readonly waiters: Array<{ at: number; event: keyof FakeSource['counts']; done: () => void }> = [];

  /** Resolves once there were `n` connect attempts, successful connects, or polls of a connected source. */
  until(event: keyof FakeSource['counts'], n: number): Promise<void> {
    if (this.counts[event] >= n) return Promise.resolve();
    return new Promise((done) => this.waiters.push({ at: n, event, done }));
  }

  private count(event: keyof FakeSource['counts']): void {
    this.counts[event] += 1;
    for (const w of [...this.waiters]) {
      if (this.counts[w.event] >= w.at) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.done();
      }
    }
  }

  constructor(private readonly journal: Journal) {}

  async connect(start: StartOffsets): Promise<void> {
    this.journal.push('source.connect');
    this.starts.push(start.get(KEY));
    this.count('attempt');
    const behaviour = this.connects.shift();
    await behaviour?.(start);
    this.connected = true;
    this.journal.push('source.connected');
    this.count('connected');
  }

  async poll(signal: AbortSignal): Promise<PollResult> {
    if (!this.connected) {
      this.journal.push('poll NOT_CONNECTED');
      throw new BanyanError('poll while not connected', { retriable: true, stage: 'receiving', code: 'NOT_CONNECTED' });
    }
    this.journal.push('poll');
    this.count('poll');
    const next = this.polls.shift();
    if (next) return next();
    // Nothing scripted: an empty poll after a moment (as a poll interval would), or at stop.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1);
      signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
    return emptyPoll();
  }

  async close(): Promise<void> {
    this.connected = false;
  }
}

/** The offsets "in Kafka": what a commit wrote, whatever the commit's caller was told. */
class FakeOffsets implements OffsetStore {
  readonly topic = 'offsets';
  readonly stored = new Map<string, Record<string, Json>>();
  ensureFailures: Error[] = [];

  constructor(private readonly journal: Journal) {}

  async ensureTopic(): Promise<number> {
    const failure = this.ensureFailures.shift();
    if (failure) throw failure;
    return 1;
  }

  async load(): Promise<Map<string, Record<string, Json>>> {
    this.journal.push(`offsets.load ${JSON.stringify(this.stored.get(KEY) ?? null)}`);
    return new Map(this.stored);
  }

  message(key: string, offset: Record<string, Json>): { key: string; value: string } {
    return { key, value: JSON.stringify(offset) };
  }
}

/** Producers that write the offsets of each transaction into the store; scripted failures per commit. */
class FakeKafka implements RunnerKafka {
  produced = 0;
  /** `init` of the i-th producer; undefined: succeeds at once. */
  inits: Array<() => Promise<void>> = [];
  /** The i-th commit (over all producers): 'ok', 'fail' (nothing written), or 'lost-answer' (written, then fails). */
  commits: Array<'ok' | 'fail' | 'lost-answer'> = [];

  constructor(
    private readonly journal: Journal,
    private readonly offsets: FakeOffsets,
  ) {}

  producer(): TransactionalProducer {
    const n = ++this.produced;
    const init = this.inits.shift();
    return {
      init: async () => {
        this.journal.push(`producer${n}.init`);
        await init?.();
      },
      commitTransaction: async (requests: RecordSet[][]) => {
        const outcome = this.commits.shift() ?? 'ok';
        if (outcome === 'fail') throw unreachable('commit');
        for (const sets of requests) {
          for (const set of sets) {
            if (set.topic !== this.offsets.topic) continue;
            for (const r of readRecords(set)) this.offsets.stored.set(r.key!.toString(), JSON.parse(r.value!.toString()) as Record<string, Json>);
          }
        }
        this.journal.push(`producer${n}.commit ${outcome}`);
        if (outcome === 'lost-answer') throw unreachable('the commit was written but its answer was lost');
      },
      close: async () => undefined,
    };
  }

  async ensureTopics(specs: Array<{ topic: string }>): Promise<Map<string, number>> {
    return new Map(specs.map((s) => [s.topic, 1]));
  }
}

const runners: SourceRunner[] = [];
afterEach(async () => {
  for (const runner of runners.splice(0)) await runner.stop();
});

function setup() {
  const journal: Journal = [];
  const source = new FakeSource(journal);
  const offsets = new FakeOffsets(journal);
  const kafka = new FakeKafka(journal, offsets);
  const runner = new SourceRunner(
    source,
    {} as Kafka,
    {} as AvroEncoder,
    offsets,
    createRootLogger('silent'),
    {
      clientId: 'test',
      deadLetterTopic: 'dlq',
      topicPartitions: 1,
      replicationFactor: 1,
      maxMessageBytes: 1_000_000,
      maxRequestBytes: 768_000,
      producerThread: false,
      kafka: {} as KafkaConfig,
      backoffMs: { min: 1, max: 1 },
    },
    kafka,
  );
  runners.push(runner);
  return { journal, source, offsets, kafka, runner };
}

/** The journal's source and poll entries only. */
const sourceSteps = (journal: Journal) => journal.filter((e) => e.startsWith('source.') || e.startsWith('poll'));

describe('SourceRunner', () => {
  it('never polls after a failed connect: it connects again first', async () => {
    const { journal, source, runner } = setup();
    source.connects = [
      async () => Promise.reject(unreachable('connect 1')),
      async () => Promise.reject(unreachable('connect 2')),
    ];
    await runner.start();
    await source.until('poll', 1);
    expect(sourceSteps(journal).slice(0, 5)).toEqual(['source.connect', 'source.connect', 'source.connect', 'source.connected', 'poll']);
    expect(journal).not.toContain('poll NOT_CONNECTED');
  });

  it('rejects start when the first attempt fails for a reason retrying cannot fix', async () => {
    const { journal, source, runner } = setup();
    source.connects = [async () => Promise.reject(missingTable())];
    await expect(runner.start()).rejects.toThrow('table t does not exist');
    expect(runner.status).toMatchObject({ state: 'stopped', lastError: 'table t does not exist' });
    await runner.done();
    expect(journal.filter((e) => e.startsWith('poll'))).toEqual([]);
  });

  it('resolves start on a retriable first failure, showing backing-off with the error, then runs', async () => {
    const { source, runner } = setup();
    const second = deferred();
    source.connects = [async () => Promise.reject(unreachable('database')), () => second.promise];
    await runner.start();
    expect(runner.status).toMatchObject({ state: 'backing-off', lastError: 'database: ECONNREFUSED' });
    second.resolve();
    await source.until('poll', 1);
    expect(runner.status.state).toBe('running');
  });

  it('backs off, not out, while Kafka cannot be reached at start (kafkajs gave up retrying a connection error)', async () => {
    const { offsets, source, runner } = setup();
    const gaveUp = new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:19092'), {
      retryCount: 5,
      retryTime: 3000,
    });
    expect(gaveUp.retriable).toBe(false);
    offsets.ensureFailures = [gaveUp];
    await runner.start();
    expect(runner.status).toMatchObject({ state: 'backing-off', lastError: expect.stringContaining('ECONNREFUSED') });
    await source.until('poll', 1);
    expect(runner.status.state).toBe('running');
  });

  it('still fails the start on a Kafka error retrying cannot fix (a refused SASL login)', async () => {
    const { offsets, runner } = setup();
    // kafkajs's typings omit this constructor's message argument.
    const SaslError = KafkaJSSASLAuthenticationError as unknown as new (message: string) => Error;
    offsets.ensureFailures = [new SaslError('SASL PLAIN authentication failed: invalid credentials')];
    await expect(runner.start()).rejects.toThrow('invalid credentials');
    expect(runner.status.state).toBe('stopped');
  });

  it('retries a non-retriable connect failure forever once the source has connected (and before it, it is fatal)', async () => {
    const { source, runner } = setup();
    const third = deferred();
    source.polls = [async () => Promise.reject(unreachable('the database went away'))];
    source.connects = [async () => undefined, async () => Promise.reject(missingTable()), () => third.promise];
    await runner.start();
    await source.until('poll', 1);
    // The failed poll, then the missing table: retried, not fatal, since the source ran before.
    await source.until('attempt', 3);
    expect(runner.status).toMatchObject({ state: 'connecting', lastError: 'table t does not exist' });
    third.resolve();
    await source.until('poll', 2);
    expect(runner.status.state).toBe('running');
  });

  it('stops a source whose table is missing after its database came up, before it ever connected', async () => {
    const { journal, source, runner } = setup();
    source.connects = [async () => Promise.reject(unreachable('database')), async () => Promise.reject(missingTable())];
    await runner.start();
    await runner.done();
    expect(runner.status).toMatchObject({ state: 'stopped', lastError: 'table t does not exist' });
    expect(journal.filter((e) => e.startsWith('poll'))).toEqual([]);
  });

  it('reconnects from the offsets reloaded from Kafka after a failed commit, not from memory, after a new producer', async () => {
    const { journal, source, kafka, offsets, runner } = setup();
    source.polls = [async () => offsetPoll(1), async () => offsetPoll(2)];
    // The second commit reached Kafka, but its answer did not reach the runner.
    kafka.commits = ['ok', 'lost-answer'];
    await runner.start();
    await source.until('connected', 2);
    expect(offsets.stored.get(KEY)).toEqual({ pos: 2 });
    expect(source.starts).toEqual([undefined, { pos: 2 }]);
    const reconnect = journal.slice(journal.indexOf('producer1.commit lost-answer'));
    expect(reconnect.filter((e) => !e.startsWith('poll'))).toEqual([
      'producer1.commit lost-answer',
      'producer2.init',
      'offsets.load {"pos":2}',
      'source.connect',
      'source.connected',
    ]);
  });

  it('stop() during a connect attempt returns without waiting it out', async () => {
    const { source, runner } = setup();
    const entered = deferred();
    const never = deferred();
    source.connects = [
      () => {
        entered.resolve();
        return never.promise;
      },
    ];
    const started = runner.start();
    await entered.promise;
    await runner.stop();
    await started;
    expect(runner.status.state).toBe('stopped');
    expect(source.connected).toBe(false);
  });

  it('stop() while the producer cannot reach Kafka returns without waiting it out', async () => {
    const { kafka, runner } = setup();
    const entered = deferred();
    kafka.inits = [
      () => {
        entered.resolve();
        return new Promise<void>(() => undefined);
      },
    ];
    const started = runner.start();
    await entered.promise;
    await runner.stop();
    await started;
    expect(runner.status.state).toBe('stopped');
  });
});
