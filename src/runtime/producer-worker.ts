import { parentPort } from 'node:worker_threads';
import type { Message, Producer } from 'kafkajs';
import {
  createTransactionalProducer,
  sendTransaction,
  workerKafka,
  type TopicMessages,
  type WorkerReply,
  type WorkerRequest,
} from './transactional-producer';

/** The producer thread of WorkerProducer: owns one transactional kafkajs producer. */
const port = parentPort!;
const reply = (message: WorkerReply) => port.postMessage(message);
let producer: Producer | undefined;

/** Buffers arrive as plain Uint8Arrays after the structured clone; kafkajs wants Buffers. */
function asBuffers(requests: TopicMessages[]): TopicMessages[] {
  const buffer = (v: Message['key']) => (v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v);
  return requests.map((request) =>
    request.map(({ topic, messages }) => ({
      topic,
      messages: messages.map((m) => ({ ...m, key: buffer(m.key), value: buffer(m.value) as Message['value'] })),
    })),
  );
}

port.on('message', (request: WorkerRequest) => {
  void handle(request);
});

async function handle(request: WorkerRequest): Promise<void> {
  const id = request.type === 'commit' ? request.id : 0;
  try {
    if (request.type === 'init') {
      producer = createTransactionalProducer(workerKafka(request.kafka, reply), request.transactionalId);
      await producer.connect();
      await (await producer.transaction()).abort();
    } else if (request.type === 'commit') {
      await sendTransaction(producer!, asBuffers(request.requests));
    } else {
      await producer?.disconnect();
      process.exit(0);
    }
    reply({ type: 'done', id });
  } catch (error) {
    const e = error as { message?: string; name?: string; retriable?: boolean; type?: string };
    reply({
      type: 'failed',
      id,
      error: { message: e.message ?? String(error), name: e.name ?? 'Error', retriable: e.retriable ?? false, ...(e.type ? { code: e.type } : {}) },
    });
  }
}
