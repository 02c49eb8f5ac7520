import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import { errorMessage } from '../core';
import { ensureTopics } from './kafka';
import type { Logger } from './logger';

/** A field value as Banyan writes it to Salesforce and as a change event carries it. */
export type WrittenValue = string | number | boolean | null;

/**
 * What Banyan last wrote to one Salesforce record (its fingerprint): a change event of that record
 * that carries exactly these values, soon after, is Banyan's own write coming back. Salesforce
 * documents `Sforce-Call-Options` (CDC's changeOrigin) for sObject rows, query and the Bulk APIs,
 * but not for sObject Collections, and no capture shows what Bulk API 2.0 writes report: the
 * fingerprint does not depend on either.
 */
export interface WrittenRecord {
  object: string;
  externalIdField: string;
  externalId: string;
  /** Field (REST name) → the value written. */
  values: Record<string, WrittenValue>;
  /** When the sink sent it, ms since the epoch on Banyan's clock (written before the call). */
  at: number;
  sink: string;
}

/** The compacted topic every Salesforce sink writes its fingerprints to and every CDC source follows. */
export function writtenTopic(clientId: string): string {
  return `${clientId}.salesforce.written`;
}

/** One record's key: external ids of text are case-insensitive in Salesforce, as upsert matches them. */
export function writtenKey(object: string, externalIdField: string, externalId: string): string {
  return `${object.toLowerCase()}/${externalIdField.toLowerCase()}/${externalId.toLowerCase()}`;
}

export function writtenMessage(record: WrittenRecord): { key: string; value: string } {
  return { key: writtenKey(record.object, record.externalIdField, record.externalId), value: JSON.stringify(record) };
}

/** Fields Salesforce sets itself on every write: never a sign of someone else's change. */
const SYSTEM_FIELDS = new Set(['id', 'isdeleted', 'createddate', 'createdbyid', 'lastmodifieddate', 'lastmodifiedbyid', 'systemmodstamp', 'ownerid', 'lastactivitydate', 'lastvieweddate', 'lastreferenceddate']);

/**
 * Whether a change of a record (its fields by REST name: an update's changed fields, a create's
 * set ones) is one of the writes Banyan has pending there (`written`, oldest first, each made within
 * `windowMs` of the change). An update must have changed nothing but fields Banyan wrote, each to a
 * value one of those writes gave it (two writes before the first echo is judged are both known;
 * system fields and the external id aside). A create must carry every value of one write (other
 * fields it sets are the defaults Salesforce fills in: the record did not exist, and its external
 * id is unique, so nobody else made it). Pure; the caller consumes what matched.
 */
export function isWrittenEcho(written: readonly WrittenRecord[], change: Record<string, WrittenValue>, commitTimestamp: number, windowMs: number, create = false): boolean {
  const live = written.filter((w) => Math.abs(commitTimestamp - w.at) <= windowMs).map((w) => ({ externalIdField: w.externalIdField.toLowerCase(), values: lowerKeys(w.values) }));
  if (live.length === 0) return false;
  const changed = lowerKeys(change);
  if (create) return live.some((w) => w.values.size > 0 && [...w.values].every(([field, value]) => sameValue(value, changed.get(field) ?? null)));
  let compared = 0;
  for (const [name, value] of changed) {
    if (SYSTEM_FIELDS.has(name) || live.some((w) => w.externalIdField === name)) continue;
    if (!live.some((w) => w.values.has(name) && sameValue(w.values.get(name)!, value))) return false;
    compared++;
  }
  return compared > 0;
}

function lowerKeys(values: Record<string, WrittenValue>): Map<string, WrittenValue> {
  return new Map(Object.entries(values).map(([field, value]) => [field.toLowerCase(), value]));
}

function sameValue(a: WrittenValue, b: WrittenValue): boolean {
  if (a === null || b === null) return a === b || a === '' || b === '';
  return String(a) === String(b);
}

/**
 * The fingerprints as a process sees them: follows the written topic from its start (a consumer
 * that commits nothing), and `catchUp` waits until it has read everything the topic held when
 * asked. A sink commits a record's fingerprint before it calls Salesforce, so a change event read
 * after that call is judged against it once the source has caught up.
 */
export class WrittenFingerprints {
  /** Per record, the writes whose echo is still expected, oldest first. */
  private readonly records = new Map<string, WrittenRecord[]>();
  /** Why following stopped (kafkajs gave up): catchUp fails with it, and the source connects again. */
  private failure: unknown;
  /** The next offset to read, by partition. */
  private readonly positions = new Map<number, bigint>();
  /** The last offset taken in, by partition. */
  private readonly taken = new Map<number, bigint>();
  private readonly waiters = new Set<() => void>();
  private consumer: Consumer | undefined;
  private admin: Admin | undefined;

  /** The external id fields the sinks write each object by (lower case). */
  private readonly externalIdFields = new Map<string, Set<string>>();
  private started: Promise<void> | undefined;

  constructor(
    private readonly kafka: Kafka,
    readonly topic: string,
    private readonly logger: Logger,
    /** How long after a write a change with its values is taken for its echo. */
    private readonly windowMs: number,
    /** For the topic, when this process is the first to need it (the sinks make it alike). */
    private readonly topicSpec: { partitions: number; replicationFactor: number },
  ) {}

  /** Starts following the topic (once; later calls wait for the first). */
  start(): Promise<void> {
    this.started ??= this.follow().catch((error: unknown) => {
      this.started = undefined;
      throw error;
    });
    return this.started;
  }

