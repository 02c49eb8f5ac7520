import { Worker } from 'node:worker_threads';
import { Partitioners, type Kafka, type Message, type Producer, type ProducerConfig } from 'kafkajs';
import { BanyanError } from '../core';
import type { KafkaConfig } from './config';
import { encodedMessages, installEncodedProduce } from './encoded-produce';
import { createKafka } from './kafka';
import type { Logger } from './logger';
import { readRecords, type RecordSet } from './record-batch';

/**
 * The consumer offsets a transaction commits with its records (consume-transform-produce): the
 * next offset to read of each input partition, for the consumer group. kafkajs follows the first
 * exactly-once model (no group generation in sendOffsets, KIP-447), so the caller fences zombies
 * by its choice of transactional id (see docs/transforms.md).
 */
export interface ConsumerOffsets {
  consumerGroupId: string;
  topics: Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>;
}

/**
 * One transactional id's producer: a pipeline's records, dead letters and offsets go through it.
 * Sources keep their offsets as records of the batch; transforms and sinks commit their consumer
 * offsets with `offsets`.
 */
export interface TransactionalProducer {
  /** Initialises the transactional id: fences an older instance and aborts its open transaction. */
  init(): Promise<void>;
  /**
   * Sends the requests (record sets, see BatchBuilder) and the consumer offsets, if any, in one
   * transaction and commits it; on failure it aborts and throws.
   */
  commitTransaction(requests: RecordSet[][], offsets?: ConsumerOffsets): Promise<void>;
  close(): Promise<void>;
}

/**
 * The producer settings. A transaction begun right after a commit meets CONCURRENT_TRANSACTIONS
 * until the markers are written; kafkajs's default 300 ms first retry made every transaction cost
 * ~110 ms, 20 ms brings it to ~30 ms (measured on the local stack). kafkajs's exactly-once needs
 * unbounded retries of retriable errors: a broker that stays away keeps the source waiting, as a
 * Java producer would.
 */
export function createTransactionalProducer(kafka: Kafka, transactionalId: string, overrides: Partial<ProducerConfig> = {}): Producer {
  return kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    retry: { initialRetryTime: 20, maxRetryTime: 10_000, retries: Number.MAX_SAFE_INTEGER },
    createPartitioner: Partitioners.DefaultPartitioner,
    ...overrides,
  });
}

/** The code of the error a fenced producer fails with, from then on: it must not write again. */
export const PRODUCER_FENCED = 'PRODUCER_FENCED';

/**
 * Whether a newer writer took the transactional id: kafkajs speaks the protocol versions in which
 * the broker answers a fenced epoch with INVALID_PRODUCER_EPOCH, and may wrap it (cause,
 * originalError) when it gave up retrying.
 */
export function isFencing(error: unknown, depth = 0): boolean {
  const e = error as { type?: unknown; code?: unknown; cause?: unknown; originalError?: unknown } | null | undefined;
  if (!e || typeof e !== 'object' || depth > 5) return false;
  if (e.type === 'INVALID_PRODUCER_EPOCH' || e.type === PRODUCER_FENCED || e.code === PRODUCER_FENCED) return true;
  return isFencing(e.cause, depth + 1) || isFencing(e.originalError, depth + 1);
}

/**
 * The kafkajs messages of `sets`, for kafkajs's own encoder (`kafka.encodedProduce: false`): the
 * same records, partitions, timestamps and headers the encoded path sends.
 */
function plainMessages(sets: RecordSet[]): Array<{ topic: string; messages: Message[] }> {
  return sets.map((set) => ({
    topic: set.topic,
    messages: readRecords(set).map((r) => ({ key: r.key, value: r.value, headers: r.headers, timestamp: String(r.timestamp), partition: set.partition })),
  }));
}

/**
 * A transactional producer of encoded record sets. After a failed transaction it starts over with
 * a new producer: initialising the transactional id again bumps the epoch, which aborts whatever
 * the failed one left open and restarts the batch sequences (see encoded-produce.ts). Except when
 * it was fenced: then a newer instance owns the transactional id, and starting over would fence
 * that one in turn, so both would write; a fenced producer refuses every later transaction.
 * With `encoded` false the sets are read back into messages that kafkajs encodes itself.
 */
