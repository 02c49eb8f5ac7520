import type { Knex } from 'knex';
import {
  BadRecordError,
  BanyanError,
  errorMessage,
  Headers,
  partitionKey,
  type DeadLetter,
  type Json,
  type PollResult,
  type Source,
  type SourceRecord,
  type StartOffsets,
} from '../../core';
import type { ChangeRow, Dialect, Position, Snapshot, TableInfo, TableRef } from '../../dialects/dialect';
import type { Logger } from '../../runtime/logger';
import { sleep } from '../../core/time';
import { AvroOutput } from '../../runtime/avro-output';
import { changeEncoder, tableSchemas, type ChangeEncoder, type TableSchemas } from './avro';
import { classifyDatabaseError, DATABASE_WENT_BACK } from '../../dialects/errors';
import { parseTableName } from '../../dialects/shared-catalog';
import { SchemaWatch } from './schema-watch';
import { changelogTopic, type ChangelogSourceConfig } from './config';

export interface ChangelogSourceDeps {
  db: Knex;
  dialect: Dialect;
  /** The database's name in the config (`databases.<name>`); part of topic and namespace. */
  databaseName: string;
  originTag: string;
  /**
   * The writer whose `originTag` marks an echo (`databases.<name>.originUser`, else its `user`;
   * see Dialect.isTrustedWriter). Absent: the user the `db` pool logs in as.
   */
  originUser?: string;
  logger: Logger;
  now?: () => number;
}

/** What a changelog row's origin tag says: Banyan's own write, a tag someone else set, or no tag of Banyan's. */
type Tag = 'echo' | 'forged' | undefined;

const OPERATIONS: Record<ChangeRow['op'], 'insert' | 'update' | 'delete'> = { I: 'insert', U: 'update', D: 'delete' };

/**
 * The changelog poller: one per legacy table. Reads what the dialect says can no longer change,
 * first a consistent snapshot of the rows that already exist (when no offset is stored), then the
 * changelog, and hands them to the runner as records with their new position. It knows no
 * database: everything specific sits in the dialect.
 *
 * Offset: `{ phase: 'snapshot', changes, rows }` while the snapshot is emitted (a restart in that
 * phase snapshots again from the start; snapshot records are whole-row states, so a repeat only
 * restates them), then `{ phase: 'changes', position }`.
 */
export class ChangelogSource implements Source {
  readonly name: string;
  private readonly ref: TableRef;
  private readonly topic: string;
  /** The one partition this source reads: the key its offsets are stored under. */
  private readonly partition: Record<string, Json>;
  private readonly now: () => number;
  private table: TableInfo | undefined;
  private knownColumns = new Set<string>();
  private schemas: TableSchemas | undefined;
  private encoder!: ChangeEncoder;
  private position: Position | undefined;
  /** What the last snapshot could not list (SQL Server, an open transaction pinning the watermark), for /status. */
  private handover: Snapshot['handover'];
  /** The database was found behind the stored position (a restore): this source reads no more. */
  private wentBack: BanyanError | undefined;
  private snapshot: Snapshot | undefined;
  private snapshotRows = 0;
  private lastProgressLog = 0;
  private lastPrune = 0;
  private readonly schemaWatch: SchemaWatch;
  /** Set by a connect that succeeded, cleared by close: a source that is not connected is never polled. */
  private connected = false;
  private readonly trustedWriter: string;
  /** Writers already judged (the trigger records the same few names over and over). */
  private readonly writers = new Map<string, boolean>();
  /** Changelog rows committed to Kafka that carried Banyan's tag: from Banyan's user (echoes), from anyone else (forged). */
  private echoes = 0;
  private forgedTags = 0;

  constructor(
    private readonly config: ChangelogSourceConfig,
    private readonly deps: ChangelogSourceDeps,
  ) {
    this.name = config.name;
    this.ref = parseTableName(config.table);
    this.topic = changelogTopic(config);
    this.partition = { database: deps.databaseName, table: config.table };
    this.now = deps.now ?? Date.now;
    this.trustedWriter = deps.originUser ?? poolUser(deps.db);
    this.schemaWatch = new SchemaWatch({
      db: deps.db,
      dialect: deps.dialect,
      table: config.table,
      ref: this.ref,
      autoMigrate: config.autoMigrate,
      intervalMs: config.schemaCheckIntervalMs,
      logger: deps.logger,
      now: this.now,
    });
  }

