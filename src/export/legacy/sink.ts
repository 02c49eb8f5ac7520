import type { Batch, Kafka, KafkaMessage } from 'kafkajs';
import type { Knex } from 'knex';
import { BanyanError, type DeadLetter, type Json, type RowMapping } from '../../core';
import type { Dialect, GuardRow, SqlStatement, TableInfo } from '../../dialects/dialect';
import { databaseMessage, isRetriableDatabaseError } from '../../dialects/errors';
import { columnOf } from '../../dialects/shared-writes';
import { parseTableName } from '../../dialects/shared-catalog';
import type { DomainDecoder } from '../../domain/decoder';
import type { AvroEncoder } from '../../runtime/avro';
import type { ChangeTypes } from '../../runtime/change-types';
import { ConsumingPipeline, inputDeadLetter, type BatchControls, type ConsumingPipelineOptions, type OwnedPartition } from '../../runtime/consuming-pipeline';
import { worthRetrying } from '../../runtime/kafka';
import type { Logger } from '../../runtime/logger';
import { RecordOutput } from '../../runtime/record-output';
import type { RunnerKafka } from '../../runtime/source-runner';
import { PRODUCER_FENCED, type TransactionalProducer } from '../../runtime/transactional-producer';
import { decodeBatch, type DecodedBatch } from '../decode';
import { reportLifecycle } from '../reports';
import { guardKey, mappingProblems, planBatch, rowsTouched, withUnwritableColumns, type Plan, type PlannedInput, type RowPlan } from '../plan';

export interface LegacySinkOptions extends ConsumingPipelineOptions {
  /** The legacy table, as written in the config (`public.users`). */
  table: string;
  /** The tag the changelog trigger records for Banyan's writes (the importer drops them as echoes). */
  originTag: string;
  softDelete?: { column: string; value: unknown };
  /** How long a row that cannot be inserted yet (a NOT NULL column without a value) waits; 0: dead-lettered at once. */
  missingRowWaitMs: number;
}

export interface LegacySinkDeps {
  kafka: Kafka;
  runnerKafka: RunnerKafka;
  encoder: AvroEncoder;
  decoder: DomainDecoder;
  db: Knex;
  dialect: Dialect;
  mapping: RowMapping;
  changeTypes: ChangeTypes;
  logger: Logger;
}

/** One input partition: its producer (dead letters, fencing a previous owner's) and its next offset. */
interface SinkPartition extends OwnedPartition {
  producer: TransactionalProducer;
}

/** What the sink did, for status and metrics. */
interface SinkCounts {
  /** Rows the database changed: updated, inserted, deleted. */
  updated: number;
  inserted: number;
  deleted: number;
  /** Rows a batch would have written with the values they already hold: no write (no-op suppression). */
  noops: number;
  /** Fields an event carried that the guard already held a newer or the same version of. */
  stale: number;
  /** Legacy-origin fields recorded in the guard without a write. */
  observed: number;
  /** Events reported instead of written, by lifecycle reason. */
  reported: Record<string, number>;
  /** Rows the database refused (dead-lettered with its error). */
  refusedRows: number;
  /** Missing rows waiting now for the values of their NOT NULL columns. */
  waitingRows: number;
}

/**
 * The legacy sink: domain events written back into the legacy table their mapping reads, in one
 * database transaction per input batch that holds the rows, the version guard and the partition's
 * next offset (docs/export-legacy.md). Every write is tagged with the origin tag, so the changelog
 * marks it and the importer drops it as an echo; a write that would change nothing is not made.
 * Consumer-group offsets are committed after the database commit, for lag tools; the position is
 * the one in the database.
 */
export class LegacySink extends ConsumingPipeline<SinkPartition> {
  readonly kind = 'sink';
  private readonly output: RecordOutput;
  private readonly sinkCounts: SinkCounts = { updated: 0, inserted: 0, deleted: 0, noops: 0, stale: 0, observed: 0, reported: {}, refusedRows: 0, waitingRows: 0 };
  private table: TableInfo | undefined;
  /** The mapping as this table lets it be written (withUnwritableColumns), from prepare() on. */
  private mapping: RowMapping | undefined;
  /** When a missing row that cannot be inserted yet was first seen, by row id. */
  private readonly waitingSince = new Map<string, number>();