export class RecordSetProducer implements TransactionalProducer {
  private producer: Producer | undefined;
  private connecting: Producer | undefined;
  private closed = false;
  private fenced: BanyanError | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly transactionalId: string,
    private readonly encoded = true,
  ) {
    if (encoded) installEncodedProduce();
  }

  async init(): Promise<void> {
    const producer = createTransactionalProducer(this.kafka, this.transactionalId);
    // kafkajs retries a connect while Kafka is away: close() must reach this one too.
    this.connecting = producer;
    try {
      await producer.connect();
      await (await producer.transaction()).abort();
    } finally {
      if (this.connecting === producer) this.connecting = undefined;
    }
    if (this.closed) {
      await producer.disconnect();
      throw new Error(`the producer of transactional id "${this.transactionalId}" was closed while it connected`);
    }
    this.producer = producer;
  }

  async commitTransaction(requests: RecordSet[][], offsets?: ConsumerOffsets): Promise<void> {
    if (this.fenced) throw this.fenced;
    if (!this.producer) await this.init();
    try {
      await this.send(this.producer!, requests, offsets);
    } catch (error) {
      const failed = this.producer;
      this.producer = undefined;
      await failed?.disconnect().catch(() => undefined);
      if (!isFencing(error)) throw error;
      this.fenced = new BanyanError(
        `fenced: another instance initialised transactional id "${this.transactionalId}"; this one writes no more (${(error as Error).message})`,
        { retriable: false, stage: 'sending', code: PRODUCER_FENCED, cause: error },
      );
      throw this.fenced;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.connecting?.disconnect().catch(() => undefined);
    await this.producer?.disconnect();
    this.producer = undefined;
  }

  /** One request of record sets per sendBatch, then the consumer offsets, in one transaction. */
  private async send(producer: Producer, requests: RecordSet[][], offsets: ConsumerOffsets | undefined): Promise<void> {
    const tx = await producer.transaction();
    try {
      for (const sets of requests) await tx.sendBatch({ topicMessages: this.encoded ? encodedMessages(sets) : plainMessages(sets) });
      if (offsets) await tx.sendOffsets(offsets);
      await tx.commit();
    } catch (error) {
      await tx.abort().catch(() => undefined);
      throw error;
    }
  }
}

/**
 * What the worker is told and answers; see producer-worker.ts. Every request names its producer by
 * handle (one per WorkerProducer), so closing an old producer of a transactional id never closes
 * a newer one of the same id.
 */
export type WorkerRequest =
  | { type: 'init'; id: number; handle: number; transactionalId: string }
  | { type: 'commit'; id: number; handle: number; requests: RecordSet[][]; offsets?: ConsumerOffsets }
  | { type: 'close'; id: number; handle: number };
export type WorkerReply =
  | { type: 'done'; id: number }
  | { type: 'failed'; id: number; error: { message: string; name: string; retriable: boolean; code?: string } }
  | { type: 'log'; level: 'error' | 'warn' | 'info' | 'debug'; entry: Record<string, unknown>; message: string };

/**
 * One worker thread that sends for many transactional ids (every source, transform partition and
 * sink of a process), so that sending, the transaction protocol and the batch checksums run on
 * the second core while the main thread reads and encodes the next batches. The thread starts with
 * the first producer and ends when the last one is closed.
 */
export class ProducerThread {
  private worker: Worker | undefined;
  private nextId = 1;
  private nextHandle = 1;
  private users = 0;
  /** Requests waiting for their answer, with the worker they were sent to (a closing one may still answer). */
  private readonly pending = new Map<number, { worker: Worker; resolve: () => void; reject: (error: Error) => void }>();

  constructor(
    private readonly kafka: KafkaConfig,
    private readonly logger: Logger,
  ) {}

