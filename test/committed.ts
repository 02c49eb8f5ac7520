import type { Kafka, KafkaMessage } from 'kafkajs';
import { partitionKey, type Json } from '../src/core';
import { readToEnd } from '../src/runtime/kafka';
import { KafkaOffsetStore } from '../src/runtime/offsets';

/**
 * Reading what a source has committed, with no waiting out a fixed time: a source writes its records
 * and its offset in one transaction, so once the offset names the last change there is to read,
 * every record of it is committed and nothing more is coming.
 */

/** The offset `sourceName` committed for `partition`, or undefined before its first commit. */
export async function committedOffset(kafka: Kafka, offsetsTopic: string, sourceName: string, partition: Record<string, Json>): Promise<Record<string, Json> | undefined> {
  const offsets = await new KafkaOffsetStore(kafka, offsetsTopic, 1).load(sourceName);
  return offsets.get(partitionKey(sourceName, partition));
}

/** Resolves once the committed offset satisfies `done`; fails after `timeoutMs` naming the last offset seen. */
export async function untilCommitted(
  kafka: Kafka,
  offsetsTopic: string,
  sourceName: string,
  partition: Record<string, Json>,
  done: (offset: Record<string, Json>) => boolean,
  timeoutMs = 30_000,
): Promise<Record<string, Json>> {
  const deadline = Date.now() + timeoutMs;
  let last: Record<string, Json> | undefined;
  for (;;) {
    // The offsets topic may not exist before the first commit.
    last = await committedOffset(kafka, offsetsTopic, sourceName, partition).catch(() => last);
    if (last && done(last)) return last;
    if (Date.now() > deadline) throw new Error(`${sourceName} did not commit the awaited offset within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Every committed message of `topic`, read to the end of each partition. Call it when no transaction
 * on the topic is open (the writer committed its last offset or was stopped), or it fails on its timeout.
 */
export async function readCommitted(kafka: Kafka, topic: string, timeoutMs = 30_000): Promise<KafkaMessage[]> {
  const messages: KafkaMessage[] = [];
  await readToEnd(kafka, topic, (message) => void messages.push(message), timeoutMs);
  return messages;
}
