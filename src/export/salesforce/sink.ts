import type { Batch, Kafka, KafkaMessage } from 'kafkajs';
import { BanyanError, type DeadLetter, type Json, type RowMapping } from '../../core';
import type { SalesforceClient } from '../../clients/salesforce/client';
import { sleep } from '../../core/time';
import type { GuardRow } from '../../dialects/dialect';
import type { DomainDecoder } from '../../domain/decoder';
import type { DomainEvent } from '../../domain/event';
import type { AvroEncoder } from '../../runtime/avro';
import type { ChangeTypes } from '../../runtime/change-types';
import { ConsumingPipeline, inputDeadLetter, type BatchControls, type ConsumingPipelineOptions, type OwnedPartition } from '../../runtime/consuming-pipeline';
import { readToEnd } from '../../runtime/kafka';
import type { Logger } from '../../runtime/logger';
import { RecordOutput } from '../../runtime/record-output';
import { writtenKey, writtenMessage, writtenTopic, type WrittenValue } from '../../runtime/salesforce-written';
import type { RunnerKafka } from '../../runtime/source-runner';
import { PRODUCER_FENCED, type TransactionalProducer } from '../../runtime/transactional-producer';
import { guardKey, newer, planBatch, type PlannedInput, type RowPlan } from '../plan';
import { reportLifecycle } from '../reports';
import { decodeBatch, type DecodedBatch } from '../decode';
import { ApiBudget } from './budget';
import { objectProblems, type DescribedField } from './fit';
import { SalesforceWriter, type RecordOutcome, type RecordWrite } from './writer';

export interface SalesforceSinkOptions extends ConsumingPipelineOptions {
  object: string;
  externalIdField: string;
  lingerMs: number;
  maxRecordsPerCall: number;
  bulk: { threshold: number; pollMs: number; maxPollMs: number };
  apiBudget: { share: number; slowFrom: number; recheckMs: number };
  retry: { attempts: number; minMs: number; maxMs: number };
}

export interface SalesforceSinkDeps {
  kafka: Kafka;
  runnerKafka: RunnerKafka;
  encoder: AvroEncoder;
  decoder: DomainDecoder;
  client: SalesforceClient;
  mapping: RowMapping;
  changeTypes: ChangeTypes;
  logger: Logger;
}

/** A record error Salesforce says may pass on a later try. */
const RETRIABLE_RECORD_ERRORS = new Set(['UNABLE_TO_LOCK_ROW', 'UNKNOWN_EXCEPTION', 'SERVER_UNAVAILABLE', 'REQUEST_RUNNING_TOO_LONG', 'UNPROCESSED', 'UNKNOWN_RESULT']);

/** One input batch waiting for the call that writes it. */
interface Pending {
  batch: Batch;
  messages: KafkaMessage[];
  events: Array<{ message: KafkaMessage; event: DomainEvent }>;
  letters: DeadLetter[];
  settle: { resolve: () => void; reject: (error: unknown) => void };
}

/** A record to write, with the plan row it comes from. */
interface Planned extends RecordWrite {
  row: RowPlan;
  /** The values the events know of the record, for a record that turns out not to exist yet. */
  known: Record<string, WrittenValue>;
  withKnown: boolean;
}

interface SinkCounts {
  /** Upserted: through Bulk, whose successful results (not read, to spare a call) would tell created from updated. */
  written: { created: number; updated: number; upserted: number };
  noops: number;
  stale: number;
  observed: number;
  reported: Record<string, number>;
  refusedRows: number;
  retriedRecords: number;
}

/**
 * The Salesforce sink: domain events written into the Salesforce records their mapping reads,
 * upserted by external id (docs/export-salesforce.md). Batches of every input partition wait
 * together (up to lingerMs) for one fuller call: sObject Collections, 200 records a call, or one
 * Bulk API 2.0 job for a backlog. Before it calls, the sink commits each record's fingerprint
 * (what it is about to write) to the written topic, which the CDC source follows to know the
 * change coming back as Banyan's own; after Salesforce answered, one Kafka transaction holds the
 * version guard's new state, the dead letters and the input offsets. The guard and the
 * lifecycle's rule are the legacy sink's (src/export/plan.ts), with Salesforce as the target.
 */
