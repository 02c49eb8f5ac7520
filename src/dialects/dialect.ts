import type { Knex } from 'knex';
import type { Json } from '../core';

/**
 * Everything that differs between SQL Server, PostgreSQL and MySQL/MariaDB sits behind this
 * interface, one file per database. The changelog poller, the migrations and (later) the legacy
 * exporter call it and contain no dialect branches.
 *
 * The changelog design shared by all three:
 * - one changelog table per tracked table, `banyan_cl_<table>` in the table's schema, with
 *   `change_id` (a dense or increasing sequence), the dialect's commit-order column(s), `op`
 *   ('I' | 'U' | 'D'), `changed_at` (UTC), `origin` (the writing session's tag, NULL for ordinary
 *   legacy writes), `origin_user` (who wrote, recorded with a tag only) and `before_image` / `after_image`: a JSON object of column → value **as text**
 *   (see `Column.kind` for the text form of each kind), NULL for the missing side;
 * - AFTER INSERT/UPDATE/DELETE triggers on the legacy table that write one changelog row per
 *   affected row, statement-level where the database needs it (SQL Server);
 * - positions are opaque JSON to everyone but the dialect.
 */
export interface Dialect {
  readonly name: 'mssql' | 'postgres' | 'mysql';

  /** Quotes one identifier for this database (doubling the closing quote character). */
  quoteIdentifier(name: string): string;

  /** Reads the table's columns and primary key; throws a clear error if the table does not exist. */
  describeTable(db: Knex, table: TableRef): Promise<TableInfo>;

  /** The changelog table that belongs to `table`. */
  changelogTable(table: TableRef): TableRef;

  /**
   * DDL that creates the changelog table (if missing) and (re)creates the triggers for exactly
   * `table.columns`. Idempotent: running it twice leaves the same objects. Never touches the
   * legacy table's rows.
   */
  installChangelog(table: TableInfo): string[];

  /**
   * Whether the changelog table and the triggers installChangelog makes exist now (not whether
   * they are current: that is the migration record's business, see migrations/changelog.ts).
   */
  changelogState(db: Knex, table: TableRef): Promise<ChangelogState>;

  /**
   * The table's column names in order, in one light catalog read (the poller compares them with
   * every batch's images; describeTable is heavier). Empty if the table is gone.
   */
  columnNames(db: Knex, table: TableRef): Promise<string[]>;

  /**
   * Columns the triggers cannot put in a before image (SQL Server's text/ntext/image, invisible
   * in `deleted`), so a delete's image lacking them is complete. Empty for most databases.
   */
  columnsNeverInBeforeImage(table: TableInfo): string[];

  /** DDL that drops the triggers and the changelog table (reverse of installChangelog). */
  uninstallChangelog(table: TableRef): string[];

  /**
   * Reads up to `limit` changes after `position` (undefined = from the beginning of the
   * changelog) that can no longer change below the dialect's safe watermark, in an order that
   * keeps each row's changes in commit order. Returns the rows and the position after them.
   * `now` is the caller's clock in ms (used for bounded gap waiting).
   */
  readChanges(db: Knex, table: TableInfo, position: Position | undefined, limit: number, now: number): Promise<ChangeBatch>;

  /**
   * Opens a consistent snapshot of the table and the changelog position that matches it: every
   * change after `position` is a change the snapshot does not contain, every change before it is
   * reflected in the snapshot. Rows come in primary-key order, in pages, as text images.
   * The caller must `close()` the snapshot.
   */
  openSnapshot(db: Knex, table: TableInfo, now: number): Promise<Snapshot>;

  /**
   * Deletes, in one bounded statement, up to `limit` changelog rows that are below `position`
   * (already committed to Kafka) and older than `olderThan`. Returns how many it deleted.
   */
  pruneChangelog(db: Knex, table: TableInfo, position: Position, olderThan: Date, limit: number): Promise<number>;

  /**
   * Tags the writes of transaction `trx` with `origin`, so the changelog triggers record it
   * (SQL Server sp_set_session_context, PostgreSQL set_config(…, true), MySQL a session variable
   * that the caller resets with `clearOrigin` before the connection goes back to the pool).
   */
  setOrigin(trx: Knex.Transaction, origin: string): Promise<void>;
  clearOrigin(trx: Knex.Transaction): Promise<void>;

  /**
   * Whether `writer`, a ChangeRow's `originUser` as the trigger recorded it, is the user `trusted`
   * names (`databases.<name>.originUser`, else its `user`), the way this database names users:
   * any other session may set Banyan's origin value, and its tag is then forged, not an echo.
   */
  isTrustedWriter(writer: string, trusted: string): boolean;

  /**
   * Brings a changelog table made by an older Banyan up to the columns installChangelog's triggers
   * write, before they are installed, where DDL alone cannot say "if missing" (MySQL 8 has no ADD
   * COLUMN IF NOT EXISTS). Idempotent; absent where installChangelog does it itself. Its lock waits
   * are bounded by `lockMs`, as the install's are (migrationGuard).
   */
  upgradeChangelog?(db: Knex, table: TableRef, lockMs: number): Promise<void>;