  /** A producer of `transactionalId` that sends through this thread. */
  producer(transactionalId: string): TransactionalProducer {
    return new WorkerProducer(this, transactionalId, this.nextHandle++);
  }

  /** @internal A producer starts using the thread (its init). */
  acquire(): void {
    this.users++;
    if (this.worker) return;
    const worker = new Worker(new URL('./producer-worker.mjs', import.meta.url), { workerData: { kafka: this.kafka } });
    this.worker = worker;
    worker.on('message', (reply: WorkerReply) => this.onReply(reply));
    worker.on('error', (error) => this.failAll(worker, error));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = undefined;
      this.failAll(worker, new Error(`the producer thread exited with code ${code}`));
    });
  }

  /** @internal A producer is done with the thread; the last one ends it. */
  async release(): Promise<void> {
    this.users = Math.max(0, this.users - 1);
    const worker = this.worker;
    if (this.users > 0 || !worker) return;
    this.worker = undefined;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.postMessage({ type: 'exit' });
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    await worker.terminate();
  }

  /** @internal Sends a request and resolves with its answer; `transfer` moves memory to the thread. */
  call(request: WorkerRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never, transfer: ArrayBuffer[] = []): Promise<void> {
    const worker = this.worker;
    if (!worker) return Promise.reject(new Error('the producer thread is not running'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { worker, resolve, reject });
      worker.postMessage({ ...request, id } as WorkerRequest, transfer);
    });
  }

  private onReply(reply: WorkerReply): void {
    if (reply.type === 'log') {
      this.logger[reply.level](reply.entry, reply.message);
      return;
    }
    const waiter = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    if (reply.type === 'done') waiter?.resolve();
    else {
      waiter?.reject(
        new BanyanError(`Kafka transaction failed: ${reply.error.message}`, {
          retriable: reply.error.retriable,
          stage: 'sending',
          ...(reply.error.code ? { code: reply.error.code } : {}),
        }),
      );
    }
  }

  /** Fails the requests sent to `worker` (one that ended); those of a newer worker wait on. */
  private failAll(worker: Worker, error: Error): void {
    for (const [id, waiter] of this.pending) {
      if (waiter.worker !== worker) continue;
      this.pending.delete(id);
      waiter.reject(error);
    }
  }
}

/** A transactional id whose producer lives in a ProducerThread. */
class WorkerProducer implements TransactionalProducer {
  private acquired = false;

  constructor(
    private readonly thread: ProducerThread,
    private readonly transactionalId: string,
    private readonly handle: number,
  ) {}

  async init(): Promise<void> {
    if (!this.acquired) {
      this.thread.acquire();
      this.acquired = true;
    }
    await this.thread.call({ type: 'init', handle: this.handle, transactionalId: this.transactionalId });
  }

  /** The record sets' memory moves to the worker (no copy): they are unusable here afterwards. */
  commitTransaction(requests: RecordSet[][], offsets?: ConsumerOffsets): Promise<void> {
    const memory = new Set<ArrayBuffer>();
    for (const sets of requests) for (const set of sets) memory.add(set.buffer.buffer as ArrayBuffer);
    return this.thread.call({ type: 'commit', handle: this.handle, requests, ...(offsets ? { offsets } : {}) }, [...memory]);
  }

  async close(): Promise<void> {
    if (!this.acquired) return;
    this.acquired = false;
    await this.thread.call({ type: 'close', handle: this.handle }).catch(() => undefined);
    await this.thread.release();
  }
}

/** Used by the worker: the same client settings as the main thread, logging back to it. */
export function workerKafka(config: KafkaConfig, log: (reply: WorkerReply) => void): Kafka {
  const forward = (level: 'error' | 'warn' | 'info' | 'debug') => (entry: Record<string, unknown>, message: string) =>
    log({ type: 'log', level, entry, message });
  const logger = { error: forward('error'), warn: forward('warn'), info: forward('info'), debug: forward('debug'), child: () => logger };
  return createKafka(config, logger as unknown as Logger);
}