export class SalesforceSink extends ConsumingPipeline<OwnedPartition> {
  readonly kind = 'sink';
  private readonly output: RecordOutput;
  private readonly budget: ApiBudget;
  private readonly writer: SalesforceWriter;
  private readonly counts_: SinkCounts = { written: { created: 0, updated: 0, upserted: 0 }, noops: 0, stale: 0, observed: 0, reported: {}, refusedRows: 0, retriedRecords: 0 };
  /** The version guard: per entity, per field, the version of the value Salesforce holds. */
  private readonly guard = new Map<string, Map<string, GuardRow>>();
  /** What each record's fields hold as far as the sink knows (what it wrote, what Salesforce changed since): no-op suppression. */
  private readonly current = new Map<string, Map<string, KnownValue>>();
  private producer: TransactionalProducer | undefined;
  private readonly transactionalId: string;
  private pending: Pending[] = [];
  private flushing = false;
  private timer: NodeJS.Timeout | undefined;
  private budgetState = 'ok';
  private objectChecked = false;
  /** Batches being decoded now: the flush waits for them. */
  private decoding = 0;

  constructor(
    private readonly deps: SalesforceSinkDeps,
    protected override readonly options: SalesforceSinkOptions,
  ) {
    super(deps.kafka, deps.logger, options, 'sink');
    this.output = new RecordOutput(deps.encoder, (specs) => deps.runnerKafka.ensureTopics(specs), options);
    this.budget = new ApiBudget(options.apiBudget.share, options.apiBudget.slowFrom);
    this.writer = new SalesforceWriter(deps.client, {
      object: options.object,
      externalIdField: options.externalIdField,
      maxRecordsPerCall: options.maxRecordsPerCall,
      bulkPollMs: options.bulk.pollMs,
      bulkMaxPollMs: options.bulk.maxPollMs,
      admit: () => this.admit(),
      signal: this.abort.signal,
    });
    // One transactional producer for the sink (a flush spans partitions): a restarted sink fences the
    // one it replaces and aborts its open transaction at once. One instance per sink name
    // (docs/export-salesforce.md): a second one would fence the first.
    this.transactionalId = `${options.clientId}.sink.${options.name}`;
  }

  /** The compacted topic of this sink's version guard, keyed by entity. */
  get guardTopic(): string {
    return `${this.options.clientId}.sink.${this.options.name}.guard`;
  }

  get writtenTopic(): string {
    return writtenTopic(this.options.clientId);
  }

  protected extraDetails(): Record<string, Json> {
    const usage = this.deps.client.usage();
    const c = this.counts_;
    return {
      object: this.options.object,
      written: { ...c.written },
      noops: c.noops,
      stale: c.stale,
      observed: c.observed,
      reported: { ...c.reported },
      refusedRows: c.refusedRows,
      retriedRecords: c.retriedRecords,
      calls: { collections: this.writer.calls.collections, bulk: this.writer.calls.bulk },
      bulkJobs: this.writer.jobs.created,
      apiBudget: this.budget.details(),
      salesforceCalls: usage.calls,
      sessionRefreshes: usage.sessionRefreshes,
      waitingBatches: this.pending.length,
    };
  }

  protected async prepare(): Promise<void> {
    await Promise.all([
      this.output.ensureDeadLetterTopic(),
      this.output.ensureTopics(this.options.topics),
      this.output.ensureTopics([this.guardTopic, this.writtenTopic], undefined, true),
      this.checkObject(),
    ]);
    if (!this.producer) {
      const producer = this.deps.runnerKafka.producer(this.transactionalId);
      await producer.init();
      this.producer = producer;
    }
  }

  /** The object has the fields the mapping writes, and the external id to upsert by (once per process). */
  private async checkObject(): Promise<void> {
    if (this.objectChecked) return;
    const { object, externalIdField } = this.options;
    const describe = await this.deps.client.call('sink.describe', `describe ${object}`, (conn) => conn.describe(object), this.abort.signal);
    const problems = objectProblems(this.deps.mapping, object, describe.fields as unknown as DescribedField[], externalIdField);
    if (problems.length) {
      throw new BanyanError(`sink ${this.options.name}: mapping "${this.deps.mapping.name}" does not fit ${object}: ${problems.join('; ')}`, { retriable: false, stage: 'sending', code: 'MAPPING_MISMATCH' });
    }
    this.objectChecked = true;
  }

