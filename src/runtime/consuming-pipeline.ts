import type { Batch, Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { errorMessage, type DeadLetter, type Json } from '../core';
import { sleep } from '../core/time';
import { worthRetrying } from './kafka';
import type { Logger } from './logger';
import { Backoff, untilAborted, type Pipeline, type PipelineKind, type PipelineStatus } from './pipeline';
import type { RunnerOptions } from './source-runner';

export interface ConsumingPipelineOptions extends RunnerOptions {
  /** Names the pipeline in logs, metrics, dead letters, its consumer group and transactional ids. */
  name: string;
  /** The input topics. */
  topics: string[];
  /** Default `<clientId>.<kind>.<name>`. */
  groupId?: string;
  /** Input partitions handled at the same time (each batch in its own transaction). */
  partitionsConsumedConcurrently?: number;
  /** The most input bytes of one partition fetched, and so handled and committed, at once. */
  maxBytesPerPartition?: number;
  /** The consumer's session timeout: how long a silent member keeps its partitions. */
  sessionTimeoutMs?: number;
  /** What must be in place before anything is handled (schemas registered, change types read); retried with the connect. */
  beforeConsume?: () => Promise<void>;
}

/** One input partition this instance owns, and the next offset to handle, as committed. */
export interface OwnedPartition {
  topic: string;
  partition: number;
  /** Taking the partition over (fencing its previous owner, where there is one), then reading its committed offset. */
  ready: Promise<void>;
  /** The next offset to handle: everything below it is committed. */
  next: bigint;
  /** Another instance owns this partition now: this one handles it no more until the group assigns it here anew. */
  fenced: boolean;
  /** The consumer must read the partition again from `next` before anything else (its stored position was reset). */
  rewind?: boolean;
}

/** What a batch handler may do with the consumer, as kafkajs's eachBatch gives it. */
export interface BatchControls {
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  pause(): () => void;
}

/**
 * The consuming half every pipeline with an input topic shares (transforms, sinks): a consumer
 * group joined with backoff and joined again after a crash it gives up on, every assignment taken
 * over as a whole (each partition's `ready` before its first batch), inputs below the committed
 * offset skipped, and the status the runtime shows. A kind adds how it takes a partition over and
 * what it does with a batch, committing both the batch's result and the partition's next offset.
 */
export abstract class ConsumingPipeline<P extends OwnedPartition> implements Pipeline {
  abstract readonly kind: PipelineKind;
  protected readonly state: Omit<PipelineStatus, 'details'>;
  protected readonly counts = { inputs: 0, dropped: {} as Record<string, number>, rebalances: 0, fencedPartitions: 0, positionsReset: 0 };
  protected readonly owned = new Map<string, P>();
  private readonly lag = new Map<string, number>();
  protected readonly backoff: Backoff;
  protected readonly abort = new AbortController();
  private consumer: Consumer | undefined;
  private loop: Promise<void> | undefined;
  readonly groupId: string;

  constructor(
    protected readonly kafka: Kafka,
    protected readonly logger: Logger,
    protected readonly options: ConsumingPipelineOptions,
    kind: PipelineKind,
  ) {
    this.groupId = options.groupId ?? `${options.clientId}.${kind}.${options.name}`;
    this.state = { name: options.name, kind, state: 'starting', records: 0, deadLetters: 0, transactions: 0, lastCommitAt: null, lastError: null };
    const { min, max } = options.backoffMs ?? { min: 200, max: 30_000 };
    this.backoff = new Backoff(min, max);
  }

  get name(): string {
    return this.options.name;
  }

  /** The kind's own account, added to the status details. */
  protected abstract extraDetails(): Record<string, Json>;

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
        positionsReset: this.counts.positionsReset,
        ...this.extraDetails(),
      },
    };
  }

  /** What must exist before the consumer subscribes (output topics, tables), beside `beforeConsume`. */
  protected abstract prepare(): Promise<void>;

  /** Starts taking partitions over (all of an assignment at once); each one's `ready` settles when it may be handled. */
  protected abstract acquire(partitions: Array<{ topic: string; partition: number }>): P[];

  /** Lets partitions go (closing what `acquire` opened); `ready` may still be under way. */
  protected abstract release(partitions: P[]): Promise<void>;

  /**
   * Handles the batch's `messages` (those at or above the partition's next offset) and commits
   * their result with the partition's next offset. On success it sets `owned.next`, calls
   * `committed`; on a failure it throws (kafkajs tries the batch again after `failed`).
   */
  protected abstract handle(batch: Batch, messages: KafkaMessage[], owned: P, controls: BatchControls): Promise<void>;

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
    this.logger.info({ event: `${this.kind}.stopped` }, `${this.kind} stopped`);
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
        this.logger.info({ event: `${this.kind}.started`, groupId: this.groupId, topics: this.options.topics }, `${this.kind} started`);
        settle();
        let onAbort!: () => void;
        const aborted = new Promise<void>((resolve) => (onAbort = resolve));
        this.abort.signal.addEventListener('abort', onAbort, { once: true });
        // One listener per consumer, removed when that consumer ends (not one more per restart).
        const error = await Promise.race([crash, aborted]).finally(() => this.abort.signal.removeEventListener('abort', onAbort));
        if (this.abort.signal.aborted) break;
        throw error;
      } catch (error) {
        if (this.abort.signal.aborted) break;
        await this.consumer?.disconnect().catch(() => undefined);
        await this.dropPartitions([...this.owned.keys()]);
        this.state.state = 'backing-off';
        this.state.lastError = errorMessage(error);
        const wait = this.backoff.next();
        this.logger[worthRetrying(error) ? 'warn' : 'error']({ event: `${this.kind}.failed`, err: error, retryInMs: wait }, `${this.kind} failed; joining the group again`);
        settle();
        await sleep(wait, this.abort.signal);
      }
    }
    settle();
  }

  private newConsumer(crashed: (error: unknown) => void): Consumer {
    const maxBytesPerPartition = this.options.maxBytesPerPartition ?? 8 * 1024 * 1024;
    const consumer = this.kafka.consumer({
      groupId: this.groupId,
      readUncommitted: false,
      sessionTimeout: this.options.sessionTimeoutMs ?? 30_000,
      // A fetch is a transaction's worth of input: larger ones mean fewer transactions, whose
      // round trips (not the CPU) bound a transform (docs/performance.md).
      maxBytesPerPartition,
      maxBytes: 4 * maxBytesPerPartition,
      // A failed batch is tried again by kafkajs with these waits; the pipeline sees each failure first.
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
    await Promise.all([this.prepare(), consumer.connect(), this.options.beforeConsume?.()]);
    await consumer.subscribe({ topics: this.options.topics, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.partitionsConsumedConcurrently ?? 3,
      eachBatch: (payload) => this.eachBatch(payload.batch, payload),
    });
  }

  /**
   * A new assignment, a new generation of the group: every partition is let go and taken over
   * again, so each generation fences and reads committed offsets anew. Even a partition this
   * instance had before may have been another member's in between (this one was evicted and rejoined).
   */
  private onAssignment(assignment: Record<string, number[]>): void {
    this.counts.rebalances++;
    const assigned = new Set(Object.entries(assignment).flatMap(([topic, partitions]) => partitions.map((p) => `${topic}/${p}`)));
    for (const key of this.lag.keys()) if (!assigned.has(key)) this.lag.delete(key);
    void this.dropPartitions([...this.owned.keys()]);
    // Taken over at once, all together, while kafkajs fetches their first batches.
    this.take(Object.entries(assignment).flatMap(([topic, partitions]) => partitions.map((partition) => ({ topic, partition }))));
    this.logger.info({ event: `${this.kind}.assigned`, partitions: [...assigned].sort() }, 'partitions assigned');
    // A partition paused after it was fenced is ours again if the group says so.
    const consumer = this.consumer;
    if (consumer) for (const [topic, partitions] of Object.entries(assignment)) consumer.resume([{ topic, partitions }]);
  }

  private take(partitions: Array<{ topic: string; partition: number }>): P[] {
    const taken = this.acquire(partitions);
    for (const owned of taken) {
      this.owned.set(`${owned.topic}/${owned.partition}`, owned);
      owned.ready.catch(() => undefined);
    }
    return taken;
  }

  /** Forgets a partition after a failure (unless a newer take replaced it) and lets it go. */
  protected async forget(owned: P): Promise<void> {
    const key = `${owned.topic}/${owned.partition}`;
    if (this.owned.get(key) === owned) this.owned.delete(key);
    await this.release([owned]).catch(() => undefined);
  }

  private async dropPartitions(keys: string[]): Promise<void> {
    const dropped = keys.map((key) => this.owned.get(key)).filter((p): p is P => p !== undefined);
    for (const key of keys) this.owned.delete(key);
    if (dropped.length) await this.release(dropped).catch(() => undefined);
  }

  private async eachBatch(batch: Batch, payload: BatchControls & { isRunning(): boolean; isStale(): boolean }): Promise<void> {
    if (batch.isEmpty() || !payload.isRunning() || payload.isStale()) return;
    const owned = this.owned.get(`${batch.topic}/${batch.partition}`) ?? this.take([{ topic: batch.topic, partition: batch.partition }])[0]!;
    if (owned.fenced) {
      payload.pause();
      return;
    }
    try {
      await owned.ready;
    } catch (error) {
      // The next attempt takes the partition over again (kafkajs retries the batch).
      await this.forget(owned);
      throw this.failed(error);
    }
    if (owned.rewind) {
      owned.rewind = false;
      if (batch.messages[0] && BigInt(batch.messages[0].offset) > owned.next) {
        this.seek(batch.topic, batch.partition, owned.next);
        return;
      }
    }
    // Below the committed offset: read again after a rebalance or a failed commit; handled already.
    // A batch's offsets ascend, so one whose first is not below holds none that is.
    const first = batch.messages[0];
    const messages = first && BigInt(first.offset) >= owned.next ? batch.messages : batch.messages.filter((m) => BigInt(m.offset) >= owned.next);
    if (messages.length === 0) {
      payload.resolveOffset(batch.lastOffset());
      return;
    }
    await this.handle(batch, messages, owned, payload);
  }

  /** Marks a partition fenced: paused, counted, never written again until reassigned. */
  protected fence(owned: P, batch: Batch, controls: BatchControls, error: unknown): void {
    owned.fenced = true;
    this.counts.fencedPartitions++;
    this.logger.warn({ event: `${this.kind}.fenced`, topic: batch.topic, partition: batch.partition, err: error }, 'another instance owns this input partition now; its batch is left to it');
    controls.pause();
  }

  /** After a batch's commit: counts, status, lag, and the consumer told where the partition is. */
  protected async committed(batch: Batch, messages: KafkaMessage[], dropped: Record<string, number>, controls: BatchControls): Promise<void> {
    this.counts.inputs += messages.length;
    for (const [reason, count] of Object.entries(dropped)) this.counts.dropped[reason] = (this.counts.dropped[reason] ?? 0) + count;
    this.state.transactions += 1;
    this.state.lastCommitAt = new Date().toISOString();
    this.state.state = 'running';
    this.backoff.reset();
    // From the batch's last offset, a transaction marker included: a caught-up partition reads 0.
    this.lag.set(`${batch.topic}/${batch.partition}`, Math.max(0, Number(batch.offsetLag())));
    controls.resolveOffset(messages.at(-1)!.offset);
    await controls.heartbeat();
  }

  /** Records a batch's failure (kafkajs tries it again) and returns the error to throw. */
  protected failed(error: unknown): unknown {
    this.state.state = 'backing-off';
    this.state.lastError = errorMessage(error);
    this.logger.warn({ event: `${this.kind}.batch_failed`, err: error }, `${this.kind} batch failed; kafkajs tries it again`);
    return error;
  }

  /** Reads a partition again from `offset` (its next fetch starts there). */
  protected seek(topic: string, partition: number, offset: bigint): void {
    this.consumer?.seek({ topic, partition, offset: String(offset) });
  }

  /** Commits a partition's next offset to the group, outside any transaction (for lag tools and the next start's fetch). */
  protected async commitGroupOffset(topic: string, partition: number, next: bigint): Promise<void> {
    await this.consumer?.commitOffsets([{ topic, partition, offset: String(next) }]);
  }

  /**
   * A stored position checked against the partition as it is now. Past its end, the position was
   * stored for another incarnation of the topic (deleted and made again, or another cluster): the
   * partition is read from its start, loudly, and what was applied already is left to the caller's
   * guard. Before its start, events were deleted by retention unread: said as an error (only when a
   * position was stored: a new reader starts at the first offset left, and has lost nothing), read
   * on from the first one left.
   */
  protected checkPosition(owned: P, stored: bigint | undefined, extent: { low: bigint; high: bigint } | undefined): void {
    if (stored === undefined) {
      owned.next = extent?.low ?? 0n;
      return;
    }
    owned.next = this.checkedPosition(owned.topic, owned.partition, stored, extent);
    if (owned.next === stored) return;
    // The consumer fetches from the group's offset, which may be past the new position: sent back
    // now (a partition that gets no new record is read again all the same), and once more at its
    // first batch should one fetched before this seek arrive.
    owned.rewind = true;
    this.seek(owned.topic, owned.partition, owned.next);
  }

  private checkedPosition(topic: string, partition: number, stored: bigint, extent: { low: bigint; high: bigint } | undefined): bigint {
    if (!extent) return stored;
    const where = { topic, partition, stored: String(stored), low: String(extent.low), high: String(extent.high) };
    if (stored > extent.high) {
      this.counts.positionsReset++;
      this.logger.warn(
        { event: `${this.kind}.position_beyond_end`, ...where },
        `the stored position ${stored} of ${topic}/${partition} is past its end (${extent.high}): the topic was deleted and made again, or this is another Kafka cluster; it is read from its start (${extent.low}), and the version guard keeps what was applied from being applied again`,
      );
      return extent.low;
    }
    if (stored < extent.low) {
      this.counts.positionsReset++;
      this.logger.error(
        { event: `${this.kind}.position_lost`, ...where },
        `the stored position ${stored} of ${topic}/${partition} is before its first offset (${extent.low}): ${extent.low - stored} events were deleted by retention before this sink applied them; it goes on from ${extent.low}`,
      );
      return extent.low;
    }
    return stored;
  }

  /** The group's committed offsets of `topics`, by `topic/partition`. */
  protected async groupOffsets(topics: string[]): Promise<Map<string, bigint>> {
    return (await this.positions(topics, false)).group;
  }

  /**
   * The group's committed offsets of `topics` and, with `extents`, each partition's first and next
   * offsets (low and high watermarks), by `topic/partition`, over one admin connection.
   */
  protected async positions(topics: string[], extents = true): Promise<{ group: Map<string, bigint>; extents: Map<string, { low: bigint; high: bigint }> }> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const group = new Map<string, bigint>();
      for (const { topic, partitions } of await admin.fetchOffsets({ groupId: this.groupId, topics })) {
        for (const { partition, offset } of partitions) if (BigInt(offset) >= 0n) group.set(`${topic}/${partition}`, BigInt(offset));
      }
      const bounds = new Map<string, { low: bigint; high: bigint }>();
      if (extents) {
        for (const topic of topics) {
          for (const { partition, low, high } of await admin.fetchTopicOffsets(topic)) bounds.set(`${topic}/${partition}`, { low: BigInt(low), high: BigInt(high) });
        }
      }
      return { group, extents: bounds };
    } finally {
      await admin.disconnect();
    }
  }
}

/** A Kafka message's headers as text. */
export function textHeaders(message: KafkaMessage): Record<string, string> {
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

/** The dead letter of an input a consuming pipeline could not handle, naming where it was. */
export function inputDeadLetter(
  source: string,
  where: { topic: string; partition: number; offset: string },
  message: KafkaMessage,
  reason: string,
  stage: DeadLetter['stage'],
  code: string,
): DeadLetter {
  return {
    source,
    reason: `${where.topic}/${where.partition}@${where.offset}: ${reason}`,
    stage,
    code,
    ...(message.key ? { key: message.key.toString('hex') } : {}),
    // The bytes as they came (hex, as the dead-letter writer writes every byte string).
    payload: { key: message.key ?? null, value: message.value ?? null, headers: textHeaders(message) },
    input: where,
  };
}
