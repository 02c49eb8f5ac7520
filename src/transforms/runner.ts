import type { Batch, Kafka, KafkaMessage } from 'kafkajs';
import { BadRecordError, errorMessage, partitionKey, type OffsetStore, type DeadLetter, type Json, type SourceRecord, type Transform, type TransformInput, type TransformResult } from '../core';
import { AvroDecoder, type AvroEncoder } from '../runtime/avro';
import { ConsumingPipeline, inputDeadLetter, textHeaders, type BatchControls, type ConsumingPipelineOptions, type OwnedPartition } from '../runtime/consuming-pipeline';
import { worthRetrying } from '../runtime/kafka';
import type { Logger } from '../runtime/logger';
import { RecordOutput } from '../runtime/record-output';
import type { RunnerKafka } from '../runtime/source-runner';
import { PRODUCER_FENCED, type TransactionalProducer } from '../runtime/transactional-producer';

export type TransformRunnerOptions = ConsumingPipelineOptions;

/** One input partition this instance owns, with its producer (whose init fenced the previous owner). */
interface ProducingPartition extends OwnedPartition {
  producer: TransactionalProducer;
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
export class TransformRunner extends ConsumingPipeline<ProducingPartition> {
  readonly kind = 'transform';
  private readonly output: RecordOutput;
  /** Ends when the batch that mapped last has done its CPU part (see handle). */
  private cpu: Promise<void> = Promise.resolve();

  constructor(
    private readonly transform: Transform,
    kafka: Kafka,
    private readonly runnerKafka: RunnerKafka,
    encoder: AvroEncoder,
    private readonly decoder: AvroDecoder,
    /** Where each input partition's next offset is kept, written in the batch's transaction (see acquire()). */
    private readonly offsets: OffsetStore,
    logger: Logger,
    options: TransformRunnerOptions,
  ) {
    super(kafka, logger, options, 'transform');
    this.output = new RecordOutput(encoder, (specs) => runnerKafka.ensureTopics(specs), options);
  }

  protected extraDetails(): Record<string, Json> {
    return {};
  }

  /** The transactional id of one input partition. */
  transactionalId(topic: string, partition: number): string {
    return `${this.options.clientId}.transform.${this.options.name}.${topic}.${partition}`;
  }

  /** An input topic its source has not written yet is made as the source would make it, so the transform can join its group before the first change. */
  protected async prepare(): Promise<void> {
    await Promise.all([
      this.output.ensureDeadLetterTopic(),
      this.output.ensureTopics(this.options.topics),
      this.output.knows(this.offsets.topic) ? undefined : this.offsets.ensureTopic().then((partitions) => this.output.knowTopic(this.offsets.topic, partitions)),
    ]);
  }

  protected async release(partitions: ProducingPartition[]): Promise<void> {
    // An init still under way is closed too (it would otherwise retry as long as Kafka is away).
    await Promise.all(partitions.map((p) => p.producer.close().catch(() => undefined)));
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
  protected acquire(partitions: Array<{ topic: string; partition: number }>): ProducingPartition[] {
    const taken = partitions.map(({ topic, partition }): ProducingPartition => {
      const producer = this.runnerKafka.producer(this.transactionalId(topic, partition));
      return { topic, partition, producer, next: 0n, fenced: false, ready: Promise.resolve() };
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
    }
    return taken;
  }

  /** The name the offsets topic keys this transform's positions by (no source name has a colon). */
  private get offsetsName(): string {
    return `transform:${this.options.name}`;
  }

  protected async handle(batch: Batch, messages: KafkaMessage[], owned: ProducingPartition, controls: BatchControls): Promise<void> {
    // One batch at a time maps and encodes (the CPU part); its commit then overlaps the next batch's
    // mapping, rather than every commit waiting until all batches of the fetch are mapped.
    const endTurn = await this.cpuTurn();
    try {
      await this.mapAndCommit(batch, messages, owned, controls, endTurn);
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
    owned: ProducingPartition,
    controls: BatchControls,
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
        this.fence(owned, batch, controls, error);
        return;
      }
      // Whether the failed commit landed is unknown: the offset is read again after a new init.
      await this.forget(owned);
      throw this.failed(error);
    }
    await this.committed(batch, messages, dropped, controls);
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
    return inputDeadLetter(`transform:${this.options.name}`, where, message, errorMessage(error), stage, code);
  }
}