  override async stop(): Promise<void> {
    // Batches waiting for a flush are let go first: the consumer's disconnect waits for their handlers.
    this.abort.abort();
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const p of this.pending.splice(0)) p.settle.reject(new Error('the sink stopped'));
    await super.stop();
    await this.producer?.close().catch(() => undefined);
  }

  protected acquire(partitions: Array<{ topic: string; partition: number }>): OwnedPartition[] {
    const taken = partitions.map(({ topic, partition }): OwnedPartition => ({ topic, partition, next: 0n, fenced: false, ready: Promise.resolve() }));
    // The guard as the topic holds it (another instance may have written these entities' last), then the group's offsets.
    const positions = (async () => {
      await this.loadGuard();
      return this.groupOffsets([...new Set(partitions.map((p) => p.topic))]);
    })();
    for (const owned of taken) {
      owned.ready = positions.then((group) => {
        owned.next = group.get(`${owned.topic}/${owned.partition}`) ?? 0n;
        this.logger.info({ event: 'sink.partition_ready', topic: owned.topic, partition: owned.partition, offset: String(owned.next) }, 'input partition ready');
      });
    }
    return taken;
  }

  protected async release(): Promise<void> {
    // Nothing per partition: the producer is the instance's.
  }

  private async loadGuard(): Promise<void> {
    await readToEnd(this.kafka, this.guardTopic, (message) => {
      if (!message.key || !message.value) return;
      const fields = JSON.parse(message.value.toString()) as Record<string, GuardRow>;
      const known = this.guard.get(message.key.toString()) ?? new Map<string, GuardRow>();
      for (const [field, row] of Object.entries(fields)) if (newer(row, known.get(field))) known.set(field, row);
      this.guard.set(message.key.toString(), known);
    });
  }

  protected async handle(batch: Batch, messages: KafkaMessage[], owned: OwnedPartition, controls: BatchControls): Promise<void> {
    // While a batch is decoded the linger does not start: a large fetch (a backlog) is one flush.
    this.decoding++;
    let decoded: DecodedBatch;
    try {
      decoded = await decodeBatch(this.deps.decoder, this.source, batch, messages);
    } catch (error) {
      throw this.failed(error);
    } finally {
      this.decoding--;
      // The last batch decoded lets the waiting ones go (this one too, once it is in).
      if (this.decoding === 0) queueMicrotask(() => this.schedule());
    }
    const events = decoded.events.map(({ message, event }) => ({ message, event }));
    const letters = decoded.letters.map(({ letter }) => letter);
    const dropped: Record<string, number> = decoded.tombstones ? { tombstone: decoded.tombstones } : {};
    const flushed = new Promise<void>((resolve, reject) => {
      this.pending.push({ batch, messages, events, letters, settle: { resolve, reject } });
      this.schedule();
    });
    // A flush may take long (a Bulk job, retries, a paused budget): the group must not take this member for dead meanwhile.
    const beat = setInterval(() => void controls.heartbeat().catch(() => undefined), HEARTBEAT_MS);
    try {
      await flushed;
    } catch (error) {
      if ((error as { code?: string }).code === PRODUCER_FENCED) {
        // Another instance of this sink took its transactional id: it owns the work now.
        this.fence(owned, batch, controls, error);
        return;
      }
      throw this.failed(error);
    } finally {
      clearInterval(beat);
    }
    owned.next = BigInt(messages.at(-1)!.offset) + 1n;
    await this.committed(batch, messages, dropped, controls);
  }

  private get source(): string {
    return `sink:${this.options.name}`;
  }

  /**
   * Flushes now when the waiting events fill a call (or, when a backlog is under way, a Bulk job),
   * else when lingerMs has passed since the first of them; one flush at a time.
   */
  private schedule(): void {
    if (this.flushing || this.pending.length === 0 || this.decoding > 0) return;
    const events = this.pending.reduce((n, p) => n + p.events.length, 0);
    const behind = this.pending.reduce((n, p) => n + Number(p.batch.offsetLag()), 0);
    const { threshold } = this.options.bulk;
    // A backlog (what waits here and what the inputs still hold) goes to one Bulk job: wait for all of it that comes in lingerMs.
    const full = threshold > 0 && events + behind >= threshold ? events >= BULK_MAX_RECORDS : events >= this.options.maxRecordsPerCall;
    if (full) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.flush();
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.options.lingerMs);
    }
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.pending.length === 0) return;
    this.flushing = true;
    const items = this.pending.splice(0);
    try {
      await this.write(items);
      for (const item of items) item.settle.resolve();
    } catch (error) {
      for (const item of items) item.settle.reject(error);
    } finally {
      this.flushing = false;
      this.schedule();
    }
  }

  /** One flush: plan, fingerprints, the calls, then guard, dead letters and offsets in one transaction. */
  private async write(items: Pending[]): Promise<void> {
    const { mapping, changeTypes } = this.deps;
    const { object, externalIdField } = this.options;
    const all = items.flatMap((item) => item.events.map((e) => ({ item, ...e })));
    const inputs: PlannedInput[] = all.map(({ event }, index) => ({ index, event }));
    const letters: DeadLetter[] = items.flatMap((i) => i.letters);
    const where = (index: number) => {
      const { item, message } = all[index]!;
      return { topic: item.batch.topic, partition: item.batch.partition, offset: message.offset };
    };
    const refuse = (index: number, reason: string, code: string, stage: DeadLetter['stage']) => letters.push(inputDeadLetter(this.source, where(index), all[index]!.message, reason, stage, code));

    this.noteSalesforceValues(inputs);
    const guard = new Map<string, GuardRow>();
    for (const { event } of inputs) for (const [field, row] of this.guard.get(entityKey(event.entity, event.entityId)) ?? []) guard.set(guardKey(event.entity, event.entityId, field), row);
    const plan = planBatch(inputs, {
      mapping,
      primaryKey: [externalIdField],
      stateOf: (entity) => changeTypes.stateOf(entity),
      guard,
      parameter: (_column, value) => value,
      target: 'salesforce',
    });
    for (const r of plan.refused) refuse(r.index, `${object}: ${r.reason}`, r.code, 'processing');
    const dropped = { ...plan.dropped };
    /** Guard rows that hold once this flush commits. */
    const settled: GuardRow[] = [...plan.observed.values()];
    const toWrite: Planned[] = [];
    for (const row of plan.rows.values()) {
      if (row.delete && row.set.size === 0) {
        // Salesforce records are not deleted by Banyan (docs/export-salesforce.md): counted.
        dropped['delete:not-written'] = (dropped['delete:not-written'] ?? 0) + row.inputs.size;
        continue;
      }
      // A delete followed by new values in the same flush: the values are written, the delete is not.
      if (row.set.size === 0) continue;
      const externalId = String(row.key[0]);
      const values = Object.fromEntries(row.set) as Record<string, WrittenValue>;
      // Only a write back of Salesforce's own values (the restore rule) can be known to change nothing:
      // a Salesforce change still on its way may stand between the sink's last write and a new one.
      const restore = [...row.inputs].every((index) => inputs[index]!.event.origin === 'salesforce');
      const current = this.current.get(this.recordKey(externalId));
      if (restore && current && Object.entries(values).every(([field, value]) => current.has(field) && current.get(field)!.value === value)) {
        this.counts_.noops++;
        settled.push(...row.guard.values());
        continue;
      }
      toWrite.push({ externalId, values, row, known: Object.fromEntries(row.known) as Record<string, WrittenValue>, withKnown: false });
    }

    const outcomes = toWrite.length ? await this.send(toWrite) : new Map<string, { planned: Planned; outcome: RecordOutcome }>();
    const written: Array<{ planned: Planned; created: boolean | undefined; at: number }> = [];
    // When Salesforce answered: a Salesforce change committed after it was made on top of these writes.
    const answeredAt = Date.now();
    for (const { planned, outcome } of outcomes.values()) {
      if (outcome.ok) {
        written.push({ planned, created: outcome.created, at: answeredAt });
        settled.push(...planned.row.guard.values());
        continue;
      }
      this.counts_.refusedRows++;
      const fields = outcome.fields.length ? ` (fields: ${outcome.fields.join(', ')})` : '';
      for (const index of planned.row.inputs) {
        refuse(index, `${object} ${externalIdField}=${planned.externalId}: Salesforce refused the record: ${outcome.statusCode}: ${outcome.message}${fields}`, outcome.statusCode, 'sending');
      }
    }

    // Guard, dead letters and offsets in one transaction, after Salesforce answered.
    const touched = new Map<string, Map<string, GuardRow>>();
    for (const row of settled) {
      const key = entityKey(row.entity, row.entityId);
      const fields = touched.get(key) ?? new Map(this.guard.get(key) ?? []);
      if (newer(row, fields.get(row.field))) fields.set(row.field, row);
      touched.set(key, fields);
    }
    const extra = [...touched].map(([key, fields]) => ({ topic: this.guardTopic, key, value: JSON.stringify(Object.fromEntries(fields)) }));
    const offsets = new Map<string, { topic: string; partition: number; offset: bigint }>();
    for (const { batch, messages } of items) {
      const next = BigInt(messages.at(-1)!.offset) + 1n;
      const key = `${batch.topic}/${batch.partition}`;
      if ((offsets.get(key)?.offset ?? -1n) < next) offsets.set(key, { topic: batch.topic, partition: batch.partition, offset: next });
    }
    const prepared = await this.output.prepare(this.source, { records: [], deadLetters: letters, extra });
    const topics = new Map<string, Array<{ partition: number; offset: string }>>();
    for (const o of offsets.values()) topics.set(o.topic, [...(topics.get(o.topic) ?? []), { partition: o.partition, offset: String(o.offset) }]);
    await this.transact(prepared.requests, { consumerGroupId: this.groupId, topics: [...topics].map(([topic, partitions]) => ({ topic, partitions })) });

    // Committed: the sink's memory follows.
    for (const [key, fields] of touched) this.guard.set(key, fields);
    for (const { planned, created, at } of written) {
      this.counts_.written[created === undefined ? 'upserted' : created ? 'created' : 'updated']++;
      const key = this.recordKey(planned.externalId);
      const fields = this.current.get(key) ?? new Map<string, KnownValue>();
      for (const [field, value] of Object.entries(planned.values)) fields.set(field, { value, at });
      this.current.set(key, fields);
    }
    this.state.records += written.length;
    this.state.deadLetters += prepared.deadLetters.length;
    this.counts_.stale += plan.stale;
    this.counts_.observed += plan.observedFields;
    for (const [reason, count] of Object.entries(dropped)) this.counts.dropped[reason] = (this.counts.dropped[reason] ?? 0) + count;
    reportLifecycle(this.logger, this.counts_.reported, plan.reports);
    if (prepared.deadLetters.length) {
      this.logger.warn({ event: 'sink.dead_letters', count: prepared.deadLetters.length, reasons: prepared.deadLetters.slice(0, 3).map((d) => d.reason) }, 'events sent to the dead-letter topic');
    }
  }

  /**
   * A Salesforce-origin event says what a field holds now, if it committed after the sink's last
   * write of that field was answered; one that committed before it (the event and Banyan's write
   * crossed) leaves the field unknown: a write of it is then never taken for a no-op, so the
   * restore rule of the plan can put the newer value back. (A Salesforce clock ahead of Banyan's
   * can make a crossed change look later: docs/conflicts.md.)
   */
  private noteSalesforceValues(inputs: PlannedInput[]): void {
    for (const { event } of inputs) {
      if (event.origin !== 'salesforce') continue;
      const block = this.deps.mapping.blocks.find((b) => b.event === event.type);
      const id = block && event.entityKey[block.key[0]!.field];
      if (!block || id === undefined) continue;
      const key = this.recordKey(String(id));
      const fields = this.current.get(key) ?? new Map<string, KnownValue>();
      for (const f of block.fields) {
        if (!event.changedFields.includes(f.field)) continue;
        const known = fields.get(f.column);
        if (!known || event.sourceCommitTime > known.at) fields.set(f.column, { value: (event.data[f.field] ?? null) as WrittenValue, at: event.sourceCommitTime });
        else fields.delete(f.column);
      }
      this.current.set(key, fields);
    }
  }

  private recordKey(externalId: string): string {
    return writtenKey(this.options.object, this.options.externalIdField, externalId);
  }

  /**
   * Writes the records: fingerprints first (committed, so the CDC source knows them before the
   * change comes back), then the calls, then again those Salesforce answered with a retriable
   * error, with backoff. A record that does not exist yet and lacks a required field is tried once
   * more with every value its events know. Throws when records still fail after the tries.
   */
  private async send(records: Planned[]): Promise<Map<string, { planned: Planned; outcome: RecordOutcome }>> {
    const results = new Map<string, { planned: Planned; outcome: RecordOutcome }>();
    let todo = records;
    const { attempts, minMs, maxMs } = this.options.retry;
    // `attempt` counts the tries of retriable answers; the try with every known value is no retry.
    for (let attempt = 1, round = 1; ; round++) {
      await this.fingerprint(todo);
      // Bulk for a backlog, except values a CSV cannot carry faithfully ('#N/A' would null the field).
      const bulk = round === 1 && this.options.bulk.threshold > 0 && todo.length >= this.options.bulk.threshold;
      const viaBulk = bulk ? todo.filter((r) => !Object.values(r.values).some((v) => v === '#N/A')) : [];
      const viaCollections = bulk ? todo.filter((r) => !viaBulk.includes(r)) : todo;
      const answers = new Map<string, RecordOutcome>();
      if (viaBulk.length) for (const [id, outcome] of await this.writer.bulk(viaBulk)) answers.set(id, outcome);
      if (viaCollections.length) for (const [id, outcome] of await this.writer.collections(viaCollections)) answers.set(id, outcome);
      const retriable: Planned[] = [];
      const filled: Planned[] = [];
      for (const planned of todo) {
        const outcome = answers.get(planned.externalId)!;
        if (!outcome.ok && outcome.statusCode === 'REQUIRED_FIELD_MISSING' && !planned.withKnown && Object.keys(planned.known).some((f) => !(f in planned.values))) {
          // Upsert creates the record: nothing newer is there to keep, so what the events know fills it.
          filled.push({ ...planned, values: { ...planned.known, ...planned.values }, withKnown: true });
        } else if (!outcome.ok && RETRIABLE_RECORD_ERRORS.has(outcome.statusCode) && attempt < attempts) {
          retriable.push(planned);
        } else if (!outcome.ok && RETRIABLE_RECORD_ERRORS.has(outcome.statusCode)) {
          // Still failing after every try: dead-lettered with Salesforce's last answer; the rest of the flush goes on.
          results.set(planned.externalId, { planned, outcome: { ...outcome, message: `${outcome.message} (still so after ${attempts} tries)` } });
        } else {
          results.set(planned.externalId, { planned, outcome });
        }
      }
      const again = [...filled, ...retriable];
      if (again.length === 0) return results;
      this.counts_.retriedRecords += retriable.length;
      if (retriable.length) {
        const wait = Math.min(maxMs, minMs * 2 ** (attempt - 1));
        attempt++;
        this.logger.warn({ event: 'sink.records_retry', count: retriable.length, attempt, waitMs: wait }, `${retriable.length} records to try again in ${wait} ms`);
        await sleep(wait, this.abort.signal);
        if (this.abort.signal.aborted) throw new Error('the sink stopped');
      }
      todo = again;
    }
  }

  /** Commits what the sink is about to write to each record, before it writes it. */
  private async fingerprint(records: Planned[]): Promise<void> {
    const at = Date.now();
    const { object, externalIdField } = this.options;
    const extra = records.map((r) => ({ topic: this.writtenTopic, ...writtenMessage({ object, externalIdField, externalId: r.externalId, values: r.values, at, sink: this.options.name }) }));
    const prepared = await this.output.prepare(this.source, { records: [], deadLetters: [], extra });
    await this.transact(prepared.requests);
  }

  private async transact(...args: Parameters<TransactionalProducer['commitTransaction']>): Promise<void> {
    // The producer starts itself again after a failed transaction; once fenced it refuses to write.
    await this.producer!.commitTransaction(...args);
  }

  /**
   * Before every call: the API budget (Sforce-Limit-Info of the last answer). Slowing, it waits
   * lingerMs × 10; paused, it asks the org's usage again every recheckMs until it may go on.
   */
  private async admit(): Promise<void> {
    for (;;) {
      this.budget.observe(this.deps.client.usage().apiUsage);
      const { state, used, max, share } = this.budget.details();
      if (state !== this.budgetState) {
        this.budgetState = state;
        this.logger[state === 'ok' ? 'info' : 'warn'](
          { event: 'sink.api_budget', state, used, max, share },
          state === 'ok' ? 'Salesforce API budget: going at full speed again' : `Salesforce API budget: ${used}/${max} used, this sink's share is ${share * 100}%: ${state}`,
        );
      }
      if (state === 'ok' || this.abort.signal.aborted) return;
      if (state === 'slowing') {
        await sleep(Math.max(this.options.lingerMs * 10, 100), this.abort.signal);
        return;
      }
      await sleep(this.options.apiBudget.recheckMs, this.abort.signal);
      if (this.abort.signal.aborted) return;
      await this.deps.client.call('sink.limits', 'read the org limits', (conn) => conn.request({ method: 'GET', url: '/limits' }), this.abort.signal);
    }
  }
}

/** A field's value as the sink last knew it, and from when (Banyan's clock for its writes, Salesforce's commit time for its changes). */
interface KnownValue {
  value: WrittenValue;
  at: number;
}

/** How often a batch waiting for its flush tells the group its member is alive. */
const HEARTBEAT_MS = 3_000;

/** Records one Bulk job takes at most here (Salesforce's limit is 150 MB of CSV). */
const BULK_MAX_RECORDS = 50_000;

function entityKey(entity: string, entityId: string): string {
  return `${entity}/${entityId}`;
}
