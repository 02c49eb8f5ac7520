import type { Kafka } from 'kafkajs';
import {
  BadRecordError,
  errorMessage,
  isRetriable,
  partitionKey,
  type DeadLetter,
  type Json,
  type PollResult,
  type Source,
  type SourceRecord,
} from '../core';
import { AvroEncoder, type TransientEncoder } from './avro';
import { BatchBuilder } from './batch-builder';
import type { BanyanConfig } from './config';
import { deadLetterMessage, jsonSafe } from './dead-letters';
import { createKafka, ensureTopics } from './kafka';
import type { Logger } from './logger';
import { KafkaOffsetStore } from './offsets';
import { createSchemaRegistry } from './registry';
import { sleep } from './time';
import type { RecordSet } from './record-batch';
import { PRODUCER_FENCED, RecordSetProducer, WorkerProducer, type TransactionalProducer } from './transactional-producer';

interface RecordEncoders {
  schema: object;
  key: TransientEncoder;
  value: TransientEncoder;
  /** For records that come already encoded (SourceRecord.encoded). */
  frameKey: (body: Uint8Array) => Buffer;
  frameValue: (body: Uint8Array) => Buffer;
}

interface PreparedBatch {
  /** Produce requests of about maxRequestBytes, each a record batch per partition. */
  requests: RecordSet[][];
  records: number;
  deadLetters: DeadLetter[];
}

export interface SourceRunnerOptions {
  clientId: string;
  deadLetterTopic: string;
  topicPartitions: number;
  replicationFactor: number;
  /** The broker's message.max.bytes: a record that cannot fit in a batch this large goes to the dead-letter topic. */
  maxMessageBytes: number;
  /** Records of one batch are sent in requests of at most about this many bytes. */
  maxRequestBytes: number;
  /** Encode and send produce requests in a worker thread (the second core). */
  producerThread: boolean;
  /** The client settings the producer thread connects with. */
  kafka: BanyanConfig['kafka'];
  /** First and largest wait after a failure; doubles in between. */
  backoffMs?: { min: number; max: number };
}

/**
 * A runner for `source` with everything it needs built from the configuration: for tools and
 * tests that run one source outside the container.
 */
export function createSourceRunner(source: Source, config: BanyanConfig, logger: Logger): SourceRunner {
  const kafka = createKafka(config.kafka, logger);
  return new SourceRunner(
    source,
    kafka,
    new AvroEncoder(createSchemaRegistry(config.schemaRegistry)),
    new KafkaOffsetStore(kafka, config.kafka.topics.offsets, config.kafka.topics.replicationFactor),
    logger,
    runnerOptions(config),
  );
}

