import type { Kafka, Message } from 'kafkajs';
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
import { AvroEncoder } from './avro';
import type { BanyanConfig } from './config';
import { deadLetterMessage, jsonSafe } from './dead-letters';
import { createKafka, ensureTopics } from './kafka';
import type { Logger } from './logger';
import { KafkaOffsetStore } from './offsets';
import { createSchemaRegistry } from './registry';
import { sleep } from './time';
import { InProcessProducer, WorkerProducer, type TopicMessages, type TransactionalProducer } from './transactional-producer';

type RecordEncoder = (record: SourceRecord) => Message;

interface PreparedBatch {
  /** sendBatch requests, each below maxRequestBytes so no partition batch exceeds the broker's limit. */
  requests: TopicMessages[];
  records: number;
  deadLetters: DeadLetter[];
}

export interface SourceRunnerOptions {
  clientId: string;
  deadLetterTopic: string;
  topicPartitions: number;
  replicationFactor: number;
  /** A record larger than this goes to the dead-letter topic (the broker's message.max.bytes). */
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
  state: 'starting' | 'running' | 'backing-off' | 'stopped';
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
  private readonly knownTopics = new Set<string>();
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
    await this.offsets.ensureTopic();
    await ensureTopics(this.kafka, [
      { topic: this.options.deadLetterTopic, numPartitions: 1, replicationFactor: this.options.replicationFactor },
    ]);
    this.producer = this.options.producerThread
      ? new WorkerProducer(this.options.kafka, this.transactionalId, this.logger)
      : new InProcessProducer(this.kafka, this.transactionalId);
    // Initialising the transactional id fences an older instance and aborts its open transaction,
    // so the offsets read next are final.
    await this.producer.init();
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

  private async run(): Promise<void> {
    const { min, max } = this.options.backoffMs ?? { min: 200, max: 30_000 };
    let wait = min;
    let readAhead: Promise<PollResult> | undefined;
    while (!this.abort.signal.aborted) {
      try {
        const result = await (readAhead ?? this.source.poll(this.abort.signal));
        readAhead = undefined;
        if (result.records.length === 0 && result.deadLetters.length === 0 && result.offsets.length === 0) continue;
        const batch = await this.prepare(result);
        // Read the next batch while this one is written: the database and Kafka work side by side.
        readAhead = this.source.poll(this.abort.signal);
        readAhead.catch(() => undefined);
        await this.commit(batch, result);
        wait = min;
        this.state.state = 'running';
      } catch (error) {
        // A batch read ahead follows a position that was never committed: drop it.
        await readAhead?.catch(() => undefined);
        readAhead = undefined;
        if (this.abort.signal.aborted) break;
        this.state.state = 'backing-off';
        this.state.lastError = errorMessage(error);
        this.logger[isRetriable(error) ? 'warn' : 'error'](
          { event: 'source.failed', err: error, retryInMs: wait },
          'source step failed; retrying from the last committed offsets',
        );
        await sleep(wait, this.abort.signal);
        wait = Math.min(wait * 2, max);
        await this.reconnect().catch((e) => this.logger.warn({ err: e }, 'reconnecting the source failed'));
      }
    }
    await readAhead?.catch(() => undefined);
  }

  private async reconnect(): Promise<void> {
    if (this.abort.signal.aborted) return;
    await this.source.close().catch(() => undefined);
    await this.source.connect(this.committed);
  }

  /** Encodes a poll's records; one that cannot be encoded, or is too large for Kafka, becomes a dead letter. */
  private async prepare(result: PollResult): Promise<PreparedBatch> {
    const deadLetters = [...result.deadLetters];
    const byTopic = new Map<string, Message[]>();
    const encoders = new Map<string, { schema: object; encode: RecordEncoder }>();
    const sizes = new Map<Message, number>();
    let records = 0;
    for (const record of result.records) {
      try {
        let cached = encoders.get(record.topic);
        if (cached?.schema !== record.schema) {
          cached = { schema: record.schema, encode: await this.encoderFor(record) };
          encoders.set(record.topic, cached);
        }
        const message = cached.encode(record);
        const size = messageSize(message);
        if (size > this.options.maxMessageBytes) {
          throw new BadRecordError(`record of ${size} bytes is larger than kafka.maxMessageBytes (${this.options.maxMessageBytes})`, {
            stage: 'sending',
            code: 'MESSAGE_TOO_LARGE',
          });
        }
        let list = byTopic.get(record.topic);
        if (!list) byTopic.set(record.topic, (list = []));
        list.push(message);
        sizes.set(message, size);
        records += 1;
      } catch (error) {
        deadLetters.push(this.unencodable(record, error));
      }
    }
    await this.ensureDataTopics([...byTopic.keys()]);
    const offsetMessages = result.offsets.map(({ partition, offset }) =>
      this.offsets.message(partitionKey(this.source.name, partition), offset),
    );
    const all = [
      ...[...byTopic].map(([topic, messages]) => ({ topic, messages })),
      ...(deadLetters.length ? [{ topic: this.options.deadLetterTopic, messages: deadLetters.map((d) => deadLetterMessage(d)) }] : []),
      ...(offsetMessages.length ? [{ topic: this.offsets.topic, messages: offsetMessages }] : []),
    ];
    const sizeOf = (m: Message) => sizes.get(m) ?? messageSize(m);
    return { requests: splitRequests(all, this.options.maxRequestBytes, sizeOf), records, deadLetters };
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

  /** One encoder per (topic, schema) pair, resolved once per batch: encoding itself is synchronous. */
  private async encoderFor(record: SourceRecord): Promise<RecordEncoder> {
    const encodeKey = await this.encoder.encoderFor(`${record.topic}-key`, record.schema.key);
    const encodeValue = await this.encoder.encoderFor(`${record.topic}-value`, record.schema.value);
    return (r) => ({
      key: encodeKey(r.key),
      value: r.value === null ? null : encodeValue(r.value),
      headers: r.headers,
      ...(r.timestamp !== undefined ? { timestamp: String(r.timestamp) } : {}),
    });
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

  private async ensureDataTopics(topics: string[]): Promise<void> {
    const missing = topics.filter((t) => !this.knownTopics.has(t));
    if (missing.length === 0) return;
    await ensureTopics(
      this.kafka,
      missing.map((topic) => ({ topic, numPartitions: this.options.topicPartitions, replicationFactor: this.options.replicationFactor })),
    );
    for (const t of missing) this.knownTopics.add(t);
  }
}

function messageSize(message: Message): number {
  let size = 70 + (message.key ? (message.key as Buffer).length : 0) + (message.value ? (message.value as Buffer).length : 0);
  for (const [k, v] of Object.entries(message.headers ?? {})) size += k.length + String(v).length + 4;
  return size;
}

/** Splits a transaction's messages into requests of at most about `maxBytes`, keeping each topic's order. */
export function splitRequests(all: TopicMessages, maxBytes: number, sizeOf = messageSize): TopicMessages[] {
  const requests: TopicMessages[] = [];
  let current: TopicMessages = [];
  let bytes = 0;
  for (const { topic, messages } of all) {
    let slice: Message[] = [];
    for (const message of messages) {
      const size = sizeOf(message);
      if (bytes + size > maxBytes && bytes > 0) {
        if (slice.length) current.push({ topic, messages: slice });
        requests.push(current);
        current = [];
        slice = [];
        bytes = 0;
      }
      slice.push(message);
      bytes += size;
    }
    if (slice.length) current.push({ topic, messages: slice });
  }
  if (current.length) requests.push(current);
  return requests;
}
