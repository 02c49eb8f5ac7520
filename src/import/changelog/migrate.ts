import type { Knex } from 'knex';
import { ChangelogMigrationSource, MIGRATIONS_TABLE, migratorConfig } from '../../../migrations/changelog';
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
  options: { lockMs?: number; lockWaitMs?: number } = {},
): Promise<MigrateResult> {
  const infos: TableInfo[] = [];
  for (const table of tables) infos.push(await dialect.describeTable(db, parseTableName(table)));
  // A changelog table an older Banyan made gets the columns the new triggers write, before them.
  if (direction === 'up' && dialect.upgradeChangelog) for (const info of infos) await dialect.upgradeChangelog(db, info, options.lockMs ?? 10_000);
  const config = migratorConfig(new ChangelogMigrationSource(dialect, infos, options.lockMs));
  const [, migrations] = await whenUnlocked(() => (direction === 'up' ? db.migrate.latest(config) : db.migrate.rollback(config, true)), options.lockWaitMs);
  return { migrations: migrations as string[], tables: infos };
}

/**
 * Runs a knex migration, waiting while another one holds knex's lock row. Each table installs in a
 * transaction of its own, so knex takes its lock outside any transaction and fails at once when
 * another migrate (another process, another `banyan run` with autoMigrate) holds it, instead of
 * waiting on the row as it does inside one. So it is tried again, every 100 to 500 ms, for
 * `waitMs` (2 minutes by default); then it fails saying whose lock it may be.
 */
async function whenUnlocked<T>(migrate: () => Promise<T>, waitMs = 120_000): Promise<T> {
  const until = Date.now() + waitMs;
  for (let pause = 100; ; pause = Math.min(500, pause * 2)) {
    try {
      return await migrate();
    } catch (error) {
      if ((error as Error).name !== 'MigrationLocked') throw error;
      if (Date.now() >= until) {
        throw new Error(
          `another banyan migrate has held ${MIGRATIONS_TABLE}_lock for ${waitMs / 1000} s; if none runs (one that crashed leaves it set), clear it with UPDATE ${MIGRATIONS_TABLE}_lock SET is_locked = 0`,
          { cause: error },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}
