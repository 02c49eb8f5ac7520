import type { Kafka, Message, Producer } from 'kafkajs';
import {
  BadRecordError,
  errorMessage,
  isRetriable,
  partitionKey,
  type DeadLetter,
  type Json,
  type Source,
  type SourceRecord,
} from '../core';
import type { AvroEncoder } from './avro';
import { deadLetterMessage, jsonSafe } from './dead-letters';
import { ensureTopics } from './kafka';
import type { Logger } from './logger';
import type { KafkaOffsetStore } from './offsets';
import { sleep } from './time';

export interface SourceRunnerOptions {
  clientId: string;
  deadLetterTopic: string;
  topicPartitions: number;
  replicationFactor: number;
  /** First and largest wait after a failure; doubles in between. */
  backoffMs?: { min: number; max: number };
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
}

/**
 * Runs one source: poll → encode → one Kafka transaction holding the records, the dead letters
 * and the new offsets → ack. The transactional id is stable per source, so a restarted process
 * fences its predecessor (a zombie's open transaction is aborted) before offsets are read.
 * A failed transaction is aborted and the source is reconnected from the last committed offsets,
 * so nothing is lost or written twice.
 */
export class SourceRunner {
  readonly status: SourceStatus;
  private producer: Producer | undefined;
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
    this.status = { name: source.name, state: 'starting', records: 0, deadLetters: 0, transactions: 0, lastCommitAt: null, lastError: null };
  }

  async start(): Promise<void> {
    await this.offsets.ensureTopic();
    await ensureTopics(this.kafka, [
      { topic: this.options.deadLetterTopic, numPartitions: 1, replicationFactor: this.options.replicationFactor },
    ]);
    this.producer = this.kafka.producer({
      transactionalId: `${this.options.clientId}.source.${this.source.name}`,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await this.producer.connect();
    // Initialising the transactional id fences an older instance and aborts its open transaction,
    // so the offsets read next are final.
    await (await this.producer.transaction()).abort();
    this.committed = await this.offsets.load(this.source.name);
    await this.source.connect(this.committed);
    this.status.state = 'running';
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
    await this.producer?.disconnect();
    this.status.state = 'stopped';
    this.logger.info({ event: 'source.stopped' }, 'source stopped');
  }

  private async run(): Promise<void> {
    const { min, max } = this.options.backoffMs ?? { min: 200, max: 30_000 };
    let wait = min;
    while (!this.abort.signal.aborted) {
      try {
        await this.step();
        wait = min;
        this.status.state = 'running';
      } catch (error) {
        if (this.abort.signal.aborted) break;
        this.status.state = 'backing-off';
        this.status.lastError = errorMessage(error);
        this.logger[isRetriable(error) ? 'warn' : 'error'](
          { event: 'source.failed', err: error, retryInMs: wait },
          'source step failed; retrying from the last committed offsets',
        );
        await sleep(wait, this.abort.signal);
        wait = Math.min(wait * 2, max);
        await this.reconnect().catch((e) => this.logger.warn({ err: e }, 'reconnecting the source failed'));
      }
    }
  }

  private async reconnect(): Promise<void> {
    if (this.abort.signal.aborted) return;
    await this.source.close().catch(() => undefined);
    await this.source.connect(this.committed);
  }

  private async step(): Promise<void> {
    const result = await this.source.poll(this.abort.signal);
    if (result.records.length === 0 && result.deadLetters.length === 0 && result.offsets.length === 0) return;
    const deadLetters = [...result.deadLetters];
    const byTopic = new Map<string, Message[]>();
    for (const record of result.records) {
      try {
        const message = await this.encode(record);
        let list = byTopic.get(record.topic);
        if (!list) byTopic.set(record.topic, (list = []));
        list.push(message);
      } catch (error) {
        deadLetters.push(this.unencodable(record, error));
      }
    }
    await this.ensureDataTopics([...byTopic.keys()]);
    const offsetMessages = result.offsets.map(({ partition, offset }) =>
      this.offsets.message(partitionKey(this.source.name, partition), offset),
    );
    const topicMessages = [
      ...[...byTopic].map(([topic, messages]) => ({ topic, messages })),
      ...(deadLetters.length ? [{ topic: this.options.deadLetterTopic, messages: deadLetters.map((d) => deadLetterMessage(d)) }] : []),
      ...(offsetMessages.length ? [{ topic: this.offsets.topic, messages: offsetMessages }] : []),
    ];
    const tx = await this.producer!.transaction();
    try {
      await tx.sendBatch({ topicMessages });
      await tx.commit();
    } catch (error) {
      await tx.abort().catch(() => undefined);
      throw error;
    }
    for (const { partition, offset } of result.offsets) this.committed.set(partitionKey(this.source.name, partition), offset);
    this.status.records += [...byTopic.values()].reduce((n, messages) => n + messages.length, 0);
    this.status.deadLetters += deadLetters.length;
    this.status.transactions += 1;
    this.status.lastCommitAt = new Date().toISOString();
    if (deadLetters.length) {
      this.logger.warn({ event: 'source.dead_letters', count: deadLetters.length, reasons: deadLetters.slice(0, 3).map((d) => d.reason) }, 'records sent to the dead-letter topic');
    }
    await result.ack();
  }

  private async encode(record: SourceRecord): Promise<Message> {
    const encodeKey = await this.encoder.encoderFor(`${record.topic}-key`, record.schema.key);
    const encodeValue = await this.encoder.encoderFor(`${record.topic}-value`, record.schema.value);
    return {
      key: encodeKey(record.key),
      value: record.value === null ? null : encodeValue(record.value),
      headers: record.headers,
      ...(record.timestamp !== undefined ? { timestamp: String(record.timestamp) } : {}),
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