  async connect(start: StartOffsets): Promise<void> {
    // Nothing read before survives a connect: the position comes from `start` alone.
    await this.close();
    try {
      await this.describe();
      await this.schemaWatch.check(this.table);
      const stored = start.get(partitionKey(this.name, this.partition)) as
        | { phase: 'snapshot' | 'changes'; position?: Position; changes?: Position }
        | undefined;
      if (stored?.phase === 'changes') {
        this.position = stored.position;
      } else if (this.config.snapshot) {
        await this.beginSnapshot();
      }
    } catch (error) {
      await this.close();
      throw classifyDatabaseError(error, `connecting source ${this.name} to ${this.config.table}`);
    }
    this.connected = true;
  }

  /** Reads the table's columns and derives the schemas and converters from them. */
  private async describe(): Promise<void> {
    const table = await this.deps.dialect.describeTable(this.deps.db, this.ref);
    this.table = table;
    this.knownColumns = new Set(table.columns.map((c) => c.name));
    this.schemas = tableSchemas(table, this.deps.databaseName);
    this.encoder = changeEncoder(table, this.deps.databaseName, this.config.table, this.config.invalidDates);
  }

  /**
   * A column added to the legacy table shows up in the images once `banyan migrate` has recreated
   * the triggers. Then the table is described again and the evolved schema (the new field is
   * optional, so the change is BACKWARD compatible) is registered with the next record.
   */
  private async evolveIfNeeded(rows: ChangeRow[]): Promise<void> {
    if (!rows.some((r) => this.hasUnknownColumn(r.after ?? r.before))) return;
    const before = this.table!.columns.map((c) => c.name);
    await this.describe();
    const added = this.table!.columns.map((c) => c.name).filter((c) => !before.includes(c));
    this.deps.logger.info({ event: 'schema.evolved', table: this.config.table, added }, `table ${this.config.table} gained columns: ${added.join(', ')}`);
  }

  private hasUnknownColumn(image: Record<string, unknown> | null): boolean {
    for (const column in image) if (!this.knownColumns.has(column)) return true;
    return false;
  }

  private async beginSnapshot(): Promise<void> {
    this.snapshot = await this.deps.dialect.openSnapshot(this.deps.db, this.table!, this.now());
    this.snapshotRows = 0;
    this.handover = this.snapshot.handover;
    if (this.handover) {
      this.deps.logger.warn(
        { event: 'snapshot.pinned', table: this.config.table, ...this.handover },
        `snapshot of ${this.config.table}: an open transaction held the watermark back while ${this.handover.duplicatesPossible} more changes committed than the snapshot lists; they may be delivered again after it (pinning transaction: ${JSON.stringify(this.handover.pinningTransaction)})`,
      );
    }
    this.deps.logger.info(
      { event: 'snapshot.started', table: this.config.table, estimatedRows: this.snapshot.estimatedRows },
      `snapshot of ${this.config.table} started (about ${this.snapshot.estimatedRows} rows)`,
    );
  }

