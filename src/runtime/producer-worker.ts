import { parentPort, workerData } from 'node:worker_threads';
import type { KafkaConfig } from './config';
import { worthRetrying } from './kafka';
import { RecordSetProducer, workerKafka, type WorkerReply, type WorkerRequest } from './transactional-producer';

/** The thread of a ProducerThread: one transactional producer of record sets per WorkerProducer (by handle). */
const port = parentPort!;
const reply = (message: WorkerReply) => port.postMessage(message);
const config = (workerData as { kafka: KafkaConfig }).kafka;
const kafka = workerKafka(config, reply);
const producers = new Map<number, RecordSetProducer>();

port.on('message', (request: WorkerRequest | { type: 'exit' }) => {
  if (request.type === 'exit') {
    void Promise.allSettled([...producers.values()].map((p) => p.close())).then(() => process.exit(0));
    return;
  }
  void handle(request);
});

async function handle(request: WorkerRequest): Promise<void> {
  try {
    if (request.type === 'init') {
      // A second init of the same handle (a new connect after a failure) starts a new producer, as in the main thread.
      await producers.get(request.handle)?.close().catch(() => undefined);
      const producer = new RecordSetProducer(kafka, request.transactionalId, config.encodedProduce);
      producers.set(request.handle, producer);
      await producer.init();
    } else if (request.type === 'commit') {
      const producer = producers.get(request.handle);
      if (!producer) throw new Error(`no producer of handle ${request.handle} in the producer thread (closed, or never initialised)`);
      // The record sets arrive as Uint8Arrays over the memory the main thread gave up; sealBatch takes those.
      await producer.commitTransaction(request.requests, request.offsets);
    } else {
      const producer = producers.get(request.handle);
      producers.delete(request.handle);
      await producer?.close();
    }
    reply({ type: 'done', id: request.id });
  } catch (error) {
    // Banyan's errors carry `code`, kafkajs's `type`.
    const e = error as { message?: string; name?: string; retriable?: boolean; type?: string; code?: string };
    const code = e.code ?? e.type;
    reply({
      type: 'failed',
      id: request.id,
      error: { message: e.message ?? String(error), name: e.name ?? 'Error', retriable: worthRetrying(error), ...(code ? { code } : {}) },
    });
  }
}
