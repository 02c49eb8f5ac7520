import { BadRecordError } from '../core';
import { BATCH_HEADER_BYTES, partitionForKey, RecordSetWriter, type Bytes, type RecordSet } from './record-batch';

export interface BatchBuilderOptions {
  /** The broker's message.max.bytes: a record batch, header included, may not be larger. */
  maxMessageBytes: number;
  /** Records of one partition are cut into sets of at most this many bytes (and at most maxMessageBytes). */
  maxSetBytes: number;
  /** Partitions of each topic the builder is given records for. */
  partitionsOf: (topic: string) => number;
}

/**
 * One transaction's records, encoded into a record set per topic partition as they come, in
 * order. Keys pick partitions as Kafka's default partitioner does (murmur2), so a key lands where
 * a Java or kafkajs producer would have put it.
 */
export class BatchBuilder {
  private readonly writers: RecordSetWriter[] = [];
  /** The open writer of each topic's partitions. */
  private readonly current = new Map<string, Array<RecordSetWriter | undefined>>();
  private readonly roundRobin = new Map<string, number>();
  private readonly maxSetBytes: number;
  /** Never written to (room 0): only measures records. */
  private readonly measure = new RecordSetWriter('', 0, 0);

  constructor(private readonly options: BatchBuilderOptions) {
    this.maxSetBytes = Math.min(options.maxSetBytes, options.maxMessageBytes);
  }

  /** Appends a record; one that cannot fit in a batch the broker accepts throws a BadRecordError. */
  add(topic: string, key: Bytes, value: Bytes, headers: Readonly<Record<string, string>> | undefined, timestamp: number): void {
    const partition = this.partition(topic, key);
    let open = this.current.get(topic);
    if (!open) this.current.set(topic, (open = []));
    const writer = open[partition] ?? this.open(topic, partition);
    const room = this.maxSetBytes - writer.size;
    const size = writer.append(key, value, headers, timestamp, room);
    if (size >= 0) return;
    const refused = this.refusal(key, value, headers, timestamp);
    if (refused) throw refused;
    this.open(topic, partition).append(key, value, headers, timestamp);
  }

  /** Why `add` would refuse this record (it fits in no batch the broker accepts), or undefined if it would take it. */
  refusal(key: Bytes, value: Bytes, headers: Readonly<Record<string, string>> | undefined, timestamp: number): BadRecordError | undefined {
    // Measured as the first record of a fresh batch, where add puts a record that does not fit the open one.
    const size = -this.measure.append(key, value, headers, timestamp, 0);
    if (size + BATCH_HEADER_BYTES <= this.maxSetBytes) return undefined;
    return new BadRecordError(`record of ${size} bytes does not fit in a record batch of kafka.maxMessageBytes (${this.options.maxMessageBytes})`, {
      stage: 'sending',
      code: 'MESSAGE_TOO_LARGE',
    });
  }

  /**
   * The sets grouped into produce requests of about `maxRequestBytes`, at most one set per
   * partition in a request (the broker takes one batch per partition) and each partition's sets
   * in order.
   */
  requests(maxRequestBytes: number): RecordSet[][] {
    const requests: RecordSet[][] = [];
    let request: RecordSet[] = [];
    let bytes = 0;
    let partitions = new Set<string>();
    for (const writer of this.writers) {
      if (writer.count === 0) continue;
      const id = `${writer.topic}\u0000${writer.partition}`;
      if (request.length > 0 && (partitions.has(id) || bytes + writer.size > maxRequestBytes)) {
        requests.push(request);
        request = [];
        bytes = 0;
        partitions = new Set();
      }
      request.push(writer.finish());
      bytes += writer.size;
      partitions.add(id);
    }
    if (request.length) requests.push(request);
    return requests;
  }

  private open(topic: string, partition: number): RecordSetWriter {
    const writer = new RecordSetWriter(topic, partition);
    this.writers.push(writer);
    this.current.get(topic)![partition] = writer;
    return writer;
  }

  private partition(topic: string, key: Bytes): number {
    const partitions = this.options.partitionsOf(topic);
    if (key !== null) return partitionForKey(typeof key === 'string' ? Buffer.from(key) : key, partitions);
    const next = (this.roundRobin.get(topic) ?? -1) + 1;
    this.roundRobin.set(topic, next);
    return next % partitions;
  }
}