  async poll(signal: AbortSignal): Promise<PollResult> {
    if (!this.connected) {
      throw new BanyanError(`${this.config.table} is polled while not connected`, { retriable: true, stage: 'receiving', code: 'NOT_CONNECTED' });
    }
    if (this.snapshot) return this.pollSnapshot(this.snapshot);
    // Once the database was found behind the position, it stays so for this process: a counter that
    // caught up meanwhile would pass the check and skip the changes made in between.
    if (this.wentBack) throw this.wentBack;
    const table = this.table!;
    let batch;
    try {
      batch = await this.deps.dialect.readChanges(this.deps.db, table, this.position, this.config.batchSize, this.now());
    } catch (error) {
      const classified = classifyDatabaseError(error, `reading the changelog of ${this.config.table}`);
      if (classified.code === DATABASE_WENT_BACK) this.wentBack = classified;
      throw classified;
    }
    if (batch.notes && Object.values(batch.notes).some((n) => n)) {
      this.deps.logger.warn({ event: 'changelog.gaps', table: this.config.table, ...batch.notes }, 'changelog sequence gaps');
    }
    const unchanged = JSON.stringify(batch.position) === JSON.stringify(this.position ?? null);
    if (batch.rows.length === 0 && unchanged) {
      await this.schemaWatch.whenIdle();
      await sleep(this.config.pollIntervalMs, signal);
      return empty();
    }
    if (batch.rows.length > 0) await this.schemaWatch.checkRows(batch.rows);
    await this.evolveIfNeeded(batch.rows);
    const { records, deadLetters } = this.changeRecords(batch.rows);
    const tags = this.judgeTags(batch.rows);
    const position = batch.position;
    this.position = position;
    return {
      records,
      deadLetters,
      offsets: [{ partition: this.partition, offset: { phase: 'changes', position } }],
      ack: () => {
        // Counted once committed, so a batch read again after a failure is not counted twice.
        this.echoes += tags.echoes;
        this.forgedTags += tags.forged;
        return this.pruneIfDue(position);
      },
    };
  }

  /**
   * Banyan's tag on a row is an echo only when Banyan's own user wrote it: any session can set the
   * origin value, and a write tagged by anyone else must not be dropped as Banyan's own. A row
   * without a recorded writer was recorded by triggers older than the writer column (the tag was
   * always trusted then) and is still taken for an echo: new triggers record a writer with every tag.
   */
  private tagOf(row: ChangeRow): Tag {
    if (row.origin === null || row.origin !== this.deps.originTag) return undefined;
    const writer = row.originUser;
    if (writer === undefined || writer === null) return 'echo';
    let trusted = this.writers.get(writer);
    if (trusted === undefined) {
      trusted = this.deps.dialect.isTrustedWriter(writer, this.trustedWriter);
      // A few writers in practice; bounded all the same.
      if (this.writers.size < 1000) this.writers.set(writer, trusted);
    }
    return trusted ? 'echo' : 'forged';
  }

  /** Counts the batch's echoes and forged tags, and warns of each forged tag, by writer. */
  private judgeTags(rows: ChangeRow[]): { echoes: number; forged: number } {
    let echoes = 0;
    const forged = new Map<string, string[]>();
    for (const row of rows) {
      const tag = this.tagOf(row);
      if (tag === 'echo') echoes++;
      if (tag !== 'forged') continue;
      const positions = forged.get(row.originUser!) ?? [];
      positions.push(row.position);
      forged.set(row.originUser!, positions);
    }
    let count = 0;
    for (const [writer, positions] of forged) {
      count += positions.length;
      this.deps.logger.warn(
        {
          event: 'changelog.forged_tag',
          table: this.config.table,
          writer,
          origin: this.deps.originTag,
          trustedWriter: this.trustedWriter,
          rows: positions.length,
          positions: positions.slice(0, 20),
        },
        `table ${this.config.table}: ${positions.length} change(s) (the first at ${positions[0]}) carry Banyan's origin tag "${this.deps.originTag}" but were written by "${writer}", not by Banyan's user "${this.trustedWriter}" (databases.${this.deps.databaseName}.originUser): passed on as ordinary changes, not dropped as echoes`,
      );
    }
    return { echoes, forged: count };
  }