  constructor(
    private readonly deps: LegacySinkDeps,
    protected override readonly options: LegacySinkOptions,
  ) {
    super(deps.kafka, deps.logger, options, 'sink');
    this.output = new RecordOutput(deps.encoder, (specs) => deps.runnerKafka.ensureTopics(specs), options);
  }

  private get schema(): string | undefined {
    return this.table?.schema;
  }

  protected extraDetails(): Record<string, Json> {
    const c = this.sinkCounts;
    return {
      table: this.options.table,
      written: { updated: c.updated, inserted: c.inserted, deleted: c.deleted },
      noops: c.noops,
      stale: c.stale,
      observed: c.observed,
      reported: { ...c.reported },
      refusedRows: c.refusedRows,
      waitingRows: c.waitingRows,
    };
  }

  transactionalId(topic: string, partition: number): string {
    return `${this.options.clientId}.sink.${this.options.name}.${topic}.${partition}`;
  }

  /** The table described and checked against the mapping, Banyan's sink tables made, the dead-letter topic made. */
  protected async prepare(): Promise<void> {
    const { db, dialect, mapping } = this.deps;
    const [table] = await Promise.all([
      dialect.describeTable(db, parseTableName(this.options.table)),
      this.output.ensureDeadLetterTopic(),
      // A domain topic no service has written yet is made, so the sink can join its group before the first event.
      this.output.ensureTopics(this.options.topics),
    ]);
    const problems = mappingProblems(mapping, table, this.options.softDelete?.column);
    if (problems.length) {
      throw new BanyanError(`sink ${this.options.name}: mapping "${mapping.name}" does not fit table ${this.options.table}: ${problems.join('; ')}`, { retriable: false, stage: 'sending', code: 'MAPPING_MISMATCH' });
    }
    for (const statement of dialect.writes.sinkTables(table.schema)) await db.raw(statement);
    this.mapping = withUnwritableColumns(mapping, table, dialect.writes.unwritable);
    this.table = table;
  }

  protected acquire(partitions: Array<{ topic: string; partition: number }>): SinkPartition[] {
    const taken = partitions.map(({ topic, partition }): SinkPartition => ({
      topic,
      partition,
      producer: this.deps.runnerKafka.producer(this.transactionalId(topic, partition)),
      next: 0n,
      fenced: false,
      ready: Promise.resolve(),
    }));
    const positions = (async () => {
      await Promise.all(taken.map((p) => p.producer.init()));
      const topics = [...new Set(partitions.map((p) => p.topic))];
      const [stored, { group, extents }] = await Promise.all([this.storedOffsets(), this.positions(topics)]);
      return { stored, group, extents };
    })();
    for (const owned of taken) {
      owned.ready = positions.then(async ({ stored, group, extents }) => {
        const key = `${owned.topic}/${owned.partition}`;
        // The database's offset is written with the rows; the group's after them, so it is never ahead unless the tables were dropped.
        const fromDb = stored.get(key) ?? 0n;
        const fromGroup = group.get(key) ?? 0n;
        const known = stored.has(key) || group.has(key);
        // The database outlives the topic when the topic is made again (or Kafka replaced): checked against the partition's extent.
        this.checkPosition(owned, known ? (fromDb > fromGroup ? fromDb : fromGroup) : undefined, extents.get(key));
        if (owned.rewind && fromDb > owned.next) {
          // Offsets never move back when written with rows (a zombie's older one must not win), so
          // the reset is written here, or the stale one would stay, be reset at every start, and
          // once the new topic passed it, skip what lies between.
          const { db, dialect } = this.deps;
          const statement = dialect.writes.resetOffset(this.schema, this.options.name, { topic: owned.topic, partition: owned.partition, next: String(owned.next) });
          await db.raw(statement.sql, statement.bindings as Knex.RawBinding[]);
        }
        this.logger.info({ event: 'sink.partition_ready', topic: owned.topic, partition: owned.partition, offset: String(owned.next) }, 'input partition ready');
      });
    }
    return taken;
  }

