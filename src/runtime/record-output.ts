import {
  BadRecordError,
  errorMessage,
  type DeadLetter,
  type SourceRecord,
} from '../core';
import type { AvroEncoder, TransientEncoder } from './avro';
import { BatchBuilder } from './batch-builder';
import { deadLetterMessage, jsonSafe } from './dead-letters';
import type { TopicSpec } from './kafka';
import type { RecordSet } from './record-batch';

interface RecordEncoders {
  schema: object;
  key: TransientEncoder;
  value: TransientEncoder;
  /** For records that come already encoded (SourceRecord.encoded). */
  frameKey: (body: Uint8Array) => Buffer;
  frameValue: (body: Uint8Array) => Buffer;
}

/** One transaction's records, encoded and ready for a TransactionalProducer. */
export interface PreparedBatch {
  /** Produce requests of about maxRequestBytes, each a record batch per partition. */
  requests: RecordSet[][];
  /** Records written (not dead-lettered). */
  records: number;
  deadLetters: DeadLetter[];
}

export interface RecordOutputOptions {
  deadLetterTopic: string;
  /** Partitions of the data topics the output creates. */
  topicPartitions: number;
  replicationFactor: number;
  /** The broker's message.max.bytes: a record that cannot fit in a batch this large goes to the dead-letter topic. */
  maxMessageBytes: number;
  /** Records of one batch are sent in requests of at most about this many bytes. */
  maxRequestBytes: number;
}

/**
 * The output half every pipeline shares (sources, transforms, sinks' dead letters): records are
 * encoded through the registry (once per topic and schema), cut into record batches per
 * partition, and a record that cannot be encoded or is too large for Kafka becomes a dead letter,
 * with the rest of its change (SourceRecord.group). Topics are created on first use.
 */
export class RecordOutput {
  /** Partitions per topic, for the topics this output writes to. */
  private readonly partitions = new Map<string, number>();

  constructor(
    private readonly encoder: AvroEncoder,
    private readonly createTopics: (specs: TopicSpec[]) => Promise<Map<string, number>>,
    private readonly options: RecordOutputOptions,
  ) {}

  /** Creates the topics that are missing (the dead-letter topic with one partition, as Kafka Connect's). */
  async ensureTopics(topics: string[], numPartitions = this.options.topicPartitions, compacted = false): Promise<void> {
    const missing = topics.filter((t) => !this.partitions.has(t));
    if (missing.length === 0) return;
    const counts = await this.createTopics(missing.map((topic) => ({ topic, numPartitions, replicationFactor: this.options.replicationFactor, compacted })));
    for (const [topic, count] of counts) this.partitions.set(topic, count);
  }

  /** The dead-letter topic; made once. */
  ensureDeadLetterTopic(): Promise<void> {
    return this.ensureTopics([this.options.deadLetterTopic], 1);
  }

  /** Records a topic's partitions that something else created (the offsets topic). */
  knowTopic(topic: string, partitions: number): void {
    this.partitions.set(topic, partitions);
  }

  knows(topic: string): boolean {
    return this.partitions.has(topic);
  }

  /**
   * Encodes records, dead letters and `extra` messages (a source's offsets, written last) into
   * record batches. `from` names the pipeline in the dead letters it makes.
   */
  async prepare(
    from: string,
    input: { records: readonly SourceRecord[]; deadLetters: readonly DeadLetter[]; extra?: ReadonlyArray<{ topic: string; key: string; value: string }> },
  ): Promise<PreparedBatch> {
    const deadLetters = [...input.deadLetters];
    const builder = new BatchBuilder({
      maxMessageBytes: this.options.maxMessageBytes,
      maxSetBytes: this.options.maxRequestBytes,
      partitionsOf: (topic) => this.partitions.get(topic)!,
    });
    const encoders = new Map<string, RecordEncoders>();
    const now = Date.now();
    let records = 0;
    const all = input.records;
    for (let start = 0; start < all.length; ) {
      // The records of one change: adjacent records of one `group`, any other record alone.
      let end = start + 1;
      const first = all[start]!;
      if (first.group !== undefined) while (end < all.length && all[end]!.group === first.group) end++;
      const group = end - start === 1 ? undefined : all.slice(start, end);
      start = end;
      const ready: Array<{ record: SourceRecord; key?: Buffer; value?: Buffer | null; encoder?: RecordEncoders }> = group ? [] : NONE_READY;
      let failure: { at: number; error: unknown } | undefined;
      for (let at = 0; at < (group?.length ?? 1); at++) {
        const record = group ? group[at]! : first;
        // Outside the try: a topic Kafka cannot create fails the step (retried), it is no bad record.
        if (!this.partitions.has(record.topic)) await this.ensureTopics([record.topic]);
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
          if (!group) {
            // The common case: added at once (add refuses a record too large, as refusal would).
            builder.add(record.topic, key, value, record.headers, record.timestamp ?? now);
          } else {
            const refused = builder.refusal(key, value, record.headers, record.timestamp ?? now);
            if (refused) throw refused;
            // The encoders' output is overwritten by their next call, so a group's records wait as
            // copies; records that came encoded are framed again instead (their bodies stay valid).
            ready.push(encoded ? { record, encoder } : { record, key: Buffer.from(key), value: value && Buffer.from(value) });
          }
        } catch (error) {
          failure = { at, error };
          break;
        }
      }
      if (failure) {
        const { at: failed, error } = failure;
        if (!group) deadLetters.push(unencodable(from, first, error));
        else deadLetters.push(...group.map((record, at) => unencodable(from, record, error, { at, failed, of: group.length })));
        continue;
      }
      for (const { record, key, value, encoder } of ready) {
        if (!encoder) builder.add(record.topic, key!, value ?? null, record.headers, record.timestamp ?? now);
        else {
          const { encoded } = record;
          builder.add(record.topic, encoder.frameKey(encoded!.key), encoded!.value && encoder.frameValue(encoded!.value), record.headers, record.timestamp ?? now);
        }
      }
      records += group?.length ?? 1;
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
    for (const message of input.extra ?? []) builder.add(message.topic, message.key, message.value, undefined, now);
    return { requests: builder.requests(this.options.maxRequestBytes), records, deadLetters };
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
}

/** The copies a lone record never makes (it is added at once). */
const NONE_READY: never[] = [];

/**
 * The registry call failed for a reason of the registry's, not the schema's: no answer (the client
 * reports a network error as status 400), 5xx, 401/403. Only 409 (incompatible) and 422 (invalid)
 * refuse the schema itself.
 */
function registryFailed(error: unknown): boolean {
  const status = (error as { status?: unknown })?.status;
  return typeof status === 'number' && status !== 409 && status !== 422;
}

/** `group`: where the record stands in its change's records, and which of them could not be written. */
function unencodable(from: string, record: SourceRecord, error: unknown, group?: { at: number; failed: number; of: number }): DeadLetter {
  const cause = error instanceof BadRecordError ? error.message : `cannot encode for ${record.topic}: ${errorMessage(error)}`;
  const reason = group
    ? `${cause} (record ${group.failed + 1} of the ${group.of} records of one change, written all or none; this is record ${group.at + 1})`
    : cause;
  return {
    source: from,
    reason,
    stage: 'processing',
    code: (error instanceof BadRecordError ? error.code : undefined) ?? 'AVRO_ENCODE',
    key: JSON.stringify(record.key, jsonSafe),
    payload: { topic: record.topic, key: record.key, value: record.value, headers: record.headers },
    topic: record.topic,
    ...(record.input ? { input: record.input } : {}),
  };
}