  /**
   * How `banyan migrate` bounds one table's install, run in a transaction of its own: statements
   * before and after it (a lock timeout, and its reset where it outlives the transaction), the
   * driver options of its statements (a request timeout), and whether an error is a lock wait that
   * timed out.
   */
  migrationGuard(lockMs: number): MigrationGuard;

  /** What the legacy sink writes, as this database says it. */
  readonly writes: LegacyWriteSql;
}

export interface MigrationGuard {
  before: string[];
  after: string[];
  /** knex `.options()` of each install statement, if any. */
  options?: Record<string, unknown>;
  /** Each install statement as sent, where a setting must share its batch (SQL Server: knex sends every statement through sp_executesql, which restores SET options on return). */
  wrap?(statement: string): string;
  isLockTimeout(error: unknown): boolean;
}

export interface TableRef {
  /** Schema (PostgreSQL, SQL Server) or undefined for the connection's default schema/database. */
  schema?: string;
  name: string;
}

export interface ChangelogState {
  /** The changelog table exists. */
  table: boolean;
  /** The names of the triggers the changelog needs. */
  triggers: string[];
  /** Those of `triggers` that do not exist. */
  missingTriggers: string[];
  /**
   * Those of `triggers` that exist but are disabled, so they record nothing (doctor fails). Absent
   * where the database cannot disable a trigger (MariaDB).
   */
  disabledTriggers?: string[];
  /** Other reasons the triggers record changes wrongly, each a sentence saying what to do (doctor fails). */
  faults?: string[];
  /** Conditions under which some changes are never recorded, though the changelog works (doctor shows them and passes). */
  warnings?: string[];
  /** Facts a DBA checks beside the changelog: the table's other triggers and their firing order (doctor shows them). */
  notes?: string[];
}

/** A column's kind decides its Avro type and the text form it has in the changelog images. */
export type ColumnKind =
  | { kind: 'boolean' } // text: 'true' | 'false' (or '1' | '0')
  | { kind: 'int' } // 32-bit and smaller; text: decimal digits
  | { kind: 'long' } // 64-bit; text: decimal digits
  | { kind: 'float' } // text: as the database prints it
  | { kind: 'double' }
  | { kind: 'decimal'; precision: number; scale: number } // text: plain decimal, e.g. '-123.45'
  | { kind: 'string'; maxLength?: number; unicode?: boolean }
  | { kind: 'uuid' } // text: canonical 8-4-4-4-12, any case
  | { kind: 'bytes' } // text: lowercase hex without prefix
  | { kind: 'date' } // text: 'YYYY-MM-DD'
  | { kind: 'time'; precision: number } // text: 'HH:MM:SS[.fffffff]'
  /** Without time zone (datetime2, timestamp, DATETIME); text: 'YYYY-MM-DD HH:MM:SS[.fffffff]' or with 'T'. */
  | { kind: 'timestamp'; precision: number }
  /** With time zone (datetimeoffset, timestamptz, MySQL TIMESTAMP); text: UTC, same form, optional 'Z'/'+00:00'. */
  | { kind: 'timestamptz'; precision: number }
  | { kind: 'json' } // text: the JSON document
  | { kind: 'other'; sqlType: string }; // carried as text

export interface Column {
  name: string;
  /** The database's own type name with its parameters, e.g. 'decimal(12,2)', 'datetime2(7)'. */
  sqlType: string;
  type: ColumnKind;
  nullable: boolean;
  /** The column has a default (or is an identity / auto-increment): an insert may leave it out. Unknown: assume not. */
  hasDefault?: boolean;
}

export interface TableInfo extends TableRef {
  columns: Column[];
  /** Primary-key column names in key order. A table without one cannot be tracked. */
  primaryKey: string[];
}

/** Opaque to everyone but its dialect; stored as JSON in the offsets topic. */
export type Position = { [key: string]: Json };

export interface ChangeRow {
  op: 'I' | 'U' | 'D';
  /** UTC time the change was recorded, ms since the epoch. */
  changedAt: number;
  origin: string | null;
  /**
   * Who wrote the change, as the trigger recorded it with the origin tag (PostgreSQL session_user,
   * MySQL/MariaDB USER(), SQL Server ORIGINAL_LOGIN()): the tag is trusted only from Banyan's own
   * user (see Dialect.isTrustedWriter). Absent or null without a tag, and on rows recorded by
   * triggers older than the column.
   */
  originUser?: string | null;
  /** Column → text value (null for SQL NULL); null when there is no such image (insert's before). */
  before: Record<string, string | null> | null;
  after: Record<string, string | null> | null;
  /** A readable, sortable form of this row's position, for the record's header (e.g. '0x00000000000007D1'). */
  position: string;
}

export interface ChangeBatch {
  rows: ChangeRow[];
  /**
   * The position after these rows. It may change with no rows (a gap first seen or given up),
   * and the caller stores it all the same.
   */
  position: Position;
  /** Gaps passed after waiting, and late rows found in remembered gaps: for logs and metrics. */
  notes?: { gapsPassed?: number; lateRows?: number; gapsExpired?: number };
}

