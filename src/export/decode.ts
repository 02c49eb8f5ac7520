import type { Batch, KafkaMessage } from 'kafkajs';
import { errorMessage, type DeadLetter } from '../core';
import type { DomainDecoder } from '../domain/decoder';
import type { DomainEvent } from '../domain/event';
import { inputDeadLetter } from '../runtime/consuming-pipeline';
import { worthRetrying } from '../runtime/kafka';

/** A batch's domain events as both sinks take them in. */
export interface DecodedBatch {
  /** The events, each with its index in the batch and its message. */
  events: Array<{ index: number; message: KafkaMessage; event: DomainEvent }>;
  /** What could not be decoded, as dead letters naming where it was (UNDECODABLE). */
  letters: Array<{ index: number; letter: DeadLetter }>;
  /** The tombstones after deleted events: skipped. */
  tombstones: number;
}

/**
 * Decodes a batch of domain events. Bytes that are no event of theirs become dead letters; an
 * error worth retrying (the registry away) is thrown, and the batch is tried again.
 */
export async function decodeBatch(decoder: DomainDecoder, source: string, batch: Batch, messages: KafkaMessage[]): Promise<DecodedBatch> {
  const decoded: DecodedBatch = { events: [], letters: [], tombstones: 0 };
  for (let index = 0; index < messages.length; index++) {
    const message = messages[index]!;
    if (!message.value) {
      decoded.tombstones++;
      continue;
    }
    try {
      decoded.events.push({ index, message, event: await decoder.event(batch.topic, message.value) });
    } catch (error) {
      if (worthRetrying(error)) throw error;
      const where = { topic: batch.topic, partition: batch.partition, offset: message.offset };
      decoded.letters.push({ index, letter: inputDeadLetter(source, where, message, errorMessage(error), 'receiving', 'UNDECODABLE') });
    }
  }
  return decoded;
}