  protected async release(partitions: SinkPartition[]): Promise<void> {
    await Promise.all(partitions.map((p) => p.producer.close().catch(() => undefined)));
  }

  private async storedOffsets(): Promise<Map<string, bigint>> {
    const { db, dialect } = this.deps;
    const statement = dialect.writes.readOffsets(this.schema, this.options.name);
    const rows = dialect.writes.resultRows(await db.raw(statement.sql, statement.bindings as Knex.RawBinding[]));
    return new Map(rows.map((r) => [`${String(r.topic)}/${Number(r.kafka_partition)}`, BigInt(String(r.next_offset))]));
  }

  protected async handle(batch: Batch, messages: KafkaMessage[], owned: SinkPartition, controls: BatchControls): Promise<void> {
    let decoded: DecodedBatch;
    try {
      decoded = await decodeBatch(this.deps.decoder, this.source, batch, messages);
    } catch (error) {
      throw this.failed(error);
    }
    const inputs: PlannedInput[] = decoded.events.map(({ index, event }) => ({ index, event }));
    const deadLetters = decoded.letters;
    const dropped: Record<string, number> = decoded.tombstones ? { tombstone: decoded.tombstones } : {};
    let outcome: BatchOutcome;
    try {
      outcome = await this.write(batch, messages, inputs, deadLetters, owned);
    } catch (error) {
      if ((error as { code?: string }).code === PRODUCER_FENCED) {
        this.fence(owned, batch, controls, error);
        return;
      }
      if (!isRetriableDatabaseError(error) && !worthRetrying(error)) {
        this.logger.error({ event: 'sink.batch_error', err: error, topic: batch.topic, partition: batch.partition }, 'sink batch failed with an error that is not known to pass; it is tried again');
      }
      throw this.failed(error);
    }
    owned.next = outcome.next;
    for (const [reason, count] of Object.entries(outcome.plan.dropped)) dropped[reason] = (dropped[reason] ?? 0) + count;
    await this.commitGroupOffset(batch.topic, batch.partition, outcome.next).catch((error: unknown) =>
      this.logger.warn({ event: 'sink.group_commit_failed', err: error }, 'the consumer group offset could not be committed (the database holds the position)'),
    );
    const handled = messages.filter((m) => BigInt(m.offset) < outcome.next);
    if (handled.length) await this.committed(batch, handled, dropped, controls);
    if (outcome.next <= BigInt(messages.at(-1)!.offset)) {
      // A row waits for the events that complete it: this partition is read again from its first
      // event a moment later, paused meanwhile (not asleep here: the other partitions go on).
      this.seek(batch.topic, batch.partition, outcome.next);
      const resume = controls.pause();
      setTimeout(() => {
        try {
          resume();
        } catch {
          // Stopped or rebalanced meanwhile: a new assignment resumes its partitions itself.
        }
      }, Math.min(1000, this.options.missingRowWaitMs)).unref();
    }
  }

  private get source(): string {
    return `sink:${this.options.name}`;
  }

