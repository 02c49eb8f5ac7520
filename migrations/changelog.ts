import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Dialect, TableInfo, TableRef } from '../src/dialects/dialect';

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
  ) {}

  async getMigrations(): Promise<ChangelogMigration[]> {
    return this.tables.map((table) => ({ name: migrationName(this.dialect, table), table }));
  }

  getMigrationName(migration: ChangelogMigration): string {
    return migration.name;
  }

  async getMigration(migration: ChangelogMigration): Promise<Knex.Migration> {
    const { dialect } = this;
    return {
      async up(knex: Knex) {
        for (const statement of dialect.installChangelog(migration.table)) await knex.raw(statement);
      },
      async down(knex: Knex) {
        for (const statement of dialect.uninstallChangelog(migration.table)) await knex.raw(statement);
      },
    };
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