/** The runner's settings from the configuration. */
export function runnerOptions(config: BanyanConfig): SourceRunnerOptions {
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

/** What a person (or /status) sees of a running source. */
export interface SourceStatus {
  name: string;
  /** `fenced`: another instance took over the source's transactional id; this one has stopped writing. */
  state: 'starting' | 'running' | 'backing-off' | 'fenced' | 'stopped';
  records: number;
  deadLetters: number;
  transactions: number;
  lastCommitAt: string | null;
  lastError: string | null;
  /** The source's own account (snapshot progress, position…). */
  details: Record<string, Json>;
}

/**
 * Runs one source: poll → encode → one Kafka transaction holding the records, the dead letters
 * and the new offsets → ack. The transactional id is stable per source, so a restarted process
 * fences its predecessor (a zombie's open transaction is aborted) before offsets are read.
 * A failed transaction is aborted and the source is reconnected from the last committed offsets,
 * so nothing is lost or written twice.
 */
export class SourceRunner {
  private readonly state: Omit<SourceStatus, 'details'>;
  private producer: TransactionalProducer | undefined;
  private readonly abort = new AbortController();
  private committed = new Map<string, Record<string, Json>>();
  /** Partitions per topic, for the topics this runner writes to. */
  private readonly partitions = new Map<string, number>();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly source: Source,
    private readonly kafka: Kafka,
    private readonly encoder: AvroEncoder,
    private readonly offsets: KafkaOffsetStore,
    private readonly logger: Logger,
    private readonly options: SourceRunnerOptions,
  ) {
    this.state = { name: source.name, state: 'starting', records: 0, deadLetters: 0, transactions: 0, lastCommitAt: null, lastError: null };
  }

  private get transactionalId(): string {
    return `${this.options.clientId}.source.${this.source.name}`;
  }

  get status(): SourceStatus {
    return { ...this.state, details: this.source.details?.() ?? {} };
  }

  async start(): Promise<void> {
    this.producer = this.options.producerThread
      ? new WorkerProducer(this.options.kafka, this.transactionalId, this.logger)
      : new RecordSetProducer(this.kafka, this.transactionalId, this.options.kafka.encodedProduce);
    // Initialising the transactional id fences an older instance and aborts its open transaction,
    // so the offsets read next are final. The topics are made meanwhile.
    await Promise.all([
      this.producer.init(),
      this.offsets.ensureTopic().then((partitions) => this.partitions.set(this.offsets.topic, partitions)),
      this.ensureDataTopics([this.options.deadLetterTopic], 1),
    ]);
    this.committed = await this.offsets.load(this.source.name);
    await this.source.connect(this.committed);
    this.state.state = 'running';
    this.logger.info({ event: 'source.started', offsets: Object.fromEntries(this.committed) }, 'source started');
    this.loop = this.run();
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

  /**
   * A three-stage pipeline: while batch N is committed (in the producer thread), batch N+1 is
   * encoded and batch N+2 read from the source. Commits stay one at a time and in order; when one
   * fails, whatever was read after it is dropped and the source restarts from the committed offsets.
   */
  private async run(): Promise<void> {
    const { min, max } = this.options.backoffMs ?? { min: 200, max: 30_000 };
    let wait = min;
    let readAhead: Promise<PollResult> | undefined;
    let committing: Promise<void> | undefined;
    const poll = () => {
      const next = this.source.poll(this.abort.signal);
      next.catch(() => undefined);
      return next;
    };
    while (!this.abort.signal.aborted) {
      try {
        const result = await (readAhead ?? poll());
        readAhead = poll();
        if (result.records.length === 0 && result.deadLetters.length === 0 && result.offsets.length === 0) {
          await committing;
          committing = undefined;
          continue;
        }
        const batch = await this.prepare(result);
        await committing;
        committing = this.commit(batch, result).then(() => {
          wait = min;
          this.state.state = 'running';
        });
        committing.catch(() => undefined);
      } catch (error) {
        // Batches read after a failed step follow a position that was never committed: drop them.
        await Promise.allSettled([readAhead, committing]);
        readAhead = undefined;
        committing = undefined;
        if (this.abort.signal.aborted) break;
        this.state.lastError = errorMessage(error);
        if ((error as { code?: string }).code === PRODUCER_FENCED) {
          this.state.state = 'fenced';
          this.logger.error({ event: 'source.fenced', err: error }, 'another instance runs this source now; this one stops writing');
          break;
        }
        this.state.state = 'backing-off';
        this.logger[isRetriable(error) ? 'warn' : 'error'](
          { event: 'source.failed', err: error, retryInMs: wait },
          'source step failed; retrying from the last committed offsets',
        );
        await sleep(wait, this.abort.signal);
        wait = Math.min(wait * 2, max);
        await this.reconnect().catch((e) => this.logger.warn({ err: e }, 'reconnecting the source failed'));
      }
    }
    await Promise.allSettled([readAhead, committing]);
  }

  private async reconnect(): Promise<void> {
    if (this.abort.signal.aborted) return;
    await this.source.close().catch(() => undefined);
    await this.source.connect(this.committed);
  }

  /**
   * Encodes a poll's records, dead letters and offsets into record batches; a record that cannot
   * be encoded, or is too large for Kafka, becomes a dead letter.
   */
  private async prepare(result: PollResult): Promise<PreparedBatch> {
    const deadLetters = [...result.deadLetters];
    const builder = new BatchBuilder({
      maxMessageBytes: this.options.maxMessageBytes,
      maxSetBytes: this.options.maxRequestBytes,
      partitionsOf: (topic) => this.partitions.get(topic)!,
    });
    const encoders = new Map<string, RecordEncoders>();
    const now = Date.now();
    let records = 0;
    for (const record of result.records) {
      // Outside the try: a topic Kafka cannot create fails the step (retried), it is no bad record.
      if (!this.partitions.has(record.topic)) await this.ensureDataTopics([record.topic], this.options.topicPartitions);
      try {
        let encoder = encoders.get(record.topic);
        if (encoder?.schema !== record.schema) {
          encoder = await this.encodersFor(record);
          encoders.set(record.topic, encoder);
        }
        // Both views are copied into the batch at once, before either encoder runs again.
        const { encoded } = record;
        const key = encoded ? encoder.frameKey(encoded.key) : encoder.key(record.key);
        const value = encoded ? encoded.value && encoder.frameValue(encoded.value) : record.value && encoder.value(record.value);
        builder.add(record.topic, key, value, record.headers, record.timestamp ?? now);
        records += 1;
      } catch (error) {
        deadLetters.push(this.unencodable(record, error));
      }
    }
    for (const letter of deadLetters) {
      const message = deadLetterMessage(letter, now);
      try {
        builder.add(this.options.deadLetterTopic, message.key, message.value, message.headers, now);
      } catch {
        // The reason must still be told when the failed input is too large to keep whole.
        const cut = deadLetterMessage({ ...letter, payload: { truncated: JSON.stringify(letter.payload, jsonSafe).slice(0, 10_000) } }, now);
        builder.add(this.options.deadLetterTopic, cut.key, cut.value, cut.headers, now);
      }
    }
    for (const { partition, offset } of result.offsets) {
      const message = this.offsets.message(partitionKey(this.source.name, partition), offset);
      builder.add(this.offsets.topic, message.key, message.value, undefined, now);
    }
    return { requests: builder.requests(this.options.maxRequestBytes), records, deadLetters };
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

  /** The key and value encoders of a (topic, schema) pair: registered once, then synchronous. */
  private async encodersFor(record: SourceRecord): Promise<RecordEncoders> {
    const keySubject = `${record.topic}-key`;
    const valueSubject = `${record.topic}-value`;
    return {
      schema: record.schema,
      key: await this.encoder.encoderFor(keySubject, record.schema.key),
      value: await this.encoder.encoderFor(valueSubject, record.schema.value),
      frameKey: await this.encoder.framerFor(keySubject, record.schema.key),
      frameValue: await this.encoder.framerFor(valueSubject, record.schema.value),
    };
  }

  private unencodable(record: SourceRecord, error: unknown): DeadLetter {
    const reason = error instanceof BadRecordError ? error.message : `cannot encode for ${record.topic}: ${errorMessage(error)}`;
    return {
      source: this.source.name,
      reason,
      stage: 'processing',
      code: 'AVRO_ENCODE',
      key: JSON.stringify(record.key, jsonSafe),
      payload: { topic: record.topic, key: record.key, value: record.value, headers: record.headers },
    };
  }

  private async ensureDataTopics(topics: string[], numPartitions: number): Promise<void> {
    const missing = topics.filter((t) => !this.partitions.has(t));
    if (missing.length === 0) return;
    const counts = await ensureTopics(
      this.kafka,
      missing.map((topic) => ({ topic, numPartitions, replicationFactor: this.options.replicationFactor })),
    );
    for (const [topic, count] of counts) this.partitions.set(topic, count);
  }
}