  /** One database transaction: guard read, plan, rows, guard, offset, dead letters (Kafka), commit. */
  private async write(
    batch: Batch,
    messages: KafkaMessage[],
    inputs: PlannedInput[],
    undecodable: Array<{ index: number; letter: DeadLetter }>,
    owned: SinkPartition,
  ): Promise<BatchOutcome> {
    const { db, dialect } = this.deps;
    const table = this.table!;
    const writes = dialect.writes;
    const counts = { updated: 0, inserted: 0, deleted: 0, noops: 0, refusedRows: 0 };
    const refusedRows = new Set<RowPlan>();
    const letters = [...undecodable];
    const where = (index: number) => ({ topic: batch.topic, partition: batch.partition, offset: messages[index]!.offset });
    const refuse = (index: number, reason: string, code: string, stage: DeadLetter['stage']) =>
      letters.push({ index, letter: inputDeadLetter(this.source, where(index), messages[index]!, reason, stage, code) });
    let waitingFrom: number | undefined;
    let plan!: Plan;
    let deadLettered = 0;
    /** The partition's next offset, as this transaction writes it. */
    let next = 0n;
    let seen: Set<string> = new Set();

    const trxConfig = writes.isolation ? { isolationLevel: writes.isolation } : {};
    await db.transaction(async (trx) => {
      const raw = (s: SqlStatement) => trx.raw(s.sql, s.bindings as Knex.RawBinding[]);
      await dialect.setOrigin(trx, this.options.originTag);
      try {
        // The rows first, then the guard: a writer of the same rows (another instance that has not
        // learnt it lost the partition) commits before this one reads the guard, so the versions it
        // wrote are the ones compared here.
        const existing = await this.lockRows(raw, rowsTouched(inputs, this.mapping!, table.primaryKey));
        seen = new Set(existing);
        const guard = await this.readGuard(raw, inputs);
        const planOf = (some: PlannedInput[]) =>
          planBatch(some, {
            mapping: this.mapping!,
            primaryKey: table.primaryKey,
            stateOf: (entity) => this.deps.changeTypes.stateOf(entity),
            guard: new Map(guard),
            ...(this.options.softDelete ? { softDelete: this.options.softDelete } : {}),
            parameter: (column, value) => writes.parameter(columnOf(table, column), value),
          });
        // A missing row that cannot be inserted yet and may still wait cuts the batch before its
        // first event: what comes before is written and committed, the rest is read again later.
        plan = planOf(inputs);
        for (let waiting = this.waiting(plan, existing); waiting !== undefined; waiting = this.waiting(plan, existing)) {
          waitingFrom = waiting;
          plan = planOf(inputs.filter((i) => i.index < waiting));
        }
        for (const r of plan.refused) refuse(r.index, `${table.name}: ${r.reason}`, r.code, 'processing');
        const rows = [...plan.rows.values()].filter((r) => r.delete || r.set.size > 0);

        /** Runs a statement over rows; a row the database refuses is found alone (savepoints) and dead-lettered. */
        const run = async (group: RowPlan[], build: (rows: RowPlan[]) => SqlStatement): Promise<number> => {
          try {
            return await trx.transaction(async (sp) => {
              const statement = build(group);
              return writes.changedRows(await sp.raw(statement.sql, statement.bindings as Knex.RawBinding[]));
            });
          } catch (error) {
            if (!writes.isRowRefusal(error)) throw error;
            if (group.length > 1) {
              let changed = 0;
              for (const row of group) changed += await run([row], build);
              return changed;
            }
            const row = group[0]!;
            refusedRows.add(row);
            counts.refusedRows++;
            const code = writes.refusalCode(error);
            for (const index of row.inputs) {
              refuse(index, `${table.name} ${row.id}: the database refused the row: ${code} ${databaseMessage(error)}`, code, 'sending');
            }
            return 0;
          }
        };

        // Deletes first: a row deleted and written again in the same batch is inserted anew.
        const deletes = rows.filter((r) => r.delete && existing.has(r.id));
        for (const chunk of chunks(deletes, writes.maxRows(table.primaryKey.length))) {
          counts.deleted += await run(chunk, (g) => writes.deleteRows(table, g.map((r) => r.key)));
        }
        // A refused delete leaves its row, and the row's later writes wait with it (dead-lettered together).
        for (const r of deletes) if (!refusedRows.has(r)) existing.delete(r.id);

        const updates = rows.filter((r) => r.set.size > 0 && existing.has(r.id) && !refusedRows.has(r));
        for (const [columns, group] of byColumns(updates, (r) => [...r.set.keys()])) {
          for (const chunk of chunks(group, writes.maxRows(table.primaryKey.length + columns.length))) {
            const changed = await run(chunk, (g) => writes.updateRows(table, columns, g.map((r) => [...r.key, ...columns.map((c) => r.set.get(c))])));
            counts.updated += changed;
            counts.noops += chunk.filter((r) => !refusedRows.has(r)).length - changed;
          }
        }

        const inserts: RowPlan[] = [];
        for (const r of rows) {
          if (r.set.size === 0 || existing.has(r.id) || refusedRows.has(r)) continue;
          if (!r.insertable) {
            // Only legacy values written back, and the row is gone: the legacy side deleted it.
            counts.noops++;
            continue;
          }
          const lacking = lackingColumns(table, r);
          if (lacking.length === 0) {
            inserts.push(r);
            continue;
          }
          // Waited long enough (waiting() let it through): dead-lettered.
          this.waitingSince.delete(r.id);
          refusedRows.add(r);
          for (const index of r.inputs) {
            refuse(index, `${table.name} ${r.id}: the row does not exist and the events give no value for its NOT NULL column(s) ${lacking.join(', ')} (waited ${this.options.missingRowWaitMs} ms)`, 'ROW_INCOMPLETE', 'sending');
          }
        }
        for (const r of inserts) this.waitingSince.delete(r.id);
        for (const [columns, group] of byColumns(inserts, (r) => insertColumns(table, r))) {
          for (const chunk of chunks(group, writes.maxRows(columns.length))) {
            counts.inserted += await run(chunk, (g) => writes.insertRows(table, columns, g.map((r) => columns.map((c, i) => (i < table.primaryKey.length && c === table.primaryKey[i] ? r.key[i] : r.set.has(c) ? r.set.get(c) : r.known.get(c))))));
          }
        }

        // The guard: what was observed, and what the rows that were written now hold.
        const guardRows: GuardRow[] = [...plan.observed.values()];
        for (const r of plan.rows.values()) if (!refusedRows.has(r)) guardRows.push(...r.guard.values());
        for (const chunk of chunks(guardRows, writes.maxRows(7))) await raw(writes.writeGuard(table.schema, chunk));

        next = waitingFrom === undefined ? BigInt(messages.at(-1)!.offset) + 1n : BigInt(messages[waitingFrom]!.offset);
        await raw(writes.writeOffsets(table.schema, this.options.name, [{ topic: batch.topic, partition: batch.partition, next: String(next) }]));

        // Dead letters before the database commits: a crash in between sends them again, never loses them.
        const sent = letters.filter((l) => waitingFrom === undefined || l.index < waitingFrom).map((l) => l.letter);
        if (sent.length) {
          const prepared = await this.output.prepare(this.source, { records: [], deadLetters: sent });
          await owned.producer.commitTransaction(prepared.requests);
          deadLettered = sent.length;
          this.logger.warn({ event: 'sink.dead_letters', count: sent.length, reasons: sent.slice(0, 3).map((d) => d.reason) }, 'events sent to the dead-letter topic');
        }
      } finally {
        // A MySQL session variable outlives the transaction: it must not tag the pool's next user.
        await dialect.clearOrigin(trx).catch(() => undefined);
      }
    }, trxConfig);

    // Counted once the database committed (a retried batch is not counted twice).
    this.state.deadLetters += deadLettered;
    // A row that exists waits no more (an address whose user row arrived from the other topic).
    for (const id of seen) this.waitingSince.delete(id);
    const c = this.sinkCounts;
    c.updated += counts.updated;
    c.inserted += counts.inserted;
    c.deleted += counts.deleted;
    c.noops += counts.noops;
    c.refusedRows += counts.refusedRows;
    c.stale += plan.stale;
    c.observed += plan.observedFields;
    c.waitingRows = this.waitingSince.size;
    this.state.records += counts.updated + counts.inserted + counts.deleted;
    reportLifecycle(this.logger, c.reported, plan.reports);
    return { next, plan };
  }

