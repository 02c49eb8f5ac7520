import type { Kafka } from 'kafkajs';
import { errorMessage, partitionKey, type Json, type OffsetStore, type PollResult, type Source } from '../core';
import { AvroEncoder } from './avro';
import type { KafkaConfig, RuntimeConfig } from './config';
import { createKafka, ensureTopics, worthRetrying, type TopicSpec } from './kafka';
import type { Logger } from './logger';
import { KafkaOffsetStore } from './offsets';
import { Backoff, untilAborted, type Pipeline, type PipelineStatus, type SourceStatus } from './pipeline';
import { RecordOutput, type PreparedBatch, type RecordOutputOptions } from './record-output';
import { createSchemaRegistry } from './registry';
import { sleep } from '../core/time';
import { PRODUCER_FENCED, ProducerThread, RecordSetProducer, type TransactionalProducer } from './transactional-producer';

export type { SourceStatus } from './pipeline';

/** The settings every runner shares: the output's, and how its transactional producers are made. */
export interface RunnerOptions extends RecordOutputOptions {
  clientId: string;
  /** Encode and send produce requests in a worker thread (the second core). */
  producerThread: boolean;
  /** The client settings the producer thread connects with. */
  kafka: KafkaConfig;
  /** First and largest wait after a failure; doubles in between. */
  backoffMs?: { min: number; max: number };
}

/**
 * A runner for `source` with everything it needs built from the configuration: for tools and
 * tests that run one source outside the container.
 */
export function createSourceRunner(source: Source, config: RuntimeConfig, logger: Logger): SourceRunner {
  const kafka = createKafka(config.kafka, logger);
  const options = runnerOptions(config);
  return new SourceRunner(
    source,
    kafka,
    new AvroEncoder(createSchemaRegistry(config.schemaRegistry)),
    new KafkaOffsetStore(kafka, config.kafka.topics.offsets, config.kafka.topics.replicationFactor),
    logger,
    options,
    runnerKafka(kafka, options, logger),
  );
}

/**
 * How runners make producers and topics. With `producerThread`, every producer made through one
 * RunnerKafka sends through one thread (the process binds one: RunnerKafkaToken).
 */
export function runnerKafka(kafka: Kafka, options: RunnerOptions, logger: Logger): RunnerKafka {
  const shared = options.producerThread ? new ProducerThread(options.kafka, logger) : undefined;
  return {
    producer: (transactionalId) =>
      shared ? shared.producer(transactionalId) : new RecordSetProducer(kafka, transactionalId, options.kafka.encodedProduce),
    ensureTopics: (specs) => ensureTopics(kafka, specs),
  };
}

/** The runner's settings from the configuration. */
export function runnerOptions(config: RuntimeConfig): RunnerOptions {
  return {
    clientId: config.kafka.clientId,
    deadLetterTopic: config.kafka.topics.deadLetter,
    topicPartitions: config.kafka.topics.partitions,
    replicationFactor: config.kafka.topics.replicationFactor,
    maxMessageBytes: config.kafka.maxMessageBytes,
    maxRequestBytes: config.kafka.maxRequestBytes,
    producerThread: config.kafka.producerThread,
    kafka: config.kafka,
  };
}

/** What the runner needs of Kafka besides the offsets: a seam, so a unit test can hand in fakes. */
export interface RunnerKafka {
  /** A new producer of `transactionalId` (not initialised yet). */
  producer(transactionalId: string): TransactionalProducer;
  /** Creates the topics that are missing; the partitions of each. */
  ensureTopics(specs: TopicSpec[]): Promise<Map<string, number>>;
}

/**
 * Runs one source: poll → encode → one Kafka transaction holding the records, the dead letters
 * and the new offsets → ack. The transactional id is stable per source, so a restarted process
 * fences its predecessor (a zombie's open transaction is aborted) before offsets are read.
 *
 * The runner is always in one of two phases, and `run()` is the one place that moves between them:
 * - connecting: the producer, the topics and the committed offsets (at start and after every failed
 *   step); then the source is closed and connected from the committed offsets. A failure backs off
 *   and connects again: a source is never polled after a connect that failed.
 * - pumping: poll, encode and commit, pipelined. A failed step drops whatever was read after the
 *   last commit and goes back to connecting, so the position always comes from what was committed
 *   in Kafka (a commit that failed here may have committed there), never from memory.
 *
 * Until the source has connected once, a failure retrying cannot fix (a missing table) stops it
 * (`source.start_failed`); once it has, every failure is retried.
 */
