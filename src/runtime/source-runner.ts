import type { Kafka } from 'kafkajs';
import {
  BadRecordError,
  errorMessage,
  partitionKey,
  type DeadLetter,
  type Json,
  type OffsetStore,
  type PollResult,
  type Source,
  type SourceRecord,
} from '../core';
import { AvroEncoder, type TransientEncoder } from './avro';
import { BatchBuilder } from './batch-builder';
import type { KafkaConfig, RuntimeConfig } from './config';
import { deadLetterMessage, jsonSafe } from './dead-letters';
import { createKafka, ensureTopics, worthRetrying, type TopicSpec } from './kafka';
import type { Logger } from './logger';
import { KafkaOffsetStore } from './offsets';
import { createSchemaRegistry } from './registry';
import { sleep } from '../core/time';
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
export function runnerOptions(config: RuntimeConfig): SourceRunnerOptions {
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

/** Waits that double after each failure, from `min` up to `max`, and start over after a success. */
class Backoff {
  private wait: number;

  constructor(
    private readonly min: number,
    private readonly max: number,
  ) {
    this.wait = min;
  }

  next(): number {
    const wait = this.wait;
    this.wait = Math.min(this.wait * 2, this.max);
    return wait;
  }

  reset(): void {
    this.wait = this.min;
  }
}

/** What the runner needs of Kafka besides the offsets: a seam, so a unit test can hand in fakes. */
export interface RunnerKafka {
  /** A new producer of the source's transactional id (not initialised yet). */
  producer(): TransactionalProducer;
  /** Creates the topics that are missing; the partitions of each. */
  ensureTopics(specs: TopicSpec[]): Promise<Map<string, number>>;
}

/** Rejects as soon as `signal` aborts; `undo` then cleans up after `work` if it succeeds later. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal, undo?: (value: T) => unknown): Promise<T> {
  if (signal.aborted) {
    void work.then((value) => undo?.(value), () => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      void work.then((value) => undo?.(value), () => undefined);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * The registry call failed for a reason of the registry's, not the schema's: no answer (the client
 * reports a network error as status 400), 5xx, 401/403. Only 409 (incompatible) and 422 (invalid)
 * refuse the schema itself.
 */
function registryFailed(error: unknown): boolean {
  const status = (error as { status?: unknown })?.status;
  return typeof status === 'number' && status !== 409 && status !== 422;
}

/** What a person (or /status) sees of a running source. */
export interface SourceStatus {
  name: string;
  /**
   * `connecting`: a connect attempt after a failure (lastError tells the last one); `fenced`: another
   * instance took over the source's transactional id; this one has stopped writing.
   */
  state: 'starting' | 'connecting' | 'running' | 'backing-off' | 'fenced' | 'stopped';
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
export class SourceRunner {
  private readonly state: Omit<SourceStatus, 'details'>;
  private producer: TransactionalProducer | undefined;
  /** The producer's init, kept across connect attempts: kafkajs retries it until Kafka answers. */
  private producerReady: Promise<void> | undefined;
  /** The producer, the topics and the committed offsets are in place (until a step fails). */
  private kafkaReady = false;
  /** Whether the source ever connected: until then a failure retrying cannot fix is fatal. */
  private readonly kafkaSeam: RunnerKafka;
  private readonly abort = new AbortController();
  private committed = new Map<string, Record<string, Json>>();
  /** Partitions per topic, for the topics this runner writes to. */
  private readonly partitions = new Map<string, number>();
  private readonly backoff: Backoff;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly source: Source,
    kafka: Kafka,
    private readonly encoder: AvroEncoder,
    private readonly offsets: OffsetStore,
    private readonly logger: Logger,
    private readonly options: SourceRunnerOptions,
    kafkaSeam?: RunnerKafka,
  ) {
    this.kafkaSeam = kafkaSeam ?? {
      producer: () =>
        options.producerThread
          ? new WorkerProducer(options.kafka, this.transactionalId, logger)
          : new RecordSetProducer(kafka, this.transactionalId, options.kafka.encodedProduce),
      ensureTopics: (specs) => ensureTopics(kafka, specs),
    };
    this.state = { name: source.name, state: 'starting', records: 0, deadLetters: 0, transactions: 0, lastCommitAt: null, lastError: null };
    const { min, max } = options.backoffMs ?? { min: 200, max: 30_000 };
    this.backoff = new Backoff(min, max);
  }

  private get transactionalId(): string {
    return `${this.options.clientId}.source.${this.source.name}`;
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
          this.partitions.has(this.offsets.topic) ? undefined : this.offsets.ensureTopic().then((partitions) => this.partitions.set(this.offsets.topic, partitions)),
          this.ensureDataTopics([this.options.deadLetterTopic], 1),
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
    const producer = this.kafkaSeam.producer();
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
   * Encodes a poll's records, dead letters and offsets into record batches; a record that cannot
   * be encoded, or is too large for Kafka, becomes a dead letter, and so do the other records of
   * its change (SourceRecord.group): a key change is never half written.
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
    for (const group of changeGroups(result.records)) {
      const ready: Array<{ record: SourceRecord; key: Buffer; value: Buffer | null }> = [];
      let failure: { at: number; error: unknown } | undefined;
      for (const [at, record] of group.entries()) {
        // Outside the try: a topic Kafka cannot create fails the step (retried), it is no bad record.
        if (!this.partitions.has(record.topic)) await this.ensureDataTopics([record.topic], this.options.topicPartitions);
        let encoder = encoders.get(record.topic);
        if (encoder?.schema !== record.schema) {
          try {
            encoder = await this.encodersFor(record);
          } catch (error) {
            // A registry that cannot be reached (or fails) fails the step, retried; a schema it refuses is the record's fault.
            if (registryFailed(error)) throw error;
            failure = { at, error };
            break;
          }
          encoders.set(record.topic, encoder);
        }
        try {
          const { encoded } = record;
          const key = encoded ? encoder.frameKey(encoded.key) : encoder.key(record.key);
          const value = encoded ? encoded.value && encoder.frameValue(encoded.value) : record.value && encoder.value(record.value);
          if (group.length === 1) {
            // The common case: added at once (add refuses a record too large, as refusal would).
            builder.add(record.topic, key, value, record.headers, record.timestamp ?? now);
          } else {
            const refused = builder.refusal(key, value, record.headers, record.timestamp ?? now);
            if (refused) throw refused;
            // The encoders' output is overwritten by their next call, so a group's records wait as copies.
            ready.push({ record, key: Buffer.from(key), value: value && Buffer.from(value) });
          }
        } catch (error) {
          failure = { at, error };
          break;
        }
      }
      if (failure) {
        const { at: failed, error } = failure;
        deadLetters.push(...group.map((record, at) => this.unencodable(record, error, group.length > 1 ? { at, failed, of: group.length } : undefined)));
        continue;
      }
      for (const { record, key, value } of ready) builder.add(record.topic, key, value, record.headers, record.timestamp ?? now);
      records += group.length;
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

  /** `group`: where the record stands in its change's records, and which of them could not be written. */
  private unencodable(record: SourceRecord, error: unknown, group?: { at: number; failed: number; of: number }): DeadLetter {
    const cause = error instanceof BadRecordError ? error.message : `cannot encode for ${record.topic}: ${errorMessage(error)}`;
    const reason = group
      ? `${cause} (record ${group.failed + 1} of the ${group.of} records of one change, written all or none; this is record ${group.at + 1})`
      : cause;
    return {
      source: this.source.name,
      reason,
      stage: 'processing',
      code: (error instanceof BadRecordError ? error.code : undefined) ?? 'AVRO_ENCODE',
      key: JSON.stringify(record.key, jsonSafe),
      payload: { topic: record.topic, key: record.key, value: record.value, headers: record.headers },
      topic: record.topic,
    };
  }

  private async ensureDataTopics(topics: string[], numPartitions: number): Promise<void> {
    const missing = topics.filter((t) => !this.partitions.has(t));
    if (missing.length === 0) return;
    const counts = await this.kafkaSeam.ensureTopics(
      missing.map((topic) => ({ topic, numPartitions, replicationFactor: this.options.replicationFactor })),
    );
    for (const [topic, count] of counts) this.partitions.set(topic, count);
  }
}

/** The records in runs of one change each: adjacent records of one `group`, any other record alone. */
function changeGroups(records: readonly SourceRecord[]): SourceRecord[][] {
  const groups: SourceRecord[][] = [];
  for (const record of records) {
    const last = groups.at(-1);
    if (record.group !== undefined && last && last[0]!.group === record.group) last.push(record);
    else groups.push([record]);
  }
  return groups;
}
