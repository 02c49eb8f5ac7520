/** DI token for sinks; connectors are multi-bound to it. */
export const Sink = Symbol.for('banyan.Sink');

/** What became of one record handed to a sink. */
export type SinkOutcome =
  | { status: 'written' }
  /** Nothing to do: the target already holds this version or newer (idempotency, version guard, no-op). */
  | { status: 'skipped'; reason: string }
  /** This record failed; `retriable` ones are tried again, the rest go to the dead-letter topic. */
  | { status: 'failed'; retriable: boolean; reason: string; code?: string };

export interface SinkRecord<T = Record<string, unknown>> {
  key: string;
  value: T | null;
  headers: Record<string, string>;
  topic: string;
  partition: number;
  offset: string;
}

/**
 * Writes records to one target system. At-least-once from Kafka; idempotent writes make it
 * effectively once. `write` reports one outcome per record, in order, so one bad record does not
 * fail a batch of 200.
 */
export interface Sink<T = Record<string, unknown>> {
  readonly name: string;
  start(): Promise<void>;
  write(batch: Array<SinkRecord<T>>): Promise<SinkOutcome[]>;
  /** Whether the target answers and accepts our credentials, as a sentence for `doctor`. */
  healthcheck(): Promise<{ ok: boolean; detail: string }>;
  stop(): Promise<void>;
}
