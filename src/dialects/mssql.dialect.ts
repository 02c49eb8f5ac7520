import type { Driver } from './driver';
import type { Knex } from 'knex';
import type { ChangeBatch, ChangelogState, Dialect, MigrationGuard, Position, Snapshot, TableInfo, TableRef } from './dialect';
import { changelogTable, installStatements, uninstallStatements } from './mssql/changelog';
import { changelogStateOf, type TriggerCatalogRow } from './mssql/health';
import { changeBatch, parsePosition, START_RV, toPosition } from './mssql/position';
import {
  changelogStateQuery,
  clearOriginQuery,
  columnNamesQuery,
  describeTableQuery,
  BEHIND_POSITION_ERROR,
  PRUNE_BATCH,
  pruneQuery,
  readChangesQuery,
  setOriginQuery,
  snapshotPageQuery,
  snapshotSeenCountQuery,
  snapshotSeenQuery,
  pinningTransactionQuery,
  snapshotStartQuery,
} from './mssql/queries';
import { DEFAULT_SCHEMA, displayName, quoteIdentifier, type SqlQuery } from './mssql/sql';
import { columnFromCatalog, isLegacyLob } from './mssql/types';
import { errorNumbers, mssqlWrites } from './mssql/writes';
import { driftQuery, watchStateQuery, withDrift } from './mssql/drift';
import { TimedMssqlClient } from './mssql/knex-client';
import type { StatementTimeouts } from './index';
import { DATABASE_WENT_BACK, TableProblemError } from './errors';
import { BanyanError, errorMessage, type Json } from '../core';
import { writtenName } from './shared-catalog';

type Row = Record<string, unknown>;

/** tedious, through knex's mssql client. */
export const mssqlDriver: Driver = {
  client: TimedMssqlClient,
  defaultPort: 1433,
  // tedious wants `server` and its TLS settings under `options`; knex reads requestTimeout beside them.
  connectionOptions: (settings) => ({
    server: settings.host,
    requestTimeout: (settings.timeouts ?? DEFAULT_TIMEOUTS).requestMs,
    options: { encrypt: settings.ssl, trustServerCertificate: !settings.ssl },
  }),
  versionQuery: 'SELECT @@VERSION AS version',
};

/**
 * SQL Server 2016 SP1+ (CREATE OR ALTER, SESSION_CONTEXT, DATEDIFF_BIG, float style 3). Commit
 * order comes from a `rowversion` column and MIN_ACTIVE_ROWVERSION(); see docs/dialect-mssql.md.
 * Every statement is built by a pure function in ./mssql/ and run here.
 */
export class MssqlDialect implements Dialect {
  readonly name = 'mssql' as const;
  readonly writes = mssqlWrites;

  constructor(private readonly timeouts: StatementTimeouts = DEFAULT_TIMEOUTS) {}

  /** Per changelog, the highest rowversion a prune deleted: the next prune starts after it. */
  private readonly prunedUpTo = new Map<string, string>();

  quoteIdentifier(name: string): string {
    return quoteIdentifier(name);
  }

  async describeTable(db: Knex, table: TableRef): Promise<TableInfo> {
    const rows = await run(db, describeTableQuery(table));
    const written = writtenName(table);
    if (rows.length === 0) throw new TableProblemError(`SQL Server table ${written} does not exist (or this login cannot see it)`, 'TABLE_NOT_FOUND', written);
    const primaryKey = rows
      .filter((r) => r.key_ordinal !== null && r.key_ordinal !== undefined)
      .sort((a, b) => Number(a.key_ordinal) - Number(b.key_ordinal))
      .map((r) => String(r.name));
    if (primaryKey.length === 0) {
      throw new TableProblemError(`SQL Server table ${written} has no primary key; Banyan can only track tables with one`, 'NO_PRIMARY_KEY', written);
    }
    const columns = rows.map((r) =>
      columnFromCatalog({
        name: String(r.name),
        typeName: String(r.type_name),
        baseTypeName: r.base_type_name === null ? null : String(r.base_type_name),
        isAssemblyType: Boolean(r.is_assembly_type),
        maxLength: Number(r.max_length),
        precision: Number(r.precision),
        scale: Number(r.scale),
        nullable: Boolean(r.is_nullable),
      }),
    );
    return { schema: table.schema ?? DEFAULT_SCHEMA, name: table.name, columns, primaryKey };
  }

  changelogTable(table: TableRef): TableRef {
    return changelogTable(table);
  }

  async columnNames(db: Knex, table: TableRef): Promise<string[]> {
    return (await run(db, columnNamesQuery(table))).map((r) => String(r.name));
  }

  columnsNeverInBeforeImage(table: TableInfo): string[] {
    return table.columns.filter(isLegacyLob).map((c) => c.name);
  }

