import { parentPort } from 'node:worker_threads';
import { worthRetrying } from './kafka';
import { RecordSetProducer, workerKafka, type WorkerReply, type WorkerRequest } from './transactional-producer';

/** The producer thread of WorkerProducer: owns one transactional producer of record sets. */
const port = parentPort!;
const reply = (message: WorkerReply) => port.postMessage(message);
let producer: RecordSetProducer | undefined;

port.on('message', (request: WorkerRequest) => {
  void handle(request);
});

async function handle(request: WorkerRequest): Promise<void> {
  const id = request.type === 'commit' ? request.id : 0;
  try {
    if (request.type === 'init') {
      producer = new RecordSetProducer(workerKafka(request.kafka, reply), request.transactionalId, request.kafka.encodedProduce);
      await producer.init();
    } else if (request.type === 'commit') {
      // The record sets arrive as Uint8Arrays over the memory the main thread gave up; sealBatch takes those.
      await producer!.commitTransaction(request.requests);
    } else {
      await producer?.close();
      process.exit(0);
    }
    reply({ type: 'done', id });
  } catch (error) {
    // Banyan's errors carry `code`, kafkajs's `type`.
    const e = error as { message?: string; name?: string; retriable?: boolean; type?: string; code?: string };
    const code = e.code ?? e.type;
    reply({
      type: 'failed',
      id,
      error: { message: e.message ?? String(error), name: e.name ?? 'Error', retriable: worthRetrying(error), ...(code ? { code } : {}) },
    });
  }
}
