import type { Knex } from 'knex';
import { migrationName, migrationState } from '../../../migrations/changelog';
import type { Dialect, TableInfo } from '../../dialects/dialect';
import { isTableProblem, type TableProblemCode } from '../../dialects/errors';
import { parseTableName } from '../../dialects/shared-catalog';

export { isTableProblemCode } from '../../dialects/errors';

export type ChangelogProblemCode = TableProblemCode | 'CHANGELOG_NOT_INSTALLED' | 'CHANGELOG_OUTDATED';

export interface ChangelogProblem {
  code: ChangelogProblemCode;
  message: string;
}

export interface ChangelogInspection {
  /** The table as described now; undefined when it cannot be tracked at all. */
  table?: TableInfo;
  /** Empty when the table exists, has a primary key, and its changelog is installed and current. */
  problems: ChangelogProblem[];
}

/**
 * Compares a configured table with its changelog: the table exists and has a primary key, the
 * changelog table and triggers exist, and the migration recorded for them is the one for the
 * table's current columns and this Banyan's trigger DDL. `tableName` is the config's text, which the messages repeat;
 * `described` is the table as its caller described it a moment ago (not described again).
 * Connection failures are thrown, not reported: they say nothing about the config.
 */
export async function inspectChangelog(db: Knex, dialect: Dialect, tableName: string, described?: TableInfo): Promise<ChangelogInspection> {
  const ref = parseTableName(tableName);
  let table: TableInfo;
  try {
    table = described ?? (await dialect.describeTable(db, ref));
  } catch (error) {
    if (isTableProblem(error)) return { problems: [{ code: error.code, message: error.message }] };
    throw error;
  }
  const [state, recorded] = await Promise.all([dialect.changelogState(db, table), migrationState(db, dialect, table)]);
  const applied = recorded === 'current';
  const missing = [
    ...(state.table ? [] : [`changelog table ${dialect.changelogTable(ref).name}`]),
    ...state.missingTriggers.map((t) => `trigger ${t}`),
  ];
  if (missing.length > 0) {
    // knex believes a recorded migration is done, so `banyan migrate` alone would not reinstall it.
    const hint = applied
      ? `delete the row "${migrationName(dialect, table)}" from banyan_migrations, then run \`banyan migrate\``
      : 'run `banyan migrate`';
    return { table, problems: [{ code: 'CHANGELOG_NOT_INSTALLED', message: `the changelog of table ${tableName} is not installed (missing: ${missing.join(', ')}): ${hint}` }] };
  }
  if (recorded === 'older-ddl') {
    return {
      table,
      problems: [
        {
          code: 'CHANGELOG_OUTDATED',
          message: `the changelog triggers of table ${tableName} were made by another version of Banyan, whose triggers record changes differently: run \`banyan migrate\` to replace them (the changelog's rows are kept), or set autoMigrate: true`,
        },
      ],
    };
  }
  if (!applied) {
    return {
      table,
      problems: [
        {
          code: 'CHANGELOG_OUTDATED',
          message: `the changelog triggers of table ${tableName} were made for other columns than it has now (${table.columns.map((c) => c.name).join(', ')}): rows written now are recorded without any column added since \`banyan migrate\` last ran; run it again, or set autoMigrate: true`,
        },
      ],
    };
  }
  return { table, problems: [] };
}
