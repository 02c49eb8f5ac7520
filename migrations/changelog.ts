import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Dialect, TableInfo } from '../src/dialects/dialect';

/**
 * knex migrations generated from the configuration: for each tracked legacy table, one migration
 * that installs its changelog table and triggers for the table's current columns. The migration's
 * name carries a hash of those columns, so a column added to the legacy table later yields a new
 * migration (triggers recreated with the new column) the next time `banyan migrate` runs, while
 * an unchanged table yields the name already recorded, and nothing happens: idempotent.
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
    return this.tables.map((table) => ({ name: migrationName(table), table }));
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

export function migrationName(table: TableInfo): string {
  const shape = JSON.stringify(table.columns.map((c) => [c.name, c.sqlType]));
  const hash = createHash('sha256').update(shape).digest('hex').slice(0, 12);
  return `changelog.${[table.schema, table.name].filter(Boolean).join('.')}.${hash}`;
}

/**
 * The knex migrator settings for a generated source. Names of older column sets disappear from
 * the list when a table changes, which knex would call a corrupt migration directory: that check
 * is off.
 */
export function migratorConfig(source: ChangelogMigrationSource): Knex.MigratorConfig {
  return { migrationSource: source, tableName: MIGRATIONS_TABLE, disableMigrationsListValidation: true };
}

/** Whether `banyan migrate` has installed the changelog for exactly the table's current columns. */
export async function isMigrationApplied(db: Knex, table: TableInfo): Promise<boolean> {
  if (!(await db.schema.hasTable(MIGRATIONS_TABLE))) return false;
  return (await db(MIGRATIONS_TABLE).where('name', migrationName(table)).first()) !== undefined;
}