  /** Also whether the trigger is enabled and fires first, the table's other triggers, and `nested triggers` (mssql/health.ts). */
  async changelogState(db: Knex, table: TableRef): Promise<ChangelogState> {
    const state = changelogStateOf(table, (await run(db, changelogStateQuery(table))) as unknown as TriggerCatalogRow[]);
    if (!state.table) return state;
    const [watch] = await run(db, watchStateQuery());
    const drift = await run(db, driftQuery(table)).catch((error: unknown) => `the schema watch's log could not be read: ${errorMessage(error)}`);
    return withDrift(state, watch, drift);
  }

  installChangelog(table: TableInfo): string[] {
    return installStatements(table);
  }

  uninstallChangelog(table: TableRef): string[] {
    return uninstallStatements(table);
  }

  async readChanges(db: Knex, table: TableInfo, position: Position | undefined, limit: number): Promise<ChangeBatch> {
    const from = parsePosition(position);
    let rows: Row[];
    try {
      rows = await run(db, readChangesQuery(table, from.rv, limit), this.timeouts.readMs);
    } catch (error) {
      if (!errorNumbers(error).includes(BEHIND_POSITION_ERROR)) throw error;
      throw new BanyanError(
        `changelog of ${displayName(table)}: ${errorMessage(error)}. Changes made since have rowversions at or below the stored position ` +
          'and would be skipped, so this source stops. Find out what happened to the database; to go on, give the source a new name in ' +
          'the configuration (it starts with no position: it snapshots the table again and streams from there), see docs/dialect-mssql.md, "A restore behind the stored position"',
        { retriable: false, stage: 'receiving', code: DATABASE_WENT_BACK, context: { table: displayName(table), position: from.rv }, cause: error },
      );
    }
    return changeBatch(table, rows, from);
  }

  /**
   * The stream position is taken before the snapshot exists, so no change can fall between the
   * two; the changes the snapshot nevertheless already holds are listed in the position's `seen`.
   * Without SNAPSHOT isolation the pages are read under READ COMMITTED and such changes may be
   * delivered twice (see docs/dialect-mssql.md for why not REPEATABLE READ).
   */
  async openSnapshot(db: Knex, table: TableInfo): Promise<Snapshot> {
    const [start] = await run(db, snapshotStartQuery(table));
    if (!start) throw new Error(`could not read the snapshot start of ${displayName(table)}`);
    const rv = String(start.start_rv);
    const isolated = Number(start.snapshot_isolation_state) === 1;
    const trx = await db.transaction({ isolationLevel: isolated ? 'snapshot' : 'read committed' });
    try {
      const seen = isolated ? (await run(trx, snapshotSeenQuery(table, rv, SEEN_LIMIT + 1), this.timeouts.snapshotPageMs)).map((r) => String(r.rv)) : [];
      let handover: Snapshot['handover'];
      if (seen.length > SEEN_LIMIT) {
        seen.length = SEEN_LIMIT;
        const [counted] = await run(trx, snapshotSeenCountQuery(table, seen.at(-1)!), this.timeouts.snapshotPageMs);
        handover = { duplicatesPossible: Number(counted?.n ?? 0), pinningTransaction: await this.pinningTransaction(db) };
      }
      const position = toPosition(parsePosition({ rv, seen }));
      return new MssqlSnapshot(trx, table, position, Number(start.estimated_rows ?? 0), isolated, this.timeouts.snapshotPageMs, handover);
    } catch (error) {
      await endSnapshot(trx);
      throw error;
    }
  }

  /**
   * knex sends every statement through sp_executesql, and a SET inside it is restored when it
   * returns, so a SET LOCK_TIMEOUT of its own would bound nothing: each statement is sent as
   * `SET LOCK_TIMEOUT n; EXEC sys.sp_executesql N'…'`, the statement in an inner batch of its own
   * (CREATE TRIGGER stays first in its batch) that inherits the setting, which ends with the outer
   * one. Each statement gets the migrate request timeout. Error 1222 when a lock is not granted in time.
   */
  migrationGuard(lockMs: number): MigrationGuard {
    return {
      before: [],
      after: [],
      options: { requestTimeout: this.timeouts.migrateMs },
      wrap: (statement) => `SET LOCK_TIMEOUT ${Math.ceil(lockMs)};\nEXEC sys.sp_executesql N'${statement.replace(/'/g, "''")}';`,
      isLockTimeout: (error) => errorNumbers(error).includes(1222),
    };
  }

  /** Who holds MIN_ACTIVE_ROWVERSION() back (session, login, host, program, since when), or why that cannot be told. */
  private async pinningTransaction(db: Knex): Promise<Record<string, Json> | string> {
    try {
      const [row] = await run(db, pinningTransactionQuery());
      if (!row) return 'none open now';
      return {
        session: Number(row.session_id),
        login: String(row.login_name),
        host: row.host_name === null ? null : String(row.host_name),
        program: row.program_name === null ? null : String(row.program_name),
        since: `${String(row.begin_time)}Z`.replace(/ZZ$/, 'Z'),
      };
    } catch (error) {
      return `unknown: ${errorMessage(error)} (reading it needs VIEW SERVER STATE, or VIEW SERVER PERFORMANCE STATE on SQL Server 2022)`;
    }
  }

