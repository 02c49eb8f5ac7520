import type { Knex } from 'knex';
import { ChangelogMigrationSource, migratorConfig } from '../../../migrations/changelog';
import type { Dialect, TableInfo } from '../../dialects/dialect';
import { parseTableName } from '../../dialects/shared-catalog';

export interface MigrateResult {
  /** Names of the migrations this run applied (up) or reverted (down); empty when all was done. */
  migrations: string[];
  tables: TableInfo[];
}

/**
 * Installs (or, with `down`, removes) the changelog tables and triggers of `tables` in one
 * database. Each table is described first, so a table that does not exist fails with its name
 * before anything is changed.
 */
export async function migrateChangelogs(
  db: Knex,
  dialect: Dialect,
  tables: string[],
  direction: 'up' | 'down' = 'up',
  options: { lockMs?: number } = {},
): Promise<MigrateResult> {
  const infos: TableInfo[] = [];
  for (const table of tables) infos.push(await dialect.describeTable(db, parseTableName(table)));
  // A changelog table an older Banyan made gets the columns the new triggers write, before them.
  if (direction === 'up' && dialect.upgradeChangelog) for (const info of infos) await dialect.upgradeChangelog(db, info, options.lockMs ?? 10_000);
  const config = migratorConfig(new ChangelogMigrationSource(dialect, infos, options.lockMs));
  const [, migrations] =
    direction === 'up' ? await db.migrate.latest(config) : await db.migrate.rollback(config, true);
  return { migrations: migrations as string[], tables: infos };
}
