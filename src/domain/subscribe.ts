import { Kafka, logLevel, type Consumer, type SASLOptions } from 'kafkajs';
import { builtinCatalog, type EventCatalog } from './catalog';
import { DomainDecoder } from './decoder';
import type { RegistryOptions } from './registry';
import type { EventOfTopic } from './types';

/**
 * The typed consumer helper of domain services. It reads a domain topic read_committed (only
 * events of committed transactions), decodes each event, hands it to the handler and commits the
 * offset only after the handler returned: at-least-once, so a handler must tolerate a repeat (the
 * eventId is the same on a repeat).
 *
 * - Tombstones (the null value after a deleted-kind event) are skipped: the event before carries
 *   the delete; their offsets are committed like the rest.
 * - A handler that throws (or an event that cannot be decoded) is retried, the same event, after a
 *   growing pause (retryBackoffMs doubling up to 30 s), `retries` times (unbounded by default);
 *   nothing after it in its partition is handed over meanwhile and its offset is not committed.
 *   When the retries are spent the subscription stops and `done` rejects with the error: the event
 *   comes again to the next subscription of the group.
 */
export interface SubscribeOptions {
  /** A kafkajs client, or how to make one. */
  kafka: Kafka | { brokers: string[]; clientId?: string; ssl?: boolean; sasl?: SASLOptions };
  schemaRegistry: string | RegistryOptions;
  /** The catalog whose schemas events are read with: the built-in one unless told. */
  catalog?: EventCatalog;
}

export interface SubscriptionConfig {
  groupId: string;
  /** Where a group with no committed offset starts: the beginning, or (default) only new events. */
  fromBeginning?: boolean;
  /** How often a failing event is tried again before the subscription stops; unbounded by default. */
  retries?: number;
  /** The first pause before a retry, doubled each time up to 30 s. Default 200 ms. */
  retryBackoffMs?: number;
  /** Told of every failure (to log it); the event is undefined when it could not be decoded. */
  onError?: (error: unknown, context: EventContext, attempt: number) => void;
}

/** Where an event was read. */
export interface EventContext {
  topic: string;
  partition: number;
  offset: string;
  key: Record<string, string> | undefined;
  headers: Record<string, string>;
  timestamp: number;
}

export type EventHandler<E> = (event: E, context: EventContext) => void | Promise<void>;

export interface Subscription {
  readonly topic: string;
  readonly groupId: string;
  /** Stops consuming and leaves the group; a handler that is running is awaited first. */
  stop(): Promise<void>;
  /** Resolves when stopped; rejects with the error when a failing event spent its retries. */
  readonly done: Promise<void>;
}

const MAX_BACKOFF_MS = 30_000;

export async function subscribe<T extends string>(
  options: SubscribeOptions,
  topic: T,
  handler: EventHandler<EventOfTopic<T>>,
  config: SubscriptionConfig,
): Promise<Subscription> {
  const kafka = kafkaOf(options.kafka, 'banyan-domain-subscriber');
  const decoder = new DomainDecoder(options.schemaRegistry, options.catalog ?? builtinCatalog());
  const consumer: Consumer = kafka.consumer({ groupId: config.groupId, readUncommitted: false });
  const retries = config.retries ?? Infinity;
  const firstBackoff = config.retryBackoffMs ?? 200;

  let stopping = false;
  let wake: (() => void) | undefined;
  let settle!: { resolve: () => void; reject: (error: unknown) => void };
  const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  // A caller that only calls stop() must not see an unhandled rejection.
  done.catch(() => undefined);
  let stopped: Promise<void> | undefined;
  const stop = (failure?: unknown): Promise<void> =>
    (stopped ??= (async () => {
      stopping = true;
      wake?.();
      try {
        await consumer.disconnect();
      } finally {
        if (failure === undefined) settle.resolve();
        else settle.reject(failure);
      }
    })());

  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: config.fromBeginning ?? false });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic: read, partition, message, heartbeat, pause }) => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(message.headers ?? {})) if (value !== undefined) headers[name] = String(value);
        const context: EventContext = { topic: read, partition, offset: message.offset, key: undefined, headers, timestamp: Number(message.timestamp) };
        const next = [{ topic: read, partition, offset: (BigInt(message.offset) + 1n).toString() }];
        if (message.value === null) {
          await consumer.commitOffsets(next);
          return;
        }
        for (let attempt = 1; ; attempt++) {
          try {
            if (message.key) context.key = await decoder.key(read, message.key);
            const event = await decoder.event(read, message.value);
            await handler(event as EventOfTopic<T>, context);
            break;
          } catch (error) {
            config.onError?.(error, context, attempt);
            if (stopping) return pauseHere(pause);
            if (attempt > retries) {
              pauseHere(pause);
              // Not awaited: stop() waits for this very call to return.
              void stop(error).catch(() => undefined);
              return;
            }
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, Math.min(firstBackoff * 2 ** (attempt - 1), MAX_BACKOFF_MS));
              wake = () => {
                clearTimeout(timer);
                resolve();
              };
            });
            wake = undefined;
            if (stopping) return pauseHere(pause);
            await heartbeat();
          }
        }
        await consumer.commitOffsets(next);
      },
    });
  } catch (error) {
    await consumer.disconnect().catch(() => undefined);
    throw error;
  }
  return { topic, groupId: config.groupId, stop: () => stop(), done };
}

/**
 * Keeps kafkajs from handing over the rest of the batch after an event that was not handled: it
 * would otherwise go on with the next message, and that one's commit would pass over this one.
 */
function pauseHere(pause: () => () => void): void {
  pause();
}

/** The kafkajs client of a domain service's helper: the one given, or one made from its settings. */
export function kafkaOf(kafka: SubscribeOptions['kafka'], clientId: string): Kafka {
  return kafka instanceof Kafka
    ? kafka
    : new Kafka({
        brokers: kafka.brokers,
        clientId: kafka.clientId ?? clientId,
        ...(kafka.ssl ? { ssl: true } : {}),
        ...(kafka.sasl ? { sasl: kafka.sasl } : {}),
        logLevel: logLevel.ERROR,
      });
}