  /**
   * Deletes in statements of PRUNE_BATCH rows (below lock escalation), each committed on its own,
   * up to `limit`; each starts where the previous one of this table ended (remembered here, from
   * the start of the changelog after a restart), so rows already gone are never scanned again.
   */
  async pruneChangelog(db: Knex, table: TableInfo, position: Position, olderThan: Date, limit: number): Promise<number> {
    const key = displayName(table);
    const upTo = parsePosition(position).rv;
    let deleted = 0;
    while (deleted < limit) {
      const asked = Math.min(limit - deleted, PRUNE_BATCH);
      const [result] = await run(db, pruneQuery(table, this.prunedUpTo.get(key) ?? START_RV, upTo, olderThan, asked), this.timeouts.pruneMs);
      const n = Number(result?.deleted ?? 0);
      deleted += n;
      if (result?.last_rv) this.prunedUpTo.set(key, String(result.last_rv));
      if (n < asked) break;
    }
    return deleted;
  }

  /**
   * Session context outlives the transaction on a pooled connection, so the tag is bound to this
   * transaction's id and the trigger ignores it in any other transaction; clearOrigin still removes
   * it before the connection is reused.
   */
  async setOrigin(trx: Knex.Transaction, origin: string): Promise<void> {
    if (origin.length === 0 || origin.length > 128) throw new Error(`origin must be 1 to 128 characters, got ${origin.length}`);
    await run(trx, setOriginQuery(origin));
  }

  async clearOrigin(trx: Knex.Transaction): Promise<void> {
    await run(trx, clearOriginQuery());
  }

  /**
   * ORIGINAL_LOGIN() names the login as the server holds it (`banyan`, `CORP\svc_banyan`,
   * `svc@contoso.com`), compared exactly: a login differing in case is another login on a server
   * with a case-sensitive collation (docs/dialect-mssql.md, Who may tag a write).
   */
  isTrustedWriter(writer: string, trusted: string): boolean {
    return writer === trusted;
  }
}

class MssqlSnapshot implements Snapshot {
  private cursor: string[] | undefined;

  constructor(
    private readonly trx: Knex.Transaction,
    private readonly table: TableInfo,
    readonly position: Position,
    readonly estimatedRows: number,
    /** Whether this is a true SNAPSHOT transaction (else READ COMMITTED pages). */
    readonly isolated: boolean,
    private readonly pageTimeoutMs: number,
    readonly handover: Snapshot['handover'],
  ) {}

  async nextPage(limit: number): Promise<Array<Record<string, string | null>>> {
    const rows = (await run(this.trx, snapshotPageQuery(this.table, this.cursor, limit), this.pageTimeoutMs)) as Array<Record<string, string | null>>;
    const last = rows.at(-1);
    if (last) this.cursor = this.table.primaryKey.map((k) => String(last[k]));
    return rows;
  }

  /** Read-only, so a rollback ends it as a commit would, and also copes with one the server already aborted. */
  async close(): Promise<void> {
    await endSnapshot(this.trx);
  }
}

/**
 * Ends a snapshot's transaction (read-only: a rollback ends it as a commit would). The connection
 * goes back to the pool at SNAPSHOT: tedious began the transaction with SET TRANSACTION ISOLATION
 * LEVEL in a batch of its own, which the session keeps, and a SET sent through knex would not reset
 * it (knex sends every statement through sp_executesql, which restores SET options on return). So
 * every autocommit batch of this dialect sets its own level in the batch (RESET_ISOLATION).
 */
async function endSnapshot(trx: Knex.Transaction): Promise<void> {
  if (!trx.isCompleted()) await trx.rollback();
}

/**
 * The most changes a snapshot lists as already held (each about 20 bytes in every offset record of
 * the hand-over, under Kafka's 1 MB default message size). More than that means an open transaction
 * held the watermark back meanwhile: the rest may be delivered twice, said and counted.
 */
export const SEEN_LIMIT = 10_000;

/** The config's defaults (src/runtime/config/schema.ts), for a dialect made without a config. */
export const DEFAULT_TIMEOUTS: StatementTimeouts = { lockMs: 10_000, requestMs: 30_000, readMs: 30_000, snapshotPageMs: 300_000, pruneMs: 120_000, migrateMs: 600_000 };

/** Runs one statement, with the request timeout of its kind when it has one (else the connection's). */
async function run(db: Knex | Knex.Transaction, query: SqlQuery, requestTimeout?: number): Promise<Row[]> {
  const raw = db.raw(query.sql, query.bindings);
  return (await (requestTimeout === undefined ? raw : raw.options({ requestTimeout }))) as Row[];
}