  private async pollSnapshot(snapshot: Snapshot): Promise<PollResult> {
    const page = await snapshot.nextPage(this.config.batchSize);
    const at = this.now();
    if (page.length === 0) {
      await snapshot.close();
      this.snapshot = undefined;
      this.position = snapshot.position;
      this.deps.logger.info(
        { event: 'snapshot.finished', table: this.config.table, rows: this.snapshotRows },
        `snapshot of ${this.config.table} finished: ${this.snapshotRows} rows`,
      );
      return { records: [], deadLetters: [], offsets: [{ partition: this.partition, offset: { phase: 'changes', position: snapshot.position } }], ack: async () => undefined };
    }
    const rows = page.map((image): ChangeRow => ({ op: 'I', changedAt: at, origin: null, before: null, after: image, position: 'snapshot' }));
    const { records, deadLetters } = this.changeRecords(rows, 'snapshot');
    this.snapshotRows += page.length;
    this.logProgress(snapshot);
    return {
      records,
      deadLetters,
      offsets: [{ partition: this.partition, offset: { phase: 'snapshot', changes: snapshot.position, rows: this.snapshotRows } }],
      ack: async () => undefined,
    };
  }

  private logProgress(snapshot: Snapshot): void {
    if (this.now() - this.lastProgressLog < 5000) return;
    this.lastProgressLog = this.now();
    const estimate = Math.max(snapshot.estimatedRows, this.snapshotRows);
    this.deps.logger.info(
      { event: 'snapshot.progress', table: this.config.table, rows: this.snapshotRows, estimatedRows: estimate },
      `snapshot of ${this.config.table}: ${this.snapshotRows}/${estimate} rows (${Math.floor((100 * this.snapshotRows) / Math.max(estimate, 1))}%)`,
    );
  }

  /** Records for the rows, a row that cannot be converted as a dead letter. */
  private changeRecords(rows: ChangeRow[], op: 'snapshot' | undefined = undefined): { records: SourceRecord[]; deadLetters: DeadLetter[] } {
    // One buffer for the whole page: each record's key and value are views of it.
    const out = new AvroOutput(Math.min(rows.length * 640, 16 << 20) + 1024);
    const records: SourceRecord[] = [];
    const deadLetters: DeadLetter[] = [];
    for (const row of rows) {
      try {
        // All or nothing per row: a key change that fails halfway is one dead letter.
        const change = this.changeRecord(row, out, op);
        // The runner writes a row's records all or none (a key change must not lose its insert).
        if (change.length > 1) for (const record of change) record.group = row.position;
        records.push(...change);
      } catch (error) {
        deadLetters.push(this.deadLetter(row, error));
      }
    }
    return { records, deadLetters };
  }

  /**
   * The records of one changelog row: one, except that a delete is followed by its tombstone
   * (`tombstonesOnDelete`) and an update that changed the primary key becomes a delete of the old
   * key, its tombstone and an insert of the new key, in that order (as Debezium does), so each
   * key's history stays on its own partition and a compacted topic forgets the old key.
   */
  private changeRecord(row: ChangeRow, out: AvroOutput, op: 'snapshot' | undefined): SourceRecord[] {
    const where = `${this.config.table} at ${row.position}`;
    const image = row.after ?? row.before;
    if (!image) throw new BadRecordError(`${where} has neither a before nor an after image`, { stage: 'processing', code: 'EMPTY_CHANGE' });
    const key = this.encoder.key(out, image, where);
    if (op === undefined && row.op === 'U' && row.before && !this.sameKeyText(row.before, image)) {
      const oldKey = this.encoder.key(out, row.before, where);
      if (!oldKey.equals(key)) {
        const deleted = this.record(row, out, 'delete', oldKey, { ...row, after: null }, where);
        deleted.headers[Headers.newKey] = this.keyText(image);
        const inserted = this.record(row, out, 'insert', key, { ...row, before: null }, where);
        inserted.headers[Headers.oldKey] = this.keyText(row.before);
        return this.config.tombstonesOnDelete ? [deleted, this.tombstone(deleted), inserted] : [deleted, inserted];
      }
    }
    const record = this.record(row, out, op ?? OPERATIONS[row.op], key, row, where);
    return row.op === 'D' && this.config.tombstonesOnDelete ? [record, this.tombstone(record)] : [record];
  }

