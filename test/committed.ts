import type { Kafka } from 'kafkajs';
import { partitionKey, type Json } from '../src/core';
import { KafkaOffsetStore } from '../src/runtime/offsets';
import { waitFor } from './helpers';

/**
 * What a source has committed, with no waiting out a fixed time: a source writes its records and
 * its offset in one transaction, so once the offset names the last change there is to read, every
 * record of it is committed and nothing more is coming (then read the topic with readAll).
 */

/** The offset `sourceName` committed for `partition`, or undefined before its first commit. */
export async function committedOffset(kafka: Kafka, offsetsTopic: string, sourceName: string, partition: Record<string, Json>): Promise<Record<string, Json> | undefined> {
  const offsets = await new KafkaOffsetStore(kafka, offsetsTopic, 1).load(sourceName);
  return offsets.get(partitionKey(sourceName, partition));
}

/** Resolves once the committed offset satisfies `done`; fails naming the last offset seen. */
export async function untilCommitted(
  kafka: Kafka,
  offsetsTopic: string,
  sourceName: string,
  partition: Record<string, Json>,
  done: (offset: Record<string, Json>) => boolean,
): Promise<Record<string, Json>> {
  let last: Record<string, Json> | undefined;
  // The offsets topic may not exist before the first commit: waitFor counts that throw as not yet.
  return waitFor(async () => {
    last = await committedOffset(kafka, offsetsTopic, sourceName, partition);
    return last && done(last) ? last : undefined;
  }, () => `${sourceName} to commit the awaited offset (last committed: ${JSON.stringify(last)})`);
}
