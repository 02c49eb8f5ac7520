import type { Batch, Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { BadRecordError, errorMessage, partitionKey, type OffsetStore, type DeadLetter, type Json, type SourceRecord, type Transform, type TransformInput, type TransformResult } from '../core';
import { AvroDecoder, type AvroEncoder } from '../runtime/avro';
import { jsonSafe } from '../runtime/dead-letters';
import { worthRetrying } from '../runtime/kafka';
import type { Logger } from '../runtime/logger';
import { Backoff, untilAborted, type Pipeline, type PipelineStatus } from '../runtime/pipeline';
import { RecordOutput } from '../runtime/record-output';
import type { RunnerKafka, RunnerOptions } from '../runtime/source-runner';
import { sleep } from '../core/time';
import { PRODUCER_FENCED, type TransactionalProducer } from '../runtime/transactional-producer';

export interface TransformRunnerOptions extends RunnerOptions {
  /** Names the transform in logs, metrics, dead letters, its consumer group and transactional ids. */
  name: string;
  /** The input topics. */
  topics: string[];
  /** Default `<clientId>.transform.<name>`. */
  groupId?: string;
  /** Input partitions mapped and committed at the same time (each in its own transaction). */
  partitionsConsumedConcurrently?: number;
  /** The most input bytes of one partition fetched, and so mapped and committed, at once. */
  maxBytesPerPartition?: number;
  /** The consumer's session timeout: how long a silent member keeps its partitions. */
  sessionTimeoutMs?: number;
  /** What must be in place before anything is mapped (schemas registered, change types read); retried with the connect. */
  beforeConsume?: () => Promise<void>;
}

/** One input partition this instance owns: its producer and the next offset to read, as committed. */
interface OwnedPartition {
  topic: string;
  partition: number;
  producer: TransactionalProducer;
  /** Init (which fences the partition's previous owner), then the committed offset read after it. */
  ready: Promise<void>;
  /** The next offset to map: everything below it is committed. */
  next: bigint;
  /** Another instance initialised this partition's transactional id: this one writes it no more. */
  fenced: boolean;
}

/**
 * Consume → map → produce, exactly once inside Kafka. Each batch of one input partition is mapped
 * by a pure Transform and written in one transaction that also commits the input offsets
 * (sendOffsets), so a crash never loses or doubles an event.
 *
 * Zombie fencing (kafkajs has no KIP-447 group metadata in sendOffsets): one transactional id per
 * input partition, `<clientId>.transform.<name>.<topic>.<partition>`, as Kafka Streams' first
 * exactly-once mode did. The instance a partition is assigned to initialises that id before it
 * maps anything, which aborts or completes whatever the previous owner had open and refuses that
 * owner's later commits; only then does it read the partition's committed offset, which is
 * therefore final. See docs/transforms.md.
 */
export class TransformRunner implements Pipeline {
  readonly kind = 'transform';
  private readonly state: Omit<PipelineStatus, 'details'>;
  private readonly counts = { inputs: 0, dropped: {} as Record<string, number>, rebalances: 0, fencedPartitions: 0 };
  private readonly owned = new Map<string, OwnedPartition>();
  private readonly lag = new Map<string, number>();
  private readonly output: RecordOutput;
  private readonly backoff: Backoff;
  private readonly abort = new AbortController();
  private consumer: Consumer | undefined;
  private loop: Promise<void> | undefined;
  /** Ends when the batch that mapped last has done its CPU part (see eachBatch). */
  private cpu: Promise<void> = Promise.resolve();
  private readonly groupId: string;

  constructor(
    private readonly transform: Transform,
    private readonly kafka: Kafka,
    private readonly runnerKafka: RunnerKafka,
    encoder: AvroEncoder,
    private readonly decoder: AvroDecoder,
    /** Where each input partition's next offset is kept, written in the batch's transaction (see owner()). */
    private readonly offsets: OffsetStore,
    private readonly logger: Logger,
    private readonly options: TransformRunnerOptions,
  ) {
    this.output = new RecordOutput(encoder, (specs) => runnerKafka.ensureTopics(specs), options);
    this.groupId = options.groupId ?? `${options.clientId}.transform.${options.name}`;
    this.state = { name: options.name, kind: 'transform', state: 'starting', records: 0, deadLetters: 0, transactions: 0, lastCommitAt: null, lastError: null };
    const { min, max } = options.backoffMs ?? { min: 200, max: 30_000 };
    this.backoff = new Backoff(min, max);
  }

  get name(): string {
    return this.options.name;
  }

  get status(): PipelineStatus {
    const partitions = [...this.owned.values()].filter((p) => !p.fenced).map((p) => `${p.topic}/${p.partition}`).sort();
    let lag = 0;
    for (const value of this.lag.values()) lag += value;
    return {
      ...this.state,
      details: {
        groupId: this.groupId,
        inputs: this.counts.inputs,
        dropped: { ...this.counts.dropped },
        partitions,
        lag,
        rebalances: this.counts.rebalances,
        fencedPartitions: this.counts.fencedPartitions,
      } satisfies Record<string, Json>,
    };
  }

  /** The transactional id of one input partition. */
  transactionalId(topic: string, partition: number): string {
    return `${this.options.clientId}.transform.${this.options.name}.${topic}.${partition}`;
  }

  /**
   * Starts consuming and resolves after the first attempt to join the group: joined, or backing off
   * from a Kafka it cannot reach yet (it keeps trying in the background).
   */
  start(): Promise<void> {
    let settle!: () => void;
    const firstAttempt = new Promise<void>((resolve) => (settle = resolve));
    this.loop = this.run(settle);
    return firstAttempt;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.consumer?.disconnect().catch(() => undefined);
    await this.loop?.catch(() => undefined);
    await this.dropPartitions([...this.owned.keys()]);
    this.state.state = 'stopped';
    this.logger.info({ event: 'transform.stopped' }, 'transform stopped');
  }

  /** Connects and runs a consumer; when it crashes for good, backs off and starts a new one. */
  private async run(settle: () => void): Promise<void> {
    while (!this.abort.signal.aborted) {
      let crashed!: (error: unknown) => void;
      const crash = new Promise<unknown>((resolve) => (crashed = resolve));
      try {
        if (this.state.state !== 'starting') this.state.state = 'connecting';
        const consumer = this.newConsumer(crashed);
        await untilAborted(this.connect(consumer), this.abort.signal);
        this.state.state = 'running';
        this.logger.info({ event: 'transform.started', groupId: this.groupId, topics: this.options.topics }, 'transform started');
        settle();
        const error = await Promise.race([crash, new Promise((resolve) => this.abort.signal.addEventListener('abort', resolve, { once: true }))]);
        if (this.abort.signal.aborted) break;
        throw error;
      } catch (error) {
        if (this.abort.signal.aborted) break;
        await this.consumer?.disconnect().catch(() => undefined);
        await this.dropPartitions([...this.owned.keys()]);
        this.state.state = 'backing-off';
        this.state.lastError = errorMessage(error);
        const wait = this.backoff.next();
        this.logger[worthRetrying(error) ? 'warn' : 'error']({ event: 'transform.failed', err: error, retryInMs: wait }, 'transform failed; joining the group again');
        settle();
        await sleep(wait, this.abort.signal);
      }
    }
    settle();
  }

  private newConsumer(crashed: (error: unknown) => void): Consumer {
    const consumer = this.kafka.consumer({
      groupId: this.groupId,
      readUncommitted: false,
      sessionTimeout: this.options.sessionTimeoutMs ?? 30_000,
      // A fetch is a transaction's worth of input: larger ones mean fewer transactions, whose
      // round trips (not the CPU) bound a transform (docs/performance.md).
      maxBytesPerPartition: this.options.maxBytesPerPartition ?? 8 * 1024 * 1024,
      maxBytes: 4 * (this.options.maxBytesPerPartition ?? 8 * 1024 * 1024),
      // A failed batch is tried again by kafkajs with these waits; the runner sees each failure first.
      retry: { initialRetryTime: this.options.backoffMs?.min ?? 200, maxRetryTime: this.options.backoffMs?.max ?? 30_000, retries: 8 },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => this.onAssignment(payload.memberAssignment));
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      // kafkajs restarts by itself after a retriable crash; only a crash it gives up on ends this consumer.
      if (!payload.restart) crashed(payload.error);
    });
    return consumer;
  }

  private async connect(consumer: Consumer): Promise<void> {
    // An input topic its source has not written yet is made as the source would make it, so the
    // transform can join its group before the first change.
    await Promise.all([
      this.output.ensureDeadLetterTopic(),
      this.output.ensureTopics(this.options.topics),
      this.output.knows(this.offsets.topic) ? undefined : this.offsets.ensureTopic().then((partitions) => this.output.knowTopic(this.offsets.topic, partitions)),
      consumer.connect(),
      this.options.beforeConsume?.(),
    ]);
    await consumer.subscribe({ topics: this.options.topics, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.partitionsConsumedConcurrently ?? 3,
      eachBatch: (payload) => this.eachBatch(payload.batch, payload),
    });
  }

  /**
   * A new assignment, a new generation of the group: every partition's producer is dropped and made
   * again when its first batch comes, so each generation initialises the transactional ids of its
   * partitions and reads their committed offsets anew. Even a partition this instance had before
   * may have been another member's in between (this one was evicted and rejoined), and its old
   * producer would then be fenced.
   */
  private onAssignment(assignment: Record<string, number[]>): void {
    this.counts.rebalances++;
    const assigned = new Set(Object.entries(assignment).flatMap(([topic, partitions]) => partitions.map((p) => `${topic}/${p}`)));
    for (const key of this.lag.keys()) if (!assigned.has(key)) this.lag.delete(key);
    void this.dropPartitions([...this.owned.keys()]);
    // Taken over at once, all together, while kafkajs fetches their first batches.
    this.acquire(Object.entries(assignment).flatMap(([topic, partitions]) => partitions.map((partition) => ({ topic, partition }))));
    this.logger.info({ event: 'transform.assigned', partitions: [...assigned].sort() }, 'partitions assigned');
    // A partition paused after it was fenced is ours again if the group says so.
    const consumer = this.consumer;
    if (consumer) for (const [topic, partitions] of Object.entries(assignment)) consumer.resume([{ topic, partitions }]);
  }

  /** Forgets a partition's producer after a failure, unless a newer one took its place meanwhile. */
  private forget(owned: OwnedPartition): void {
    const key = `${owned.topic}/${owned.partition}`;
    if (this.owned.get(key) === owned) this.owned.delete(key);
  }

  /** Closes the partitions' producers at once, an init still under way too (it would otherwise retry as long as Kafka is away). */
  private async dropPartitions(keys: string[]): Promise<void> {
    const dropped = keys.map((key) => this.owned.get(key)).filter((p): p is OwnedPartition => p !== undefined);
    for (const key of keys) this.owned.delete(key);
    await Promise.all(dropped.map((p) => p.producer.close().catch(() => undefined)));
  }

  /** The partition's producer, initialised (fencing the previous owner), and its next offset read after that. */
  private owner(topic: string, partition: number): OwnedPartition {
    return this.owned.get(`${topic}/${partition}`) ?? this.acquire([{ topic, partition }])[0]!;
  }

  /**
   * Takes partitions over together (all of an assignment at once): every producer initialised
   * first, which fences each partition's previous owner, then their next offsets read once.
   *
   * The next offset is the one in the offsets topic, read read_committed after the inits: the
   * previous owner's last transaction has then completed (its markers are written), so what it
   * committed is visible, and nothing else can commit for these partitions. The group's offset
   * (sendOffsets, for kafkajs's start and for lag tools) can still be stale for a moment after that
   * completion (KIP-447's require_stable, which kafkajs does not send), so it only counts where it
   * is ahead (a transform run before offsets were kept there).
   */
  private acquire(partitions: Array<{ topic: string; partition: number }>): OwnedPartition[] {
    const taken = partitions.map(({ topic, partition }): OwnedPartition => {
      const producer = this.runnerKafka.producer(this.transactionalId(topic, partition));
      const owned: OwnedPartition = { topic, partition, producer, next: 0n, fenced: false, ready: Promise.resolve() };
      this.owned.set(`${topic}/${partition}`, owned);
      return owned;
    });
    const positions = (async () => {
      await Promise.all(taken.map((owned) => owned.producer.init()));
      const topics = [...new Set(partitions.map((p) => p.topic))];
      const [stored, group] = await Promise.all([this.offsets.load(this.offsetsName), this.groupOffsets(topics)]);
      return { stored, group };
    })();
    for (const owned of taken) {
      owned.ready = positions.then(({ stored, group }) => {
        const { topic, partition } = owned;
        const kept = stored.get(partitionKey(this.offsetsName, { topic, partition }))?.next;
        const fromTopic = typeof kept === 'string' ? BigInt(kept) : 0n;
        const fromGroup = group.get(`${topic}/${partition}`) ?? 0n;
        owned.next = fromTopic > fromGroup ? fromTopic : fromGroup;
        this.logger.info({ event: 'transform.partition_ready', topic, partition, offset: String(owned.next) }, 'input partition ready');
      });
      owned.ready.catch(() => undefined);
    }
    return taken;
  }

  /** The name the offsets topic keys this transform's positions by (no source name has a colon). */
  private get offsetsName(): string {
    return `transform:${this.options.name}`;
  }

  /** The group's committed offsets of `topics`, by `topic/partition`. */
  private async groupOffsets(topics: string[]): Promise<Map<string, bigint>> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const offsets = new Map<string, bigint>();
      for (const { topic, partitions } of await admin.fetchOffsets({ groupId: this.groupId, topics })) {
        for (const { partition, offset } of partitions) if (BigInt(offset) >= 0n) offsets.set(`${topic}/${partition}`, BigInt(offset));
      }
      return offsets;
    } finally {
      await admin.disconnect();
    }
  }

  private async eachBatch(
    batch: Batch,
    { resolveOffset, heartbeat, pause, isRunning, isStale }: { resolveOffset(offset: string): void; heartbeat(): Promise<void>; pause(): () => void; isRunning(): boolean; isStale(): boolean },
  ): Promise<void> {
    if (batch.isEmpty() || !isRunning() || isStale()) return;
    const owned = this.owner(batch.topic, batch.partition);
    if (owned.fenced) {
      pause();
      return;
    }
    try {
      await owned.ready;
    } catch (error) {
      // The next attempt initialises again (kafkajs retries the batch).
      this.forget(owned);
      await owned.producer.close().catch(() => undefined);
      throw this.failed(error);
    }
    // Below the committed offset: read again after a rebalance or a failed commit; mapped already.
    // A batch's offsets ascend, so one whose first is not below holds none that is.
    const first = batch.messages[0];
    const messages = first && BigInt(first.offset) >= owned.next ? batch.messages : batch.messages.filter((m) => BigInt(m.offset) >= owned.next);
    if (messages.length === 0) {
      resolveOffset(batch.lastOffset());
      return;
    }
    // One batch at a time maps and encodes (the CPU part); its commit then overlaps the next batch's
    // mapping, rather than every commit waiting until all batches of the fetch are mapped.
    const endTurn = await this.cpuTurn();
    try {
      await this.mapAndCommit(batch, messages, owned, { resolveOffset, heartbeat, pause }, endTurn);
    } finally {
      endTurn();
    }
  }

  /** Waits for the previous batch's CPU part to end; resolves with the function that ends this one's. */
  private async cpuTurn(): Promise<() => void> {
    const previous = this.cpu;
    let end!: () => void;
    this.cpu = new Promise<void>((resolve) => (end = resolve));
    await previous;
    return end;
  }

  private async mapAndCommit(
    batch: Batch,
    messages: KafkaMessage[],
    owned: OwnedPartition,
    { resolveOffset, heartbeat, pause }: { resolveOffset(offset: string): void; heartbeat(): Promise<void>; pause(): () => void },
    endTurn: () => void,
  ): Promise<void> {
    const records: SourceRecord[] = [];
    const deadLetters: DeadLetter[] = [];
    const dropped: Record<string, number> = {};
    for (const message of messages) {
      // Synchronous once the input's schemas are known: no promise per record.
      const mapped = this.map(batch.topic, batch.partition, message);
      const result = mapped instanceof Promise ? await mapped : mapped;
      for (const record of result.records) records.push(record);
      if (result.deadLetters) for (const letter of result.deadLetters) deadLetters.push(letter);
      if (result.dropped) for (const reason in result.dropped) dropped[reason] = (dropped[reason] ?? 0) + result.dropped[reason]!;
    }
    const next = BigInt(messages.at(-1)!.offset) + 1n;
    try {
      const prepared = await this.output.prepare(`transform:${this.options.name}`, {
        records,
        deadLetters,
        // The partition's next offset, in the same transaction as what it made of the batch.
        extra: [{ topic: this.offsets.topic, ...this.offsets.message(partitionKey(this.offsetsName, { topic: batch.topic, partition: batch.partition }), { next: String(next) }) }],
      });
      endTurn();
      await owned.producer.commitTransaction(prepared.requests, {
        consumerGroupId: this.groupId,
        topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: String(next) }] }],
      });
      owned.next = next;
      this.state.records += prepared.records;
      this.state.deadLetters += prepared.deadLetters.length;
      if (prepared.deadLetters.length) {
        this.logger.warn(
          { event: 'transform.dead_letters', count: prepared.deadLetters.length, reasons: prepared.deadLetters.slice(0, 3).map((d) => d.reason) },
          'records sent to the dead-letter topic',
        );
      }
    } catch (error) {
      if ((error as { code?: string }).code === PRODUCER_FENCED) {
        // Another instance owns this partition now: this one neither writes nor initialises it
        // again (that would fence the new owner in turn) until the group assigns it here anew.
        owned.fenced = true;
        this.counts.fencedPartitions++;
        this.logger.warn({ event: 'transform.fenced', topic: batch.topic, partition: batch.partition, err: error }, 'another instance owns this input partition now; its batch is left to it');
        pause();
        return;
      }
      // Whether the failed commit landed is unknown: the offset is read again after a new init.
      this.forget(owned);
      await owned.producer.close().catch(() => undefined);
      throw this.failed(error);
    }
    this.counts.inputs += messages.length;
    for (const [reason, count] of Object.entries(dropped)) this.counts.dropped[reason] = (this.counts.dropped[reason] ?? 0) + count;
    this.state.transactions += 1;
    this.state.lastCommitAt = new Date().toISOString();
    this.state.state = 'running';
    this.backoff.reset();
    // From the batch's last offset, a transaction marker included: a caught-up partition reads 0.
    this.lag.set(`${batch.topic}/${batch.partition}`, Math.max(0, Number(batch.offsetLag())));
    resolveOffset(messages.at(-1)!.offset);
    await heartbeat();
  }

  private failed(error: unknown): unknown {
    this.state.state = 'backing-off';
    this.state.lastError = errorMessage(error);
    this.logger.warn({ event: 'transform.batch_failed', err: error }, 'transform batch failed; kafkajs tries it again');
    return error;
  }

  /**
   * Decodes and maps one input; what cannot be decoded or mapped becomes a dead letter naming where
   * it was. At once when the decoder knows the input's schemas, else after fetching them.
   */
  private map(topic: string, partition: number, message: KafkaMessage): TransformResult | Promise<TransformResult> {
    let key: unknown;
    let value: unknown;
    try {
      key = message.key ? this.decoder.decodeKnown(message.key) : null;
      value = key === AvroDecoder.NOT_FETCHED ? key : message.value ? this.decoder.decodeKnown(message.value) : null;
    } catch (error) {
      return this.undecodable(topic, partition, message, error);
    }
    if (value === AvroDecoder.NOT_FETCHED) return this.mapFetching(topic, partition, message);
    return this.mapDecoded(topic, partition, message, key, value as Record<string, unknown> | null);
  }

  /** map, waiting for the registry to give a schema this decoder has not fetched yet. */
  private async mapFetching(topic: string, partition: number, message: KafkaMessage): Promise<TransformResult> {
    let key: unknown;
    let value: unknown;
    try {
      key = message.key ? await this.decoder.decode(message.key) : null;
      value = message.value ? await this.decoder.decode(message.value) : null;
    } catch (error) {
      return this.undecodable(topic, partition, message, error);
    }
    return this.mapDecoded(topic, partition, message, key, value as Record<string, unknown> | null);
  }

  private undecodable(topic: string, partition: number, message: KafkaMessage, error: unknown): TransformResult {
    // A registry that is away fails the batch (tried again); bytes that are no Avro of theirs are the record's fault.
    if (worthRetrying(error)) throw error;
    return { records: [], deadLetters: [this.deadLetter({ topic, partition, offset: message.offset }, message, error, 'receiving', 'UNDECODABLE')] };
  }

  private mapDecoded(topic: string, partition: number, message: KafkaMessage, key: unknown, value: Record<string, unknown> | null): TransformResult {
    const input: TransformInput = { topic, partition, offset: message.offset, key, value, headers: textHeaders(message), timestamp: Number(message.timestamp) };
    try {
      const result = this.transform(input);
      if (!result.deadLetters?.length) return result;
      const where = { topic, partition, offset: message.offset };
      return { ...result, deadLetters: result.deadLetters.map((letter) => ({ ...letter, input: letter.input ?? where })) };
    } catch (error) {
      const where = { topic, partition, offset: message.offset };
      return { records: [], deadLetters: [this.deadLetter(where, message, error, 'processing', error instanceof BadRecordError ? error.code ?? 'UNMAPPABLE' : 'UNMAPPABLE')] };
    }
  }

  private deadLetter(where: { topic: string; partition: number; offset: string }, message: KafkaMessage, error: unknown, stage: DeadLetter['stage'], code: string): DeadLetter {
    return {
      source: `transform:${this.options.name}`,
      reason: `${where.topic}/${where.partition}@${where.offset}: ${errorMessage(error)}`,
      stage,
      code,
      ...(message.key ? { key: message.key.toString('hex') } : {}),
      // The bytes as they came (hex, as the dead-letter writer writes every byte string).
      payload: { key: message.key ?? null, value: message.value ?? null, headers: textHeaders(message) },
      input: where,
    };
  }
}

function textHeaders(message: KafkaMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  const raw = message.headers;
  if (!raw) return headers;
  for (const name of Object.keys(raw)) {
    const value = raw[name];
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.map(String).join(',') : String(value);
  }
  return headers;
}