export interface Snapshot {
  /** The changelog position matching the snapshot: read changes after it. */
  readonly position: Position;
  /** An estimate of the row count, for progress. */
  readonly estimatedRows: number;
  /**
   * Set when the snapshot could not list every change it already holds (SQL Server: an open
   * transaction held the watermark back while more than a bounded number of changes committed):
   * up to `duplicatesPossible` changes after the position may be delivered although the snapshot
   * has them, and who held the watermark back, if the database says.
   */
  readonly handover?: { duplicatesPossible: number; pinningTransaction: Record<string, Json> | string };
  /** The next page of rows in primary-key order, as text images; an empty array at the end. */
  nextPage(limit: number): Promise<Array<Record<string, string | null>>>;
  close(): Promise<void>;
}

/** One statement for `knex.raw(sql, bindings)`: every value a `?` placeholder, never spliced in. */
export interface SqlStatement {
  sql: string;
  bindings: unknown[];
}

/** One row of the version guard: the version of the value one field of one entity holds in the legacy database. */
export interface GuardRow {
  entity: string;
  entityId: string;
  field: string;
  /** The source commit time of that value, ms since the epoch. */
  versionMs: number;
  origin: string;
  eventId: string;
  /** Whether Banyan wrote the value (false: observed, the legacy side wrote it). */
  written: boolean;
}

/** Banyan's sink tables in the legacy database (see docs/export-legacy.md). */
export const GUARD_TABLE = 'banyan_guard';
export const SINK_OFFSETS_TABLE = 'banyan_sink_offsets';

/**
 * The legacy sink's statements, as each database says them. Rows are arrays of driver parameters
 * (`parameter()`), key columns first where a builder names keys. The sink calls these and contains
 * no dialect branches; each builder makes one multi-row statement (at most `maxRows(width)` rows).
 */
export interface LegacyWriteSql {
  /** DDL creating Banyan's guard and sink-offset tables in `schema` if missing; idempotent. */
  sinkTables(schema: string | undefined): string[];
  /** Locks the existing rows among `keys` (key-column values, in key order) and returns their keys as text, as `k0`, `k1`…. */
  lockRows(table: TableInfo, keys: unknown[][]): SqlStatement;
  /**
   * Sets `columns` of existing rows (each row: its key values, then the columns' values), only on
   * rows where one of them differs (a write that would change nothing is no write: no trigger
   * fires). `changedRows` of its result counts the rows written.
   */
  updateRows(table: TableInfo, columns: string[], rows: unknown[][]): SqlStatement;
  /**
   * Inserts rows of `columns` (key columns included) that `lockRows` found missing. Where the
   * lock does not keep others from inserting the key meanwhile, a row that exists by then is
   * updated instead, where a value differs (PostgreSQL ON CONFLICT, SQL Server MERGE).
   */
  insertRows(table: TableInfo, columns: string[], rows: unknown[][]): SqlStatement;
  /** The isolation level the sink's transactions ask for, when the database's default does not serve (MySQL: gap locks need REPEATABLE READ). */
  readonly isolation?: 'read committed' | 'repeatable read' | 'serializable';
  /** Deletes the rows of `keys`. */
  deleteRows(table: TableInfo, keys: unknown[][]): SqlStatement;
  /** The guard rows of these (entity, entityId) pairs: entity, entity_id, field, version_ms, origin, event_id, written. */
  readGuard(schema: string | undefined, entities: Array<[string, string]>): SqlStatement;
  /** Inserts or replaces guard rows. */
  writeGuard(schema: string | undefined, rows: GuardRow[]): SqlStatement;
  /** A sink's next offsets: topic, kafka_partition, next_offset. */
  readOffsets(schema: string | undefined, sink: string): SqlStatement;
  /** Sets a sink's next offset of input partitions, never moving one back. */
  writeOffsets(schema: string | undefined, sink: string, rows: Array<{ topic: string; partition: number; next: string }>): SqlStatement;
  /** Moves a sink's stored offset of one input partition back (its topic was made again: the stored one is past its end). */
  resetOffset(schema: string | undefined, sink: string, row: { topic: string; partition: number; next: string }): SqlStatement;
  /** The rows a write statement changed, from the driver's result. */
  changedRows(result: unknown): number;
  /** The rows a read statement returned, from the driver's result. */
  resultRows(result: unknown): Array<Record<string, unknown>>;
  /**
   * The driver parameter that writes a domain value into `column` (domain/event.ts: string, number,
   * bigint, boolean, 'YYYY-MM-DD', ms since the epoch for a timestamp, decimal text).
   */
  parameter(column: Column, value: unknown): unknown;
  /** The most rows of `width` parameters one statement may carry. */
  maxRows(width: number): number;
  /** Whether a driver error is the row's fault (a constraint, a type, a value too long): dead-letter it, rather than retry. */
  isRowRefusal(error: unknown): boolean;
  /** The database's own code of such an error, for the dead letter: PostgreSQL's SQLSTATE, MySQL's code name, SQL Server's error number. */
  refusalCode(error: unknown): string;
  /** Why a column cannot be written faithfully from a domain value, if it cannot (a mapping onto it is refused at start). */
  unwritable?(column: Column): string | undefined;
}