  private record(row: ChangeRow, out: AvroOutput, operation: string, key: Buffer, change: ChangeRow, where: string): SourceRecord {
    const echo = this.tagOf(row) === 'echo';
    const value = this.encoder.value(out, operation, change, where);
    const headers: Record<string, string> = {
      [Headers.origin]: 'legacy',
      [Headers.operation]: operation,
      [Headers.sourcePosition]: row.position,
      [Headers.changeTime]: new Date(row.changedAt).toISOString(),
    };
    if (echo) headers[Headers.echo] = 'true';
    const nulled = this.encoder.nulled();
    if (nulled.length) headers[Headers.nulled] = JSON.stringify(nulled);
    const missing = this.schemaWatch.missingColumns(row);
    if (missing) headers[Headers.missingColumns] = missing.join(',');
    return {
      topic: this.topic,
      // What a dead letter shows if Kafka refuses the record: the row as read, text images.
      key: { position: row.position },
      value: row as unknown as Record<string, unknown>,
      encoded: { key, value },
      schema: this.schemas!,
      timestamp: row.changedAt,
      headers,
    };
  }

  /** The delete's key with a null value; same headers, so an echo's tombstone is an echo too. */
  private tombstone(deleted: SourceRecord): SourceRecord {
    return { ...deleted, value: null, encoded: { key: deleted.encoded!.key, value: null }, headers: { ...deleted.headers } };
  }

  private sameKeyText(a: Record<string, string | null>, b: Record<string, string | null>): boolean {
    return this.table!.primaryKey.every((k) => a[k] === b[k]);
  }

  /** The key columns' text, as JSON: what the key-change headers carry. */
  private keyText(image: Record<string, string | null>): string {
    return JSON.stringify(Object.fromEntries(this.table!.primaryKey.map((k) => [k, image[k] ?? null])));
  }

  private deadLetter(row: ChangeRow, error: unknown): DeadLetter {
    return {
      source: this.name,
      reason: errorMessage(error),
      stage: 'processing',
      code: error instanceof BadRecordError ? error.code : undefined,
      key: row.position,
      payload: row,
      topic: this.topic,
    };
  }

  private async pruneIfDue(position: Position): Promise<void> {
    if (this.now() - this.lastPrune < this.config.pruneIntervalMs) return;
    this.lastPrune = this.now();
    const olderThan = new Date(this.now() - this.config.retentionHours * 3_600_000);
    try {
      // Bounded batches keep each DELETE short; a large backlog is finished over later rounds.
      let deleted = 0;
      for (let round = 0; round < 100; round++) {
        const n = await this.deps.dialect.pruneChangelog(this.deps.db, this.table!, position, olderThan, 10_000);
        deleted += n;
        if (n < 10_000) break;
      }
      if (deleted > 0) this.deps.logger.info({ event: 'changelog.pruned', table: this.config.table, rows: deleted }, 'changelog pruned');
    } catch (error) {
      // Pruning is housekeeping: a failure must not stop the changes.
      this.deps.logger.warn({ event: 'changelog.prune_failed', err: error }, 'pruning the changelog failed');
    }
  }

  details(): Record<string, Json> {
    const details: Record<string, Json> = this.snapshot
      ? { phase: 'snapshot', table: this.config.table, rows: this.snapshotRows, estimatedRows: this.snapshot.estimatedRows }
      : { phase: 'changes', table: this.config.table, position: this.position ?? null };
    if (this.handover) details.snapshotHandover = this.handover;
    return { ...details, echoes: this.echoes, forgedTags: this.forgedTags, ...this.schemaWatch.details() };
  }

  async close(): Promise<void> {
    this.connected = false;
    const snapshot = this.snapshot;
    this.snapshot = undefined;
    this.position = undefined;
    await snapshot?.close().catch(() => undefined);
  }
}


/** The user a knex pool logs in as (its connection settings' `user`, as createKnex sets it). */
function poolUser(db: Knex): string {
  const connection = (db.client as { config?: { connection?: unknown } }).config?.connection;
  const user = typeof connection === 'object' && connection !== null ? (connection as { user?: unknown }).user : undefined;
  if (typeof user !== 'string' || user === '') throw new Error('the changelog source needs originUser: its database connection names no user');
  return user;
}

function empty(): PollResult {
  return { records: [], deadLetters: [], offsets: [], ack: async () => undefined };
}
