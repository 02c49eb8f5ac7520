import { createRequire } from 'node:module';
import type { Message } from 'kafkajs';
import { sealBatch, type RecordSet } from './record-batch';

/**
 * Sends record sets that Banyan encoded itself (record-batch.ts) through a kafkajs producer.
 *
 * kafkajs is kept for everything but the bytes of the records: connections, metadata, the
 * transaction protocol (AddPartitionsToTxn, EndTxn, fencing), retries and produce responses. Each
 * record set travels through `sendBatch` as one placeholder message pinned to its partition; the
 * Produce request's `encode` is replaced, for requests made only of such placeholders, by one that
 * writes the finished record batches. Any other produce request is left to kafkajs untouched.
 *
 * kafkajs numbers batches by its placeholder count, so the sequence of each (producer, epoch,
 * partition) is kept here, by record count, and stays with a set across kafkajs's retries of the
 * same request. After a failed transaction the owner must start a new producer (a new epoch resets
 * sequences), since a set that may or may not have reached the broker leaves no safe next number.
 *
 * This reaches into kafkajs's internals, so it is a fork of one file of it: package.json pins the
 * release it was written for, a golden test (encoded-produce.spec.ts) checks its bytes against
 * kafkajs's own encoder, and `kafka.encodedProduce: false` sends through plain kafkajs instead.
 */

const require = createRequire(import.meta.url);
const ENCODED = Symbol.for('banyan.recordSet');
/** The kafkajs release whose Produce request module this was written against; package.json pins it. */
export const KAFKAJS_VERSION = '2.2.4';

interface PlaceholderMessage extends Message {
  [ENCODED]: AssignedSet;
}

interface AssignedSet extends RecordSet {
  assigned?: { producer: string; baseSequence: number };
}

interface ProduceArgs {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: { toString(): string } | string | number;
  producerEpoch?: number;
  topicData: Array<{ topic: string; partitions: Array<{ partition: number; messages: Array<Partial<PlaceholderMessage>> }> }>;
}

interface ProduceRequest {
  request: { encode: () => Promise<unknown> } & Record<string, unknown>;
  response: unknown;
}

type ProtocolFactory = (args: { version: number }) => (args: ProduceArgs) => ProduceRequest;

let installed = false;

/** Hooks the Produce request of kafkajs once per thread; fails clearly if kafkajs is not the expected release. */
export function installEncodedProduce(): void {
  if (installed) return;
  const version = (require('kafkajs/package.json') as { version: string }).version;
  const produce = require('kafkajs/src/protocol/requests/produce') as { protocol?: ProtocolFactory };
  if (version !== KAFKAJS_VERSION || typeof produce.protocol !== 'function') {
    throw new Error(
      `kafkajs ${version} is not the release Banyan's encoded produce path was written for (${KAFKAJS_VERSION}): install kafkajs ${KAFKAJS_VERSION}, or set kafka.encodedProduce: false`,
    );
  }
  const original = produce.protocol;
  produce.protocol = ({ version: apiVersion }) => {
    const build = original({ version: apiVersion });
    // Versions 3–7 share the request body below; older brokers have no transactions anyway.
    if (apiVersion < 3) return build;
    return (args) => {
      const built = build(args);
      if (!carriesRecordSets(args)) return built;
      return { ...built, request: { ...built.request, encode: async () => encodeProduceRequest(args) } };
    };
  };
  installed = true;
}

