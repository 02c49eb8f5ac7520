import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Consumer, Kafka } from 'kafkajs';
import { BanyanError, sleep } from '../core';
import { changeTypeState, type RuntimeConfig } from './config';
import { endOffsets, ensureTopics, readToEnd, worthRetrying } from './kafka';
import { createTransactionalProducer, isFencing } from './transactional-producer';
import { componentLogger, type Logger } from './logger';

/**
 * Change types and their lifecycle (docs/lifecycle.md). Each change type (`user`, `address`…) has
 * one state, held in a compacted control topic (key = the type, value = the JSON record of the last
 * transition), so every running instance follows it and sees a change within seconds. Every
 * transition is also written, in the same Kafka transaction, to an audit topic that is never
 * compacted. Pipelines ask `stateOf(type)` (in memory, no I/O) for each record they handle.
 */

/** DI token for the change types of this process (bound by whoever wires the runtime). */
export const ChangeTypes = Symbol.for('banyan.ChangeTypes');

/** What pipelines, the status server and the CLI use; KafkaChangeTypes is the implementation. */
export interface ChangeTypes {
  start(): Promise<void>;
  stateOf(type: string): ChangeTypeState;
  view(type: string): ChangeTypeView;
  list(): ChangeTypeView[];
  snapshot(): ChangeTypeSnapshot[];
  onChange(listener: (change: ChangeTypeChange) => void): () => void;
  set(type: string, to: string, options: SetOptions): Promise<ChangeTypeRecord>;
  history(type?: string): Promise<AuditEntry[]>;
  stop(): Promise<void>;
}

/** An audit record and where it is in the audit topic. */
export type AuditEntry = ChangeTypeRecord & { partition: number; offset: string };

/** `legacy-owned`, `dual`, `new-owned`, `decommissioned`, in lifecycle order. */
export type ChangeTypeState = (typeof CHANGE_TYPE_STATES)[number];
export const CHANGE_TYPE_STATES = changeTypeState.options;

/** The `changeTypes` section of the configuration: each type's state before any transition. */
export type ChangeTypesConfig = RuntimeConfig['changeTypes'];

/** One transition, as the control topic (its latest per type) and the audit topic (all of them) hold it. */
export interface ChangeTypeRecord {
  type: string;
  state: ChangeTypeState;
  /** The state it left (the configured initial state for a type's first transition). */
  from: ChangeTypeState;
  /** When it was made, ISO 8601 UTC. */
  at: string;
  /** Who made it: `--by`, or the OS user. */
  by: string;
  why: string;
  /** The type's transition count, 1 for its first. Informational; compare-and-set uses the record's offset. */
  seq?: number;
  /** The host the transition was made from. */
  host?: string;
}

/** What a process knows of one change type now. */
export interface ChangeTypeView {
  type: string;
  state: ChangeTypeState;
  /** Whether this config declares it (a type only the control topic names is listed, but not served). */
  configured: boolean;
  /** The transition that set the state; absent while the configured initial state holds. */
  record?: ChangeTypeRecord;
  /**
   * The control-topic offset of the type's last record, or null if it has none: the token
   * compare-and-set compares (the same for every reader, unlike a clock).
   */
  version: string | null;
}

/** A state change seen after start(): by this process's own set() or read from the control topic. */
export interface ChangeTypeChange {
  type: string;
  state: ChangeTypeState;
  previous: ChangeTypeState;
  /** The record that made it; null when its record was deleted (a tombstone): back to the initial state. */
  record: ChangeTypeRecord | null;
}

/** For /status and /metrics: one entry per change type. */
export interface ChangeTypeSnapshot {
  type: string;
  state: ChangeTypeState;
  /** When the state was set; null while the configured initial state holds. */
  since: string | null;
  by: string | null;
}