export class SourceRunner implements Pipeline {
  readonly kind = 'source';
  private readonly state: Omit<PipelineStatus, 'details'>;
  private producer: TransactionalProducer | undefined;
  /** The producer's init, kept across connect attempts: kafkajs retries it until Kafka answers. */
  private producerReady: Promise<void> | undefined;
  /** The producer, the topics and the committed offsets are in place (until a step fails). */
  private kafkaReady = false;
  /** Whether the source ever connected: until then a failure retrying cannot fix is fatal. */
  private readonly kafkaSeam: RunnerKafka;
  private readonly abort = new AbortController();
  private committed = new Map<string, Record<string, Json>>();
  private readonly output: RecordOutput;
  private readonly backoff: Backoff;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly source: Source,
    kafka: Kafka,
    encoder: AvroEncoder,
    private readonly offsets: OffsetStore,
    private readonly logger: Logger,
    private readonly options: RunnerOptions,
    kafkaSeam?: RunnerKafka,
  ) {
    this.kafkaSeam = kafkaSeam ?? runnerKafka(kafka, options, logger);
    this.output = new RecordOutput(encoder, (specs) => this.kafkaSeam.ensureTopics(specs), options);
    this.state = { name: source.name, kind: 'source', state: 'starting', records: 0, deadLetters: 0, transactions: 0, lastCommitAt: null, lastError: null };
    const { min, max } = options.backoffMs ?? { min: 200, max: 30_000 };
    this.backoff = new Backoff(min, max);
  }

  private get transactionalId(): string {
    return `${this.options.clientId}.source.${this.source.name}`;
  }

  get name(): string {
    return this.source.name;
  }

  get status(): SourceStatus {
    return { ...this.state, details: this.source.details?.() ?? {} };
  }

  /**
   * Starts the loop and resolves after the first connect attempt: connected, or backing off from a
   * system it cannot reach yet, Kafka included (it keeps trying in the background). Rejects, and
   * stops, when that first attempt fails for a reason retrying cannot fix (a missing table, a wrong
   * password).
   */
  start(): Promise<void> {
    let settle!: (error?: unknown) => void;
    const firstAttempt = new Promise<void>((resolve, reject) => {
      settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    this.loop = this.run(settle);
    return firstAttempt;
  }

  /** Resolves when the loop has ended (after stop(), or never on its own). */
  done(): Promise<void> {
    return this.loop ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop?.catch(() => undefined);
    await this.source.close().catch((error) => this.logger.warn({ err: error }, 'closing the source failed'));
    await this.producer?.close();
    this.state.state = 'stopped';
    this.logger.info({ event: 'source.stopped' }, 'source stopped');
  }

  /** The connect/backoff state machine; `settle` reports the first connect attempt to start(). */
  private async run(settle: (error?: unknown) => void): Promise<void> {
    // Before its first connect, a failure retrying cannot fix stops the source; afterwards all are retried.
    let connectedOnce = false;
    // settle() after the first call does nothing: start() hears of the first attempt only.
    while (!this.abort.signal.aborted) {
      try {
        if (this.state.state !== 'starting') this.state.state = 'connecting';
        await this.connect();
      } catch (error) {
        if (this.abort.signal.aborted) break;
        if (!connectedOnce && !worthRetrying(error)) {
          this.state.state = 'stopped';
          this.state.lastError = errorMessage(error);
          this.logger.error({ event: 'source.start_failed', err: error }, 'source cannot start');
          await this.source.close().catch(() => undefined);
          settle(error);
          return;
        }
        const wait = this.failed(error, 'source.connect_failed', 'connecting the source failed; connecting again');
        // start() learns of the first attempt before the wait: the source shows backing-off with its error.
        settle();
        await wait;
        continue;
      }
      connectedOnce = true;
      this.state.state = 'running';
      this.logger.info({ event: 'source.started', offsets: Object.fromEntries(this.committed) }, 'source started');
      settle();
      try {
        await this.pump();
      } catch (error) {
        if (this.abort.signal.aborted) break;
        if ((error as { code?: string }).code === PRODUCER_FENCED) {
          this.state.state = 'fenced';
          this.state.lastError = errorMessage(error);
          this.logger.error({ event: 'source.fenced', err: error }, 'another instance runs this source now; this one stops writing');
          break;
        }
        // The committed offsets are read again from Kafka, after a new producer has aborted
        // whatever transaction the failed step left open.
        await this.resetKafka();
        await this.failed(error, 'source.failed', 'source step failed; retrying from the last committed offsets');
      }
    }
    settle();
  }

  /** Records a failure and shows the source backing off (at once); resolves after the wait before the next connect. */
  private failed(error: unknown, event: string, message: string): Promise<void> {
    this.state.state = 'backing-off';
    this.state.lastError = errorMessage(error);
    const wait = this.backoff.next();
    this.logger[worthRetrying(error) ? 'warn' : 'error']({ event, err: error, retryInMs: wait }, message);
    return sleep(wait, this.abort.signal);
  }

  /**
   * Kafka first (the producer fences an older instance and aborts its open transaction, so the
   * offsets read next are final), then the source, always closed first and connected from the
   * committed offsets, whatever it read since. Each step gives way to stop() at once.
   */
  private async connect(): Promise<void> {
    const signal = this.abort.signal;
    if (!this.kafkaReady) {
      this.producerReady ??= this.initProducer();
      await untilAborted(
        Promise.all([
          this.producerReady,
          // Made once; after a failed step only the producer and the offsets are renewed.
          this.output.knows(this.offsets.topic) ? undefined : this.offsets.ensureTopic().then((partitions) => this.output.knowTopic(this.offsets.topic, partitions)),
          this.output.ensureDeadLetterTopic(),
        ]),
        signal,
      );
      this.committed = await untilAborted(this.offsets.load(this.source.name), signal);
      this.kafkaReady = true;
    }
    await this.source.close().catch(() => undefined);
    // A connect that ends after stop() gave up on it is closed again, so it holds nothing open.
    await untilAborted(this.source.connect(this.committed), signal, () => this.source.close().catch(() => undefined));
  }

  /** A new producer; its init settles once (kafkajs retries it while Kafka is away). */
  private initProducer(): Promise<void> {
    const producer = this.kafkaSeam.producer(this.transactionalId);
    this.producer = producer;
    const ready = producer.init().catch(async (error: unknown) => {
      if (this.producerReady === ready) this.producerReady = undefined;
      await producer.close().catch(() => undefined);
      throw error;
    });
    ready.catch(() => undefined);
    return ready;
  }

  /** After a failed step: a new producer and the committed offsets read again at the next connect. */
  private async resetKafka(): Promise<void> {
    this.kafkaReady = false;
    const producer = this.producer;
    const ready = this.producerReady;
    this.producer = undefined;
    this.producerReady = undefined;
    await ready?.catch(() => undefined);
    await producer?.close().catch((error) => this.logger.warn({ err: error }, 'closing the producer failed'));
  }

  /**
   * A three-stage pipeline: while batch N is committed (in the producer thread), batch N+1 is
   * encoded and batch N+2 read from the source. Commits stay one at a time and in order. Returns
   * only on abort; throws the first failed step, after the steps in flight have settled (what they
   * read follows a position that was never committed: it is dropped).
   */
  private async pump(): Promise<void> {
    let readAhead: Promise<PollResult> | undefined;
    let committing: Promise<void> | undefined;
    const poll = () => {
      const next = this.source.poll(this.abort.signal);
      next.catch(() => undefined);
      return next;
    };
    try {
      while (!this.abort.signal.aborted) {
        const result = await (readAhead ?? poll());
        readAhead = poll();
        if (result.records.length === 0 && result.deadLetters.length === 0 && result.offsets.length === 0) {
          await committing;
          committing = undefined;
          // An empty poll after the last commit: the source and Kafka both answer.
          this.backoff.reset();
          continue;
        }
        const batch = await this.prepare(result);
        await committing;
        committing = this.commit(batch, result).then(() => {
          this.backoff.reset();
          this.state.state = 'running';
        });
        committing.catch(() => undefined);
      }
    } finally {
      await Promise.allSettled([readAhead, committing]);
    }
    // A commit that failed while the loop was ending still counts as a failed step.
    await committing;
  }

  /**
   * Encodes a poll's records, dead letters and offsets into record batches (the offsets last); a
   * record that cannot be written becomes a dead letter, with the rest of its change.
   */
  private prepare(result: PollResult): Promise<PreparedBatch> {
    return this.output.prepare(this.source.name, {
      records: result.records,
      deadLetters: result.deadLetters,
      extra: result.offsets.map(({ partition, offset }) => ({
        topic: this.offsets.topic,
        ...this.offsets.message(partitionKey(this.source.name, partition), offset),
      })),
    });
  }

  /** One transaction holding every request of the batch, the offsets last; then the source's ack. */
  private async commit(batch: PreparedBatch, result: PollResult): Promise<void> {
    await this.producer!.commitTransaction(batch.requests);
    for (const { partition, offset } of result.offsets) this.committed.set(partitionKey(this.source.name, partition), offset);
    this.state.records += batch.records;
    this.state.deadLetters += batch.deadLetters.length;
    this.state.transactions += 1;
    this.state.lastCommitAt = new Date().toISOString();
    if (batch.deadLetters.length) {
      this.logger.warn(
        { event: 'source.dead_letters', count: batch.deadLetters.length, reasons: batch.deadLetters.slice(0, 3).map((d) => d.reason) },
        'records sent to the dead-letter topic',
      );
    }
    await result.ack();
  }
}
