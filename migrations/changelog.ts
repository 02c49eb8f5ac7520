import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { errorMessage } from '../src/core';
import type { Dialect, TableInfo, TableRef } from '../src/dialects/dialect';
import { writtenName } from '../src/dialects/shared-catalog';

/**
 * knex migrations generated from the configuration: for each tracked legacy table, one migration
 * that installs its changelog table and triggers for the table's current columns. The migration's
 * name carries a hash of those columns and one of the DDL this Banyan generates for them, so a
 * column added to the legacy table later, or an upgrade of Banyan that writes other triggers,
 * yields a new migration (triggers recreated, the changelog's rows kept: the DDL is idempotent)
 * the next time `banyan migrate` runs, while an unchanged table yields the name already recorded,
 * and nothing happens: idempotent. Names recorded for older column sets or older DDL stay in the
 * migrations table as history.
 *
 * `down` drops the triggers and the changelog table. It never touches the legacy table's rows.
 */
export interface ChangelogMigration {
  name: string;
  table: TableInfo;
}

export const MIGRATIONS_TABLE = 'banyan_migrations';

export class ChangelogMigrationSource implements Knex.MigrationSource<ChangelogMigration> {
  constructor(
    private readonly dialect: Dialect,
    private readonly tables: TableInfo[],
    /** How long each table's install waits for a lock before it fails, naming the table. */
    private readonly lockMs = 10_000,
  ) {}

  async getMigrations(): Promise<ChangelogMigration[]> {
    return this.tables.map((table) => ({ name: migrationName(this.dialect, table), table }));
  }

  getMigrationName(migration: ChangelogMigration): string {
    return migration.name;
  }

  /**
   * Each table in a transaction of its own (knex would otherwise run every pending migration in one,
   * holding schema locks on every table until the last is done), its lock waits bounded: a table
   * the application keeps busy fails its install clearly, and the tables before it stay installed.
   */
  async getMigration(migration: ChangelogMigration): Promise<Knex.Migration> {
    const { dialect, lockMs } = this;
    const apply = (knex: Knex, statements: string[]) =>
      knex.transaction(async (trx) => {
        const guard = dialect.migrationGuard(lockMs);
        const run = (statement: string) => {
          const sql = guard.wrap ? guard.wrap(statement) : statement;
          return guard.options ? trx.raw(sql).options(guard.options) : trx.raw(sql);
        };
        try {
          for (const statement of guard.before) await trx.raw(statement);
          for (const statement of statements) await run(statement);
        } catch (error) {
          if (!guard.isLockTimeout(error)) throw error;
          throw new Error(
            `table ${writtenName(migration.table)}: a lock it needs was not granted within ${lockMs} ms (a session of the application holds it); ` +
              'nothing of this table was changed, the tables before it are done. Run banyan migrate again when the table is quiet, or raise ' +
              `the database's timeouts.lockMs. (${errorMessage(error)})`,
            { cause: error },
          );
        } finally {
          for (const statement of guard.after) await trx.raw(statement).catch(() => undefined);
        }
      });
    // `config.transaction: false` (read by knex's migrator, absent from its types): the transaction is apply's.
    const own: Knex.Migration & { config: { transaction: boolean } } = {
      config: { transaction: false },
      up: (knex: Knex) => apply(knex, dialect.installChangelog(migration.table)),
      down: (knex: Knex) => apply(knex, dialect.uninstallChangelog(migration.table)),
    };
    return own;
  }
}

/** `changelog.<table>.<columns hash>.<DDL hash>`; names before the DDL hash end at the columns'. */
export function migrationName(dialect: Dialect, table: TableInfo): string {
  const ddl = createHash('sha256').update(JSON.stringify(dialect.installChangelog(table))).digest('hex').slice(0, 12);
  return `${columnsPrefix(table)}.${ddl}`;
}

/** What every migration name for the table's current columns starts with, whatever Banyan made it. */
function columnsPrefix(table: TableInfo): string {
  const shape = JSON.stringify(table.columns.map((c) => [c.name, c.sqlType]));
  const hash = createHash('sha256').update(shape).digest('hex').slice(0, 12);
  return `${tablePart(table)}.${hash}`;
}

/** `changelog.<schema>.<table>`: how every migration name of the table begins. */
function tablePart(table: TableRef): string {
  return `changelog.${[table.schema, table.name].filter(Boolean).join('.')}`;
}

/**
 * The knex migrator settings for a generated source. Names of older column sets disappear from
 * the list when a table changes, which knex would call a corrupt migration directory: that check
 * is off.
 */
export function migratorConfig(source: ChangelogMigrationSource): Knex.MigratorConfig {
  return { migrationSource: source, tableName: MIGRATIONS_TABLE, disableMigrationsListValidation: true };
}

/**
 * What `banyan migrate` last installed for the table: `current` (this Banyan's DDL for its current
 * columns), `older-ddl` (its current columns, but triggers another Banyan version generated),
 * `other-columns` (triggers for another column set), or `none`.
 */
export type MigrationState = 'current' | 'older-ddl' | 'other-columns' | 'none';

export async function migrationState(db: Knex, dialect: Dialect, table: TableInfo): Promise<MigrationState> {
  if (!(await db.schema.hasTable(MIGRATIONS_TABLE))) return 'none';
  // A handful of rows per tracked table: filtered here, not with LIKE, whose escapes differ per database.
  const tablePrefix = `${tablePart(table)}.`;
  const names = new Set(
    ((await db(MIGRATIONS_TABLE).select('name')) as Array<{ name: string }>).map((r) => r.name).filter((n) => n.startsWith(tablePrefix)),
  );
  if (names.has(migrationName(dialect, table))) return 'current';
  const prefix = columnsPrefix(table);
  if ([...names].some((n) => n === prefix || n.startsWith(`${prefix}.`))) return 'older-ddl';
  return names.size > 0 ? 'other-columns' : 'none';
}