export interface SetOptions {
  /** Who makes the transition; default the OS user. */
  by?: string;
  /** Why: required, kept in the audit topic. */
  why: string;
  /**
   * What the caller believes holds now; the set is refused if it no longer does. Default: the
   * version this process has read (so a set based on a stale read is refused).
   */
  expected?: { state?: ChangeTypeState; version?: string | null };
}

export type ChangeTypeErrorCode =
  | 'UNKNOWN_CHANGE_TYPE'
  | 'UNKNOWN_STATE'
  | 'TRANSITION_REFUSED'
  | 'REASON_REQUIRED'
  | 'STALE_STATE'
  | 'CONCURRENT_WRITER'
  | 'NOT_STARTED';

/** A transition refused, or a lifecycle question that has no answer; the message says what to do. */
export class ChangeTypeError extends BanyanError {
  declare readonly code: ChangeTypeErrorCode;

  constructor(message: string, code: ChangeTypeErrorCode, context: Record<string, unknown> = {}) {
    super(message, { retriable: false, stage: 'processing', code, context });
  }
}

/**
 * Why `from → to` is not allowed, or undefined if it is. Any forward move is allowed (a type may
 * skip `dual`); backward only one step at a time (a rollback of the last move, undoing a skip too);
 * setting the state it already has is refused, so the audit never holds a transition that was none.
 */
export function transitionProblem(from: ChangeTypeState, to: ChangeTypeState): string | undefined {
  const steps = CHANGE_TYPE_STATES.indexOf(to) - CHANGE_TYPE_STATES.indexOf(from);
  if (steps === 0) return `it is already ${to}`;
  if (steps < -1) {
    const back = CHANGE_TYPE_STATES[CHANGE_TYPE_STATES.indexOf(from) - 1]!;
    return `${from} → ${to} goes back ${-steps} steps; go back one step at a time (next: ${from} → ${back})`;
  }
  return undefined;
}

export function isState(value: unknown): value is ChangeTypeState {
  return typeof value === 'string' && (CHANGE_TYPE_STATES as readonly string[]).includes(value);
}

/**
 * A control or audit record's value, checked; throws an Error saying what is wrong with it. `key`
 * must be its type: a record filed under another key would change the wrong type.
 */