  /**
   * The first input of the missing rows of `plan` that cannot be inserted yet (a NOT NULL column
   * without a value) and may still wait; undefined when none may. Starts their wait clocks.
   */
  private waiting(plan: Plan, existing: Set<string>): number | undefined {
    const table = this.table!;
    let first: number | undefined;
    for (const r of plan.rows.values()) {
      // A row this batch deletes is missing for the writes that follow the delete.
      if (r.set.size === 0 || !r.insertable || (existing.has(r.id) && !r.delete) || lackingColumns(table, r).length === 0) continue;
      const since = this.waitingSince.get(r.id) ?? Date.now();
      this.waitingSince.set(r.id, since);
      if (Date.now() - since >= this.options.missingRowWaitMs) continue;
      const at = Math.min(...r.inputs);
      first = first === undefined ? at : Math.min(first, at);
    }
    return first;
  }

  /** The guard rows of the batch's entities. */
  private async readGuard(raw: (s: SqlStatement) => Promise<unknown>, inputs: PlannedInput[]): Promise<Map<string, GuardRow>> {
    const writes = this.deps.dialect.writes;
    const entities = new Map<string, [string, string]>();
    for (const { event } of inputs) entities.set(`${event.entity}\u0000${event.entityId}`, [event.entity, event.entityId]);
    const guard = new Map<string, GuardRow>();
    for (const chunk of chunks([...entities.values()], writes.maxRows(2))) {
      for (const r of writes.resultRows(await raw(writes.readGuard(this.schema, chunk)))) {
        const row: GuardRow = {
          entity: String(r.entity),
          entityId: String(r.entity_id),
          field: String(r.field),
          versionMs: Number(r.version_ms),
          origin: String(r.origin),
          eventId: String(r.event_id),
          written: r.written === true || Number(r.written) === 1,
        };
        guard.set(guardKey(row.entity, row.entityId, row.field), row);
      }
    }
    return guard;
  }

