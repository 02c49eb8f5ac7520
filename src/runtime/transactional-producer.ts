import { Worker } from 'node:worker_threads';
import { Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';
import { BanyanError } from '../core';
import type { BanyanConfig } from './config';
import { createKafka } from './kafka';
import type { Logger } from './logger';

export type TopicMessages = Array<{ topic: string; messages: Message[] }>;

/** One transactional id's producer: a source's records, dead letters and offsets go through it. */
export interface TransactionalProducer {
  /** Initialises the transactional id: fences an older instance and aborts its open transaction. */
  init(): Promise<void>;
  /** Sends the requests in one transaction and commits it; on failure it aborts and throws. */
  commitTransaction(requests: TopicMessages[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * The producer settings. A transaction begun right after a commit meets CONCURRENT_TRANSACTIONS
 * until the markers are written; kafkajs's default 300 ms first retry made every transaction cost
 * ~110 ms, 20 ms brings it to ~30 ms (measured on the local stack). kafkajs's exactly-once needs
 * unbounded retries of retriable errors: a broker that stays away keeps the source waiting, as a
 * Java producer would.
 */
export function createTransactionalProducer(kafka: Kafka, transactionalId: string): Producer {
  return kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    retry: { initialRetryTime: 20, maxRetryTime: 10_000, retries: Number.MAX_SAFE_INTEGER },
    createPartitioner: Partitioners.DefaultPartitioner,
  });
}

export async function sendTransaction(producer: Producer, requests: TopicMessages[]): Promise<void> {
  const tx = await producer.transaction();
  try {
    for (const topicMessages of requests) await tx.sendBatch({ topicMessages });
    await tx.commit();
  } catch (error) {
    await tx.abort().catch(() => undefined);
    throw error;
  }
}

/** In the calling thread. */
export class InProcessProducer implements TransactionalProducer {
  private readonly producer: Producer;

  constructor(kafka: Kafka, transactionalId: string) {
    this.producer = createTransactionalProducer(kafka, transactionalId);
  }

  async init(): Promise<void> {
    await this.producer.connect();
    await (await this.producer.transaction()).abort();
  }

  commitTransaction(requests: TopicMessages[]): Promise<void> {
    return sendTransaction(this.producer, requests);
  }

  async close(): Promise<void> {
    await this.producer.disconnect();
  }
}

/** What the worker is told and answers; see producer-worker.ts. */
export type WorkerRequest =
  | { type: 'init'; kafka: BanyanConfig['kafka']; transactionalId: string }
  | { type: 'commit'; id: number; requests: TopicMessages[] }
  | { type: 'close' };
export type WorkerReply =
  | { type: 'done'; id: number }
  | { type: 'failed'; id: number; error: { message: string; name: string; retriable: boolean; code?: string } }
  | { type: 'log'; level: 'error' | 'warn' | 'info' | 'debug'; entry: Record<string, unknown>; message: string };

/**
 * In a worker thread, so that kafkajs's encoding of produce requests (the largest single cost
 * per record) runs on the second core while this thread reads and converts the next batch.
 */
export class WorkerProducer implements TransactionalProducer {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();

  constructor(
    private readonly kafka: BanyanConfig['kafka'],
    private readonly transactionalId: string,
    private readonly logger: Logger,
  ) {}

  async init(): Promise<void> {
    const worker = new Worker(new URL('./producer-worker.mjs', import.meta.url));
    this.worker = worker;
    worker.on('message', (reply: WorkerReply) => this.onReply(reply));
    worker.on('error', (error) => this.failAll(error));
    worker.on('exit', (code) => this.failAll(new Error(`the producer thread exited with code ${code}`)));
    await this.call({ type: 'init', kafka: this.kafka, transactionalId: this.transactionalId }, 0);
  }

  commitTransaction(requests: TopicMessages[]): Promise<void> {
    return this.call({ type: 'commit', id: this.nextId++, requests }, this.nextId - 1);
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.worker = undefined;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.postMessage({ type: 'close' } satisfies WorkerRequest);
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    await worker.terminate();
  }

  private call(request: WorkerRequest, id: number): Promise<void> {
    const worker = this.worker;
    if (!worker) return Promise.reject(new Error('the producer thread is not running'));
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage(request);
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

  private failAll(error: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}

/** Used by the worker: the same client settings as the main thread, logging back to it. */
export function workerKafka(config: BanyanConfig['kafka'], log: (reply: WorkerReply) => void): Kafka {
  const forward = (level: 'error' | 'warn' | 'info' | 'debug') => (entry: Record<string, unknown>, message: string) =>
    log({ type: 'log', level, entry, message });
  const logger = { error: forward('error'), warn: forward('warn'), info: forward('info'), debug: forward('debug'), child: () => logger };
  return createKafka(config, logger as unknown as Logger);
}
