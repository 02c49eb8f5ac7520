import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type KafkaConfig, type KafkaMessage, type LogEntry, type SASLOptions } from 'kafkajs';
import type { KafkaConfig as KafkaSettings } from './config';
import type { Logger } from './logger';
import { sleep } from '../core/time';

export const KafkaClient = Symbol.for('banyan.KafkaClient');
export type KafkaClient = Kafka;

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** A kafkajs client whose own log lines go through pino (and so through its redaction). */
export function createKafka(config: KafkaSettings, logger: Logger, overrides: Partial<KafkaConfig> = {}): Kafka {
  const log = logger.child({ component: 'kafkajs' });
  const sasl = config.sasl
    ? ({ mechanism: config.sasl.mechanism, username: config.sasl.username, password: config.sasl.password } as SASLOptions)
    : undefined;
  return new Kafka({
    clientId: config.clientId,
    brokers: config.brokers,
    ssl: config.ssl,
    ...(sasl ? { sasl } : {}),
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        // kafkajs logs every protocol error it answers by retrying (CONCURRENT_TRANSACTIONS after
        // each commit, a coordinator still loading) at error level. What it gives up on is thrown
        // and logged by Banyan with context, so these lines are demoted to debug.
        const retried = message.startsWith('Response ') || typeof (rest as { retryCount?: unknown }).retryCount === 'number';
        log[retried ? 'debug' : (LEVELS[level] ?? 'info')](rest, message);
      },
    ...overrides,
  });
}

/** kafkajs's connection errors: the broker could not be reached or went away. */
const CONNECTION_ERRORS = new Set(['KafkaJSConnectionError', 'KafkaJSConnectionClosedError', 'KafkaJSRequestTimeoutError', 'KafkaJSBrokerNotFound', 'KafkaJSNoBrokerAvailableError']);

/**
 * Whether a failure is worth trying again later: it says so (`retriable`: a BanyanError, a kafkajs
 * error), or it is a kafkajs connection error, or kafkajs gave up retrying one that was
 * (KafkaJSNumberOfRetriesExceeded, and a KafkaJSNonRetriableError around it, are `retriable: false`
 * even when Kafka was only away). Anything else (a missing table, a refused login, an unknown
 * error) is not.
 */
export function worthRetrying(error: unknown, depth = 0): boolean {
  const e = error as { name?: unknown; retriable?: unknown; cause?: unknown } | null | undefined;
  if (!e || typeof e !== 'object' || depth > 10) return false;
  if (e.retriable === true || CONNECTION_ERRORS.has(String(e.name))) return true;
  if (e.name === 'KafkaJSNumberOfRetriesExceeded' || e.name === 'KafkaJSNonRetriableError') return worthRetrying(e.cause, depth + 1);
  return false;
}

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  replicationFactor: number;
  compacted?: boolean;
  /** More topic settings for its creation (e.g. retention.ms: -1 for an audit kept forever). */
  configEntries?: Array<{ name: string; value: string }>;
}

/**
 * Creates the topics that do not exist yet (an existing topic is left as it is) and returns the
 * number of partitions of each.
 */
export async function ensureTopics(kafka: Kafka, specs: TopicSpec[]): Promise<Map<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    // Listing again after a retriable answer creates only what is still missing.
    return await whenLed(async () => {
      const existing = new Set(await admin.listTopics());
      const missing = specs.filter((s) => !existing.has(s.topic));
      if (missing.length > 0) {
        await admin
          .createTopics({
            waitForLeaders: true,
            topics: missing.map((s) => ({
              topic: s.topic,
              numPartitions: s.numPartitions,
              replicationFactor: s.replicationFactor,
              configEntries: [...(s.compacted ? [{ name: 'cleanup.policy', value: 'compact' }] : []), ...(s.configEntries ?? [])],
            })),
          })
          .catch((error: unknown) => {
            // Another instance may have created it between our list and create.
            if ((error as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw error;
          });
      }
      const { topics } = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.topic) });
      return new Map(topics.map((t) => [t.name, t.partitions.length]));
    });
  } finally {
    await admin.disconnect();
  }
}

/**
 * A topic created a moment ago may answer UNKNOWN_TOPIC_OR_PARTITION or NOT_LEADER_FOR_PARTITION
 * until its metadata and leaders are known everywhere (seen under load in CI, also from inside
 * kafkajs's createTopics, whose wait for leaders retries only LEADER_NOT_AVAILABLE); such
 * retriable answers are retried for a few seconds.
 */
async function whenLed<T>(request: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request();
    } catch (error) {
      if (!(error as { retriable?: boolean }).retriable || attempt >= 20) throw error;
      await sleep(250);
    }
  }
}

/** The end offset of each partition of `topic` that holds anything (a topic just made may still be electing leaders). */
export async function endOffsets(kafka: Kafka, topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = new Map<number, bigint>();
    for (const p of await whenLed(() => admin.fetchTopicOffsets(topic))) {
      if (BigInt(p.high) > BigInt(p.low)) ends.set(p.partition, BigInt(p.high));
    }
    return ends;
  } finally {
    await admin.disconnect();
  }
}

/**
 * Reads a topic from the beginning up to its end as of the call (read_committed), e.g. a compacted
 * offsets or control topic. Ends when every partition reached the end offset it had at the start;
 * a batch of only transaction markers counts too, which is why this listens to batch events.
 */
export async function readToEnd(
  kafka: Kafka,
  topic: string,
  onMessage: (message: KafkaMessage, partition: number) => void,
  timeoutMs = 60_000,
): Promise<void> {
  const ends = await endOffsets(kafka, topic);
  if (ends.size === 0) return;
  const consumer = kafka.consumer({ groupId: `banyan-reader-${randomUUID()}`, readUncommitted: false });
  await consumer.connect();
  /** The last offset handed on, by partition. */
  const handed = new Map<number, bigint>();
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`reading ${topic} to its end took more than ${timeoutMs / 1000} s (an open transaction?)`)),
        timeoutMs,
      );
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        const end = ends.get(payload.partition);
        if (end !== undefined && BigInt(payload.lastOffset) >= end - 1n) ends.delete(payload.partition);
        if (ends.size === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
      consumer
        .subscribe({ topic, fromBeginning: true })
        .then(() =>
          consumer.run({
            autoCommit: false,
            eachMessage: async ({ message, partition }) => {
              // A rejoin of the reader's group (a slow machine missing a heartbeat) starts the
              // partition over from the beginning, as nothing is committed: each offset is handed on once.
              const offset = BigInt(message.offset);
              if (offset <= (handed.get(partition) ?? -1n)) return;
              handed.set(partition, offset);
              onMessage(message, partition);
            },
          }),
        )
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
}