  /** Locks the rows the batch may write that exist; their ids. */
  private async lockRows(raw: (s: SqlStatement) => Promise<unknown>, rows: Array<{ key: unknown[]; id: string }>): Promise<Set<string>> {
    const writes = this.deps.dialect.writes;
    const table = this.table!;
    const existing = new Set<string>();
    const sorted = [...rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const chunk of chunks(sorted, writes.maxRows(table.primaryKey.length))) {
      for (const r of writes.resultRows(await raw(writes.lockRows(table, chunk.map((row) => row.key))))) {
        existing.add(JSON.stringify(table.primaryKey.map((_, i) => String(r[`k${i}`]))));
      }
    }
    return existing;
  }
}

interface BatchOutcome {
  /** The partition's next offset as committed. */
  next: bigint;
  plan: Plan;
}

/** The NOT NULL columns without a default that an insert of the row would leave out. */
function lackingColumns(table: TableInfo, row: RowPlan): string[] {
  const columns = insertColumns(table, row);
  return table.columns.filter((c) => !c.nullable && !c.hasDefault && !columns.includes(c.name)).map((c) => c.name);
}

/** The columns an insert of the row writes: the key, then what is set, then what is known. */
function insertColumns(table: TableInfo, row: RowPlan): string[] {
  const columns = [...table.primaryKey];
  for (const c of row.set.keys()) if (!columns.includes(c)) columns.push(c);
  for (const c of row.known.keys()) if (!columns.includes(c)) columns.push(c);
  return columns;
}

/** Rows grouped by the columns they write (sorted, so one statement serves each set). */
function byColumns(rows: RowPlan[], columnsOf: (row: RowPlan) => string[]): Map<string[], RowPlan[]> {
  const groups = new Map<string, { columns: string[]; rows: RowPlan[] }>();
  for (const row of rows) {
    const columns = columnsOf(row);
    const key = JSON.stringify(columns);
    const group = groups.get(key) ?? { columns, rows: [] };
    group.rows.push(row);
    groups.set(key, group);
  }
  return new Map([...groups.values()].map((g) => [g.columns, g.rows]));
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}