export function parseChangeTypeRecord(key: string | null, value: Buffer | string): ChangeTypeRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString());
  } catch (error) {
    throw new Error(`value is not JSON (${(error as Error).message})`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('value is not a JSON object');
  const r = parsed as Record<string, unknown>;
  const text = (field: string) => {
    if (typeof r[field] !== 'string' || !(r[field] as string).trim()) throw new Error(`"${field}" must be a non-empty string`);
    return r[field] as string;
  };
  const type = text('type');
  if (key !== type) throw new Error(`key ${key === null ? 'is missing' : `"${key}"`} but the value is about "${type}"`);
  if (!isState(r.state)) throw new Error(`"state" ${JSON.stringify(r.state)} is none of ${CHANGE_TYPE_STATES.join(', ')}`);
  if (!isState(r.from)) throw new Error(`"from" ${JSON.stringify(r.from)} is none of ${CHANGE_TYPE_STATES.join(', ')}`);
  const at = text('at');
  if (Number.isNaN(Date.parse(at))) throw new Error(`"at" ${JSON.stringify(at)} is not a date`);
  const record: ChangeTypeRecord = { type, state: r.state, from: r.from, at, by: text('by'), why: text('why') };
  if (r.seq !== undefined) {
    if (!Number.isSafeInteger(r.seq) || (r.seq as number) < 1) throw new Error(`"seq" ${JSON.stringify(r.seq)} is not a positive integer`);
    record.seq = r.seq as number;
  }
  if (typeof r.host === 'string') record.host = r.host;
  return record;
}

/** A message as the table reads it (kafkajs's KafkaMessage fits). */
export interface ControlMessage {
  key: Buffer | null;
  value: Buffer | null;
  offset: string;
}

/**
 * The latest state per change type, built from control-topic messages in offset order; no I/O.
 * A bad record is skipped with an error naming topic, partition and offset: it never stops the
 * process, and the type keeps the state it had.
 */
export class ChangeTypeTable {
  private readonly records = new Map<string, { record: ChangeTypeRecord | null; offset: bigint }>();
  private readonly badOffsets = new Set<string>();

  constructor(
    private readonly types: ChangeTypesConfig,
    private readonly logger: Logger,
  ) {}

  /** Bad records skipped so far (each counted once, even if read again). */
  get badRecords(): number {
    return this.badOffsets.size;
  }

  /** Applies one message; returns the change it made, if the state changed. A message at or below the type's last offset is one already applied. */
  apply(topic: string, partition: number, message: ControlMessage): ChangeTypeChange | undefined {
    const offset = BigInt(message.offset);
    const key = message.key?.toString() ?? null;
    const where = { topic, partition, offset: message.offset };
    let record: ChangeTypeRecord | null;
    try {
      if (!key) throw new Error('the record has no key (the change type)');
      record = message.value === null ? null : parseChangeTypeRecord(key, message.value);
    } catch (error) {
      const id = `${topic}/${partition}/${message.offset}`;
      if (!this.badOffsets.has(id)) {
        this.badOffsets.add(id);
        this.logger.error(
          { event: 'changetypes.bad_record', ...where, key, reason: (error as Error).message },
          `skipped a bad change-type record at ${id}: ${(error as Error).message}`,
        );
      }
      return undefined;
    }
    const held = this.records.get(key);
    if (held && held.offset >= offset) return undefined;
    const previous = this.view(key, false).state;
    this.records.set(key, { record, offset });
    if (record === null) {
      this.logger.warn({ event: 'changetypes.deleted', ...where, type: key }, `the record of change type "${key}" was deleted; back to its initial state`);
    } else if (!(key in this.types) && !held) {
      this.logger.warn({ event: 'changetypes.not_configured', ...where, type: key }, `the control topic names change type "${key}", which this config does not declare`);
    }
    const state = this.view(key, false).state;
    return state === previous && record !== null ? undefined : { type: key, state, previous, record };
  }

  /** What is known of `type`; throws for a type neither configured nor named by the control topic (unless `strict` is false). */
  view(type: string, strict = true): ChangeTypeView {
    const configured = Object.hasOwn(this.types, type);
    const held = this.records.get(type);
    if (strict && !configured && !held?.record) {
      throw new ChangeTypeError(
        `unknown change type "${type}" (configured: ${Object.keys(this.types).join(', ') || 'none'}; see changeTypes in the config)`,
        'UNKNOWN_CHANGE_TYPE',
        { type },
      );
    }
    const initial = configured ? this.types[type]!.initial : 'legacy-owned';
    return {
      type,
      state: held?.record?.state ?? initial,
      configured,
      ...(held?.record ? { record: held.record } : {}),
      version: held ? held.offset.toString() : null,
    };
  }

  /** Every configured type, then any other the control topic names, by name. */
  views(): ChangeTypeView[] {
    const names = new Set(Object.keys(this.types));
    for (const [type, held] of this.records) if (held.record) names.add(type);
    return [...names].sort().map((type) => this.view(type));
  }
}

export interface ChangeTypesOptions {
  kafka: Kafka;
  /** kafka.clientId: the writer's transactional id is `<clientId>.control`. */
  clientId: string;
  /** The compacted control topic (kafka.topics.control). */
  topic: string;
  /** The audit topic (kafka.topics.controlAudit). */
  auditTopic: string;
  replicationFactor: number;
  types: ChangeTypesConfig;
  logger: Logger;
  /** How long start() and a set() may wait to read the control topic to its end. Default 60 s. */
  readTimeoutMs?: number;
  /** The clock of `at`; default Date.now. */
  now?: () => number;
}

/** Times set() starts over when another writer took the control transactional id meanwhile, or Kafka failed its transaction. */
const SET_ATTEMPTS = 6;
/** How long a follower that failed for good waits before it reads the topic again. */
const FOLLOW_RESTART_MS = 5000;
/** A set's transaction lives a moment; a writer killed inside one holds readers back for at most this. */
const WRITER_TRANSACTION_TIMEOUT_MS = 15_000;

/** The change types of one process: it follows the control topic from start() to stop(), and writes transitions. */
export class KafkaChangeTypes implements ChangeTypes {
  private readonly table: ChangeTypeTable;
  private readonly logger: Logger;
  private readonly listeners = new Set<(change: ChangeTypeChange) => void>();
  /** Per partition of the control topic: the next offset this process has not read yet. */
  private readonly readUpTo = new Map<number, bigint>();
  private consumer: Consumer | undefined;
  private failure: Error | undefined;
  private started = false;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ChangeTypesOptions) {
    this.logger = componentLogger(options.logger, 'change-types', 'runtime');
    this.table = new ChangeTypeTable(options.types, this.logger);
  }

  get topic(): string {
    return this.options.topic;
  }

  /** Bad records skipped in the control topic (each logged once with its topic/partition/offset). */
  get badRecords(): number {
    return this.table.badRecords;
  }

  /**
   * Creates the topics if needed, then reads the control topic to its end as of this call and goes
   * on following it. Resolves once read to that end, so no state committed before start() is missed.
   * Every stage of the process calls it; it runs once (again after a failure).
   */
  start(): Promise<void> {
    if (!this.starting) {
      this.starting = this.startOnce();
      this.starting.catch(() => (this.starting = undefined));
    }
    return this.starting;
  }

  private starting: Promise<void> | undefined;

  private async startOnce(): Promise<void> {
    try {
      await this.ensureTopics();
      const ends = await endOffsets(this.options.kafka, this.topic);
      await this.follow();
      await this.readTo(ends, 'start');
    } catch (error) {
      await this.stop().catch(() => undefined);
      throw error;
    }
    this.started = true;
    this.logger.info({ event: 'changetypes.started', topic: this.topic, states: this.snapshot() }, 'change types read');
  }

  /** The state of `type` now; a configured type with no transition yet has its configured initial state. */
  stateOf(type: string): ChangeTypeState {
    return this.table.view(type).state;
  }

  /** Everything known of `type` (its record, version); throws ChangeTypeError for an unknown type. */
  view(type: string): ChangeTypeView {
    return this.table.view(type);
  }

  /** Every change type: the configured ones, then any other the control topic names. */
  list(): ChangeTypeView[] {
    return this.table.views();
  }

  /** For /status and /metrics. */
  snapshot(): ChangeTypeSnapshot[] {
    return this.table.views().map((v) => ({ type: v.type, state: v.state, since: v.record?.at ?? null, by: v.record?.by ?? null }));
  }

  /**
   * Calls `listener` for each state change after start() resolved (before it, read the states with
   * stateOf). A listener that throws is logged, not propagated. Returns the function that removes it.
   */
  onChange(listener: (change: ChangeTypeChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Moves `type` to `to` (see transitionProblem), as a compare-and-set on what this process read.
   * The writer first takes the transactional id `<clientId>.control` (which fences any other writer
   * of this config and aborts its open transaction), then reads the control topic to its end; if
   * the type's record is not the one expected, nothing is written and the error says who changed
   * it. Otherwise the state record and its audit record are written in one Kafka transaction.
   */
  async set(type: string, to: string, options: SetOptions): Promise<ChangeTypeRecord> {
    if (!this.started) throw new ChangeTypeError('start() the change types before setting one (it reads their current states)', 'NOT_STARTED');
    const believed = this.table.view(type);
    if (!isState(to)) throw new ChangeTypeError(`unknown state "${to}" (one of ${CHANGE_TYPE_STATES.join(', ')})`, 'UNKNOWN_STATE', { type, to });
    if (!believed.configured) {
      throw new ChangeTypeError(`change type "${type}" is not declared by this config (changeTypes); only a declared type can be set`, 'UNKNOWN_CHANGE_TYPE', { type });
    }
    const why = options.why?.trim();
    if (!why) throw new ChangeTypeError(`a reason is required to move "${type}" to ${to} (--why "…"); it is kept in the audit`, 'REASON_REQUIRED', { type });
    const by = options.by?.trim() || osUser();
    this.refuseTransition(believed.state, to, type);
    const expected = { version: options.expected?.version !== undefined ? options.expected.version : believed.version, state: options.expected?.state };
    // Fixed for every attempt, so an attempt can recognise its own record (see writeTransition).
    const stamp = { at: new Date((this.options.now ?? Date.now)()).toISOString(), by, why, host: hostname() };
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.writeTransition(type, to, stamp, expected);
      } catch (error) {
        // Another writer took the id (fenced), or Kafka failed the transaction: start over from
        // the read, where the compare decides. Anything else (a refusal, a timeout) is final.
        const kafkaFailed = isFencing(error) || worthRetrying(error);
        if (!kafkaFailed) throw error;
        if (attempt >= SET_ATTEMPTS) {
          if (!isFencing(error)) throw error;
          throw new ChangeTypeError(
            `another writer kept taking the control transactional id "${this.transactionalId}" while "${type}" was being set; nothing was written, try again`,
            'CONCURRENT_WRITER',
            { type },
          );
        }
        this.logger.info({ event: 'changetypes.set_retried', type, attempt, err: error }, 'the transition was not committed; reading again');
        // Two writers fencing each other in step would do so forever; a random pause breaks the step.
        await sleep(50 + Math.random() * 200 * attempt);
      }
    }
  }

  /** The audit: every transition (of `type`, or of all), oldest first. Needs no start(). */
  async history(type?: string): Promise<AuditEntry[]> {
    const { kafka, auditTopic } = this.options;
    const admin = kafka.admin();
    await admin.connect();
    const exists = await admin.listTopics().then((topics) => topics.includes(auditTopic)).finally(() => admin.disconnect());
    if (!exists) return [];
    const records: AuditEntry[] = [];
    await readToEnd(
      kafka,
      auditTopic,
      (message, partition) => {
        const key = message.key?.toString() ?? null;
        if (type !== undefined && key !== type) return;
        try {
          if (message.value === null) throw new Error('the record has no value');
          records.push({ ...parseChangeTypeRecord(key, message.value), partition, offset: message.offset });
        } catch (error) {
          this.logger.error(
            { event: 'changetypes.bad_audit_record', topic: auditTopic, partition, offset: message.offset, reason: (error as Error).message },
            `skipped a bad audit record at ${auditTopic}/${partition}/${message.offset}: ${(error as Error).message}`,
          );
        }
      },
      this.readTimeoutMs,
    );
    // Offsets are the order the transitions were committed in (the topic has one partition); the
    // writers' clocks may disagree.
    return records.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.disconnect();
  }

  private get transactionalId(): string {
    return `${this.options.clientId}.control`;
  }

  private get readTimeoutMs(): number {
    return this.options.readTimeoutMs ?? 60_000;
  }

  private refuseTransition(from: ChangeTypeState, to: ChangeTypeState, type: string): void {
    const problem = transitionProblem(from, to);
    if (problem) throw new ChangeTypeError(`"${type}" cannot move ${from} → ${to}: ${problem}`, 'TRANSITION_REFUSED', { type, from, to });
  }

  private async writeTransition(
    type: string,
    to: ChangeTypeState,
    stamp: { at: string; by: string; why: string; host: string },
    expected: { version: string | null; state: ChangeTypeState | undefined },
  ): Promise<ChangeTypeRecord> {
    const { kafka, topic, auditTopic } = this.options;
    const producer = createTransactionalProducer(kafka, this.transactionalId, {
      transactionTimeout: WRITER_TRANSACTION_TIMEOUT_MS,
      // kafkajs's exactly-once wants unbounded retries; the deadline below bounds the whole set instead.
      retry: { initialRetryTime: 50, maxRetryTime: 2000, retries: Number.MAX_SAFE_INTEGER },
    });
    let timedOut = false;
    // Disconnecting ends kafkajs's retries, so an operator's command fails rather than waiting forever for Kafka.
    const deadline = setTimeout(() => {
      timedOut = true;
      void producer.disconnect().catch(() => undefined);
    }, this.readTimeoutMs);
    try {
      await producer.connect();
      // kafkajs initialises the transactional id here: any other writer's open transaction is aborted.
      const transaction = await producer.transaction();
      try {
        await this.readTo(await endOffsets(kafka, topic), 'set');
        const now = this.table.view(type);
        // An earlier attempt whose commit answered with an error may have committed all the same.
        const r = now.record;
        if (r && r.state === to && r.at === stamp.at && r.by === stamp.by && r.why === stamp.why && r.host === stamp.host) return r;
        if (now.version !== expected.version || (expected.state !== undefined && now.state !== expected.state)) {
          const what = now.record ? `it is now ${now.state} (set by ${now.record.by} at ${now.record.at}: "${now.record.why}")` : `it is now ${now.state}`;
          throw new ChangeTypeError(
            `"${type}" changed since it was read: ${what}; nothing was written. Look again (banyan changetypes list) and set it again if still wanted`,
            'STALE_STATE',
            { type, expected, now: { state: now.state, version: now.version } },
          );
        }
        this.refuseTransition(now.state, to, type);
        const record: ChangeTypeRecord = { type, state: to, from: now.state, at: stamp.at, by: stamp.by, why: stamp.why, seq: (now.record?.seq ?? 0) + 1, host: stamp.host };
        const value = JSON.stringify(record);
        const sent = await transaction.sendBatch({
          topicMessages: [
            { topic, messages: [{ key: type, value }] },
            { topic: auditTopic, messages: [{ key: type, value }] },
          ],
        });
        await transaction.commit();
        const written = sent.find((m) => m.topicName === topic);
        this.logger.info({ event: 'changetypes.set', ...record }, `change type ${type}: ${record.from} → ${to} by ${stamp.by}`);
        // Known at once here; the follower reads the same offset later and skips it.
        if (written?.baseOffset !== undefined) this.applyAndTell(topic, written.partition, { key: Buffer.from(type), value: Buffer.from(value), offset: written.baseOffset });
        return record;
      } catch (error) {
        if (transaction.isActive() && !timedOut) await transaction.abort().catch(() => undefined);
        throw error;
      }
    } catch (error) {
      if (!timedOut) throw error;
      throw new BanyanError(
        `setting "${type}" to ${to} took more than ${this.readTimeoutMs / 1000} s (Kafka away?); it may or may not have been written: look with banyan changetypes list`,
        { retriable: true, stage: 'sending', context: { type, to }, cause: error },
      );
    } finally {
      clearTimeout(deadline);
      await producer.disconnect().catch(() => undefined);
    }
  }

  private async ensureTopics(): Promise<void> {
    const { kafka, topic, auditTopic, replicationFactor } = this.options;
    // One partition each: a single order of all transitions, and a cheap read to the end. The audit
    // is never compacted and outlives time-based retention too.
    await ensureTopics(kafka, [
      { topic, numPartitions: 1, replicationFactor, compacted: true },
      {
        topic: auditTopic,
        numPartitions: 1,
        replicationFactor,
        configEntries: [
          { name: 'cleanup.policy', value: 'delete' },
          { name: 'retention.ms', value: '-1' },
          { name: 'retention.bytes', value: '-1' },
        ],
      },
    ]);
  }

  /** Waits until the follower has read every partition up to `ends` (transaction markers count). */
  private async readTo(ends: Map<number, bigint>, what: string): Promise<void> {
    const deadline = Date.now() + this.readTimeoutMs;
    for (;;) {
      if (this.failure) throw this.failure;
      if ([...ends].every(([p, end]) => (this.readUpTo.get(p) ?? 0n) >= end)) return;
      if (this.stopped) throw new Error(`change types stopped before ${this.topic} was read to its end (${what})`);
      if (Date.now() > deadline) {
        throw new BanyanError(`reading ${this.topic} to its end took more than ${this.readTimeoutMs / 1000} s (${what}; an open transaction, or Kafka away?)`, {
          retriable: true,
          stage: 'receiving',
          context: { topic: this.topic },
        });
      }
      await sleep(20);
    }
  }

  /**
   * A consumer of its own (a fresh group per instance, never committing) reads the control topic
   * from the beginning, read_committed, and keeps following it. Rereading after a restart is
   * harmless: the table skips offsets it already applied.
   */
  private async follow(): Promise<void> {
    const { kafka, clientId } = this.options;
    const consumer = kafka.consumer({
      groupId: `${clientId}.changetypes.${hostname()}.${process.pid}.${randomUUID().slice(0, 8)}`,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 1000,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic !== this.topic) return;
      const next = BigInt(payload.lastOffset) + 1n;
      if (next > (this.readUpTo.get(payload.partition) ?? 0n)) this.readUpTo.set(payload.partition, next);
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart) return; // kafkajs restarts it itself
      if (!this.started) {
        this.failure = payload.error;
        return;
      }
      this.logger.error({ event: 'changetypes.follow_failed', topic: this.topic, err: payload.error }, `following ${this.topic} failed; reading it again in ${FOLLOW_RESTART_MS / 1000} s`);
      this.restartTimer = setTimeout(() => void this.refollow(consumer), FOLLOW_RESTART_MS);
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        this.applyAndTell(topic, partition, message);
        const next = BigInt(message.offset) + 1n;
        if (next > (this.readUpTo.get(partition) ?? 0n)) this.readUpTo.set(partition, next);
      },
    });
  }

  private async refollow(failed: Consumer): Promise<void> {
    if (this.stopped || this.consumer !== failed) return;
    await failed.disconnect().catch(() => undefined);
    try {
      await this.follow();
    } catch (error) {
      this.logger.error({ event: 'changetypes.follow_failed', topic: this.topic, err: error }, `following ${this.topic} failed again`);
      this.restartTimer = setTimeout(() => void this.refollow(this.consumer!), FOLLOW_RESTART_MS);
    }
  }

  private applyAndTell(topic: string, partition: number, message: ControlMessage): void {
    const change = this.table.apply(topic, partition, message);
    if (!change || !this.started) return;
    this.logger.info({ event: 'changetypes.changed', type: change.type, from: change.previous, to: change.state, by: change.record?.by }, `change type ${change.type} is now ${change.state}`);
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (error) {
        this.logger.error({ event: 'changetypes.listener_failed', type: change.type, err: error }, 'a change-type listener threw');
      }
    }
  }
}

/** The change types of a config, not started. */
export function createChangeTypes(config: Pick<RuntimeConfig, 'kafka' | 'changeTypes'>, kafka: Kafka, logger: Logger): KafkaChangeTypes {
  return new KafkaChangeTypes({
    kafka,
    clientId: config.kafka.clientId,
    topic: config.kafka.topics.control,
    auditTopic: config.kafka.topics.controlAudit,
    replicationFactor: config.kafka.topics.replicationFactor,
    types: config.changeTypes,
    logger,
  });
}

/** The OS user, for `by` when none is given (a container may have none). */
function osUser(): string {
  try {
    return userInfo().username || process.env.USER || 'unknown';
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