/** The kafkajs messages that carry `sets` (at most one per partition) through `sendBatch`: one placeholder per set. */
export function encodedMessages(sets: RecordSet[]): Array<{ topic: string; messages: Message[] }> {
  const byTopic = new Map<string, Message[]>();
  for (const set of sets) {
    let messages = byTopic.get(set.topic);
    if (!messages) byTopic.set(set.topic, (messages = []));
    messages.push({ value: null, partition: set.partition, [ENCODED]: set } as PlaceholderMessage);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

function carriesRecordSets(args: ProduceArgs): boolean {
  let encoded = 0;
  let plain = 0;
  for (const { partitions } of args.topicData) {
    for (const { messages } of partitions) {
      for (const m of messages) {
        if (m[ENCODED]) encoded++;
        else plain++;
      }
    }
  }
  if (encoded > 0 && plain > 0) throw new Error('a produce request mixes encoded record sets and plain messages');
  return encoded > 0;
}

/** Produce request v3–v7: transactional_id acks timeout [topic [partition record_set]]. */
function encodeProduceRequest(args: ProduceArgs): { buf: Buffer; offset: number; readonly buffer: Buffer } {
  const producerId = BigInt(String(args.producerId ?? -1));
  const producerEpoch = args.producerEpoch ?? 0;
  const transactional = args.transactionalId != null;
  const owner = args.transactionalId ?? `producer ${producerId}`;
  encodedRequests++;
  const topics = args.topicData.map(({ topic, partitions }) => ({
    topic: Buffer.from(topic),
    partitions: partitions.map(({ partition, messages }) => {
      if (messages.length !== 1) throw new Error(`${messages.length} record sets for ${topic}/${partition} in one request (one allowed)`);
      const set = messages[0]![ENCODED]!;
      const baseSequence = producerId < 0n ? -1 : sequences.baseSequence(set, owner, producerId, producerEpoch);
      return { partition, batch: sealBatch(set, { producerId, producerEpoch, baseSequence, transactional }) };
    }),
  }));
  const txId = args.transactionalId == null ? null : Buffer.from(args.transactionalId);
  let size = 2 + (txId?.length ?? 0) + 2 + 4 + 4;
  for (const t of topics) {
    size += 2 + t.topic.length + 4;
    for (const p of t.partitions) size += 4 + 4 + p.batch.length;
  }
  const buf = Buffer.allocUnsafe(size);
  let pos = buf.writeInt16BE(txId ? txId.length : -1, 0);
  if (txId) pos += txId.copy(buf, pos);
  pos = buf.writeInt16BE(args.acks, pos);
  pos = buf.writeInt32BE(args.timeout, pos);
  pos = buf.writeInt32BE(topics.length, pos);
  for (const t of topics) {
    pos = buf.writeInt16BE(t.topic.length, pos);
    pos += t.topic.copy(buf, pos);
    pos = buf.writeInt32BE(t.partitions.length, pos);
    for (const p of t.partitions) {
      pos = buf.writeInt32BE(p.partition, pos);
      pos = buf.writeInt32BE(p.batch.length, pos);
      pos += p.batch.copy(buf, pos);
    }
  }
  // kafkajs frames the body through its Encoder, which takes anything shaped like one.
  return { buf, offset: pos, get buffer() { return buf.subarray(0, pos); } };
}

/**
 * The next sequence of each partition, for the current epoch of each transactional id (of each
 * producer id, for a producer without one). A new epoch or producer id fences the older one at the
 * broker, so the older one's numbers are forgotten as soon as the newer one sends.
 */
export class SequenceNumbers {
  private readonly owners = new Map<string, { producerId: bigint; producerEpoch: number; next: Map<string, number> }>();

  /** The base sequence of `set`, sent by `owner` as (producerId, producerEpoch). */
  baseSequence(set: RecordSet, owner: string, producerId: bigint, producerEpoch: number): number {
    const assigned = set as AssignedSet;
    const producer = `${producerId}:${producerEpoch}`;
    // A retried request sends the same batch again: it keeps its number, and the broker drops a duplicate.
    if (assigned.assigned?.producer === producer) return assigned.assigned.baseSequence;
    let current = this.owners.get(owner);
    if (!current || isNewer(producerId, producerEpoch, current)) {
      current = { producerId, producerEpoch, next: new Map() };
      this.owners.set(owner, current);
    } else if (current.producerId !== producerId || current.producerEpoch !== producerEpoch) {
      // A fenced producer still sending: the broker refuses its epoch before it looks at the
      // number, so any number does, and the newer producer's numbers stay untouched.
      return 0;
    }
    const partition = `${set.topic}:${set.partition}`;
    const baseSequence = current.next.get(partition) ?? 0;
    current.next.set(partition, nextSequence(baseSequence, set.count));
    assigned.assigned = { producer, baseSequence };
    return baseSequence;
  }

  /** Partitions with a next sequence, over every owner: what this keeps in memory. */
  get size(): number {
    let size = 0;
    for (const { next } of this.owners.values()) size += next.size;
    return size;
  }
}

/** Brokers hand out producer ids in increasing order, and a producer id's epochs only grow. */
function isNewer(producerId: bigint, producerEpoch: number, than: { producerId: bigint; producerEpoch: number }): boolean {
  return producerId > than.producerId || (producerId === than.producerId && producerEpoch > than.producerEpoch);
}

const INT32_MAX = 2 ** 31 - 1;

/** Sequences wrap to 0 after the largest int32, as in Kafka's DefaultRecordBatch.incrementSequence. */
export function nextSequence(baseSequence: number, count: number): number {
  return baseSequence > INT32_MAX - count ? count - (INT32_MAX - baseSequence) - 1 : baseSequence + count;
}

const sequences = new SequenceNumbers();
let encodedRequests = 0;

/** Produce requests this thread wrote itself (not kafkajs): shows which path records took. */
export function encodedRequestCount(): number {
  return encodedRequests;
}
