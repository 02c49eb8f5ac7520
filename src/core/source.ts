import type { DeadLetter, Json, SourceRecord } from './envelope';

/** DI token for sources; connectors are multi-bound to it. */
export const Source = Symbol.for('banyan.Source');

/** What one poll returned. */
export interface PollResult {
  /** The changes read, in the order they must be written. May be empty. */
  records: SourceRecord[];
  /** Inputs that could not be converted; the runner writes them to the dead-letter topic. */
  deadLetters: DeadLetter[];
  /**
   * Where the source stands after this batch, per partition it advanced: the one way a position
   * travels to the runner (records show theirs only in the `banyan.source.position` header). Set
   * even when `records` is empty (a batch of dead letters or dropped echoes), so those inputs are
   * not read again.
   */
  offsets: Array<{ partition: Record<string, Json>; offset: Record<string, Json> }>;
  /**
   * Called by the runner once the records, dead letters and offsets are committed to Kafka.
   * A source may prune or advance its own state here; it must not assume it is ever called
   * (a crash between commit and ack is allowed).
   */
  ack(): Promise<void>;
}

/**
 * Reads changes from one system into Kafka records.
 *
 * Lifecycle: `connect(start)` once, then `poll(signal)` repeatedly, then `close()`. The runner owns
 * the offsets: before `connect` it reads every committed offset stored under the source's name and
 * hands them over in `start`, keyed by `partitionKey`; it writes every batch's records, dead letters
 * and `offsets` in one Kafka transaction. A source therefore never stores its own position.
 *
 * `poll` returns when it has something, or when the source's poll interval has passed with nothing
 * (an empty result), or when `signal` aborts. Each poll continues where the previous one ended,
 * before that one is committed: the runner reads the next batch while it writes the last one.
 * Calls never overlap. When a step fails, the runner calls `close()` and `connect()` again with
 * the last committed offsets, so a source may keep its read position in memory only.
 *
 * `poll` is only ever called after a `connect` that succeeded. A `connect` that fails leaves the
 * source closed; the runner backs off and connects again (`close()` first) before any poll. A source
 * therefore takes its position from `start` alone, never from what it had read before, and refuses
 * (throws) a poll while it is not connected rather than read from a half-built state.
 * Transient failures (a lost connection) are thrown as a retriable BanyanError; the runner backs
 * off and reconnects. A `connect` failing with a non-retriable error before the source ever
 * connected stops the runner (a configuration that cannot work); once it has connected, every
 * failure is retried.
 */
export interface Source {
  /** Unique within a config; names the source in logs, metrics, offsets and the dead-letter topic. */
  readonly name: string;
  connect(start: StartOffsets): Promise<void>;
  poll(signal: AbortSignal): Promise<PollResult>;
  close(): Promise<void>;
  /** What a person should see of this source right now (phase, snapshot progress, position…). */
  details?(): Record<string, Json>;
}

/** The committed offsets of a source's partitions, keyed by `partitionKey(partition)`. */
export type StartOffsets = ReadonlyMap<string, Record<string, Json>>;

/** A stable string for a source partition: keys sorted, JSON. Used as the Kafka key of offset records. */
export function partitionKey(sourceName: string, partition: Record<string, Json>): string {
  const sorted = Object.fromEntries(Object.entries(partition).sort(([a], [b]) => a.localeCompare(b)));
  return JSON.stringify([sourceName, sorted]);
}