  private async follow(): Promise<void> {
    await ensureTopics(this.kafka, [{ topic: this.topic, numPartitions: this.topicSpec.partitions, replicationFactor: this.topicSpec.replicationFactor, compacted: true }]);
    const admin = this.kafka.admin();
    await admin.connect();
    this.admin = admin;
    const consumer = this.kafka.consumer({ groupId: `banyan-written-${randomUUID()}`, readUncommitted: false });
    this.consumer = consumer;
    await consumer.connect();
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart) return;
      this.failure = payload.error;
      for (const wake of [...this.waiters]) wake();
    });
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      // A batch of transaction markers only ends here too.
      this.positions.set(payload.partition, BigInt(payload.lastOffset) + 1n);
      for (const wake of [...this.waiters]) wake();
    });
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message, partition }) => {
        // kafkajs starts a crashed consumer over by itself, from the beginning (nothing is committed):
        // each offset is taken once, so the fingerprints already consumed do not come back.
        const offset = BigInt(message.offset);
        if (offset <= (this.taken.get(partition) ?? -1n)) return;
        this.taken.set(partition, offset);
        if (!message.key) return;
        const key = message.key.toString();
        if (!message.value) {
          this.records.delete(key);
          return;
        }
        try {
          this.remember(JSON.parse(message.value.toString()) as WrittenRecord);
        } catch (error) {
          this.logger.warn({ event: 'salesforce_written.unreadable', key, err: error }, 'a fingerprint could not be read; ignored');
        }
      },
    });
  }

  /** Resolves once everything the topic held at the call has been read; fails after `timeoutMs`, or when following failed. */
  async catchUp(signal?: AbortSignal, timeoutMs = 60_000): Promise<void> {
    if (!this.admin) throw new Error(`${this.topic} is not followed (stopped)`);
    const offsets = await this.admin.fetchTopicOffsets(this.topic);
    const ends = offsets.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => ({ partition: p.partition, end: BigInt(p.high) }));
    const done = () => ends.every(({ partition, end }) => (this.positions.get(partition) ?? 0n) >= end);
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (signal?.aborted) throw signal.reason;
      if (this.failure !== undefined) throw new Error(`following ${this.topic} failed: ${errorMessage(this.failure)}`);
      if (!this.consumer) throw new Error(`${this.topic} is not followed (stopped)`);
      if (Date.now() > deadline) throw new Error(`${this.topic} was not read to its end within ${timeoutMs / 1000} s (an open transaction of a sink?)`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          resolve();
        };
        this.waiters.add(wake);
        // Checked again at least every second: a partition whose last batch ended before this call.
        setTimeout(wake, 1000).unref();
      });
    }
  }

  /** A write whose echo is to be expected (as read from the topic). */
  remember(record: WrittenRecord): void {
    const key = writtenKey(record.object, record.externalIdField, record.externalId);
    this.records.set(key, [...this.live(this.records.get(key) ?? []), record]);
    const object = record.object.toLowerCase();
    this.externalIdFields.set(object, (this.externalIdFields.get(object) ?? new Set()).add(record.externalIdField.toLowerCase()));
  }

  /** The writes of a record whose echo may still come (the others are dropped: memory stays bounded). */
  private live(writes: WrittenRecord[]): WrittenRecord[] {
    const since = Date.now() - 2 * this.windowMs;
    return writes.filter((w) => w.at >= since && Object.keys(w.values).length > 0);
  }

  /**
   * Whether a change of a record of `object` (`fields`: every field the event carries, by REST
   * name, where its external id is found; `change`: what it changed) is Banyan's own write (see
   * isWrittenEcho). The fields that matched are consumed, so the same values set again later by
   * someone else are a change, and a field someone else changed is no longer expected back.
   */
  takeEcho(object: string, fields: Record<string, WrittenValue>, change: Record<string, WrittenValue>, commitTimestamp: number, create = false): boolean {
    const byName = new Map(Object.entries(fields).map(([field, value]) => [field.toLowerCase(), value]));
    for (const idField of this.externalIdFields.get(object.toLowerCase()) ?? []) {
      const id = byName.get(idField);
      if (id === undefined || id === null) continue;
      const key = writtenKey(object, idField, String(id));
      const writes = this.live(this.records.get(key) ?? []);
      if (writes.length === 0) continue;
      const echo = isWrittenEcho(writes, change, commitTimestamp, this.windowMs, create);
      // An echo consumes each field from the oldest write that gave it that value (a later write's
      // echo is still to come); someone else's change consumes its fields from every write: the same
      // values set again later are someone's change, a field someone else changed is not expected back.
      const changed = lowerKeys(change);
      const left = writes.map((w) => ({ ...w, values: { ...w.values } }));
      for (const [name, value] of changed) {
        const holders = left.filter((w) => Object.keys(w.values).some((f) => f.toLowerCase() === name && (!echo || sameValue(w.values[f]!, value))));
        for (const w of echo ? holders.slice(0, 1) : holders) {
          for (const f of Object.keys(w.values)) if (f.toLowerCase() === name) delete w.values[f];
        }
      }
      this.records.set(key, this.live(left));
      if (this.records.get(key)!.length === 0) this.records.delete(key);
      return echo;
    }
    return false;
  }

  /** Stops following; a later start reads the topic from its start again. */
  async stop(): Promise<void> {
    const started = this.started;
    this.started = undefined;
    await started?.catch(() => undefined);
    const [consumer, admin] = [this.consumer, this.admin];
    this.consumer = undefined;
    this.admin = undefined;
    await consumer?.disconnect().catch(() => undefined);
    await admin?.disconnect().catch(() => undefined);
    this.positions.clear();
    this.taken.clear();
    this.records.clear();
    this.failure = undefined;
    for (const wake of [...this.waiters]) wake();
  }
}
