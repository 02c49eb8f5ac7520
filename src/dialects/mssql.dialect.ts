import type { Driver } from './driver';
import type { Knex } from 'knex';
import type { ChangeBatch, ChangelogState, Dialect, Position, Snapshot, TableInfo, TableRef } from './dialect';
import { changelogTable, installStatements, triggerName, uninstallStatements } from './mssql/changelog';
import { changeBatch, parsePosition, toPosition } from './mssql/position';
import {
  changelogStateQuery,
  clearOriginQuery,
  columnNamesQuery,
  describeTableQuery,
  pruneQuery,
  readChangesQuery,
  setOriginQuery,
  snapshotPageQuery,
  snapshotSeenQuery,
  snapshotStartQuery,
} from './mssql/queries';
import { DEFAULT_SCHEMA, displayName, quoteIdentifier, type SqlQuery } from './mssql/sql';
import { columnFromCatalog, isLegacyLob } from './mssql/types';
import { mssqlWrites } from './mssql/writes';
import { TableProblemError } from './errors';
import { writtenName } from './shared-catalog';

type Row = Record<string, unknown>;

/** tedious, through knex's mssql client. */
export const mssqlDriver: Driver = {
  client: 'mssql',
  defaultPort: 1433,
  // tedious wants `server` and its TLS settings under `options`.
  connectionOptions: (settings) => ({
    server: settings.host,
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

  async changelogState(db: Knex, table: TableRef): Promise<ChangelogState> {
    const [row] = await run(db, changelogStateQuery(table));
    const trigger = triggerName(table).name;
    return { table: Number(row?.changelog) === 1, triggers: [trigger], missingTriggers: Number(row?.trigger) === 1 ? [] : [trigger] };
  }

  installChangelog(table: TableInfo): string[] {
    return installStatements(table);
  }

  uninstallChangelog(table: TableRef): string[] {
    return uninstallStatements(table);
  }

  async readChanges(db: Knex, table: TableInfo, position: Position | undefined, limit: number): Promise<ChangeBatch> {
    const from = parsePosition(position);
    return changeBatch(table, await run(db, readChangesQuery(table, from.rv, limit)), from);
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
      const seen = isolated ? (await run(trx, snapshotSeenQuery(table, rv))).map((r) => String(r.rv)) : [];
      const position = toPosition(parsePosition({ rv, seen }));
      return new MssqlSnapshot(trx, table, position, Number(start.estimated_rows ?? 0), isolated);
    } catch (error) {
      await trx.rollback();
      throw error;
    }
  }

  async pruneChangelog(db: Knex, table: TableInfo, position: Position, olderThan: Date, limit: number): Promise<number> {
    const [result] = await run(db, pruneQuery(table, parsePosition(position).rv, olderThan, limit));
    return Number(result?.deleted ?? 0);
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
  ) {}

  async nextPage(limit: number): Promise<Array<Record<string, string | null>>> {
    const rows = (await run(this.trx, snapshotPageQuery(this.table, this.cursor, limit))) as Array<Record<string, string | null>>;
    const last = rows.at(-1);
    if (last) this.cursor = this.table.primaryKey.map((k) => String(last[k]));
    return rows;
  }

  /** Read-only, so a rollback ends it as a commit would, and also copes with one the server already aborted. */
  async close(): Promise<void> {
    if (!this.trx.isCompleted()) await this.trx.rollback();
  }
}

async function run(db: Knex | Knex.Transaction, query: SqlQuery): Promise<Row[]> {
  return (await db.raw(query.sql, query.bindings)) as Row[];
}
