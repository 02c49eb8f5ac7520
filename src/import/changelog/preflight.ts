import type { Databases } from '../../clients/databases';
import { BanyanError } from '../../core';
import { createDialect } from '../../dialects';
import { classifyDatabaseError } from '../../dialects/errors';
import type { Logger } from '../../runtime/logger';
import type { ImportConfig } from '../config';
import { changelogTopic, type ChangelogSourceConfig } from './config';
import { inspectChangelog, type ChangelogInspection, type ChangelogProblem } from './inspect';
import type { TableInfo } from '../../dialects/dialect';

/** A database that has not answered by then counts as unreachable here, so `run` is not held up. */
const UNREACHABLE_AFTER_MS = 10_000;

export interface SourceProblem {
  /** The config path of the source's `table`, for configErrorAt. */
  path: Array<string | number>;
  message: string;
}

/**
 * Every changelog source's table checked at once, so a config naming three missing tables is told
 * about all three. `keep` picks the problems that matter to the caller. A database that cannot be
 * reached (a retriable driver error, or no answer by the deadline) is no config problem: that
 * source's check is skipped, with a warning on `logger`, and the caller meets it when it connects.
 * Any other failure (a permission refused, a bug) is thrown, naming the source.
 */
export async function changelogSourceProblems(
  config: ImportConfig,
  databases: Databases,
  keep: (problem: ChangelogProblem, source: ChangelogSourceConfig) => boolean,
  logger?: Logger,
  /** Told each table that could be described, with the topic its source writes (the transforms check their columns). */
  onTable?: (topic: string, table: TableInfo, source: ChangelogSourceConfig) => void,
): Promise<SourceProblem[]> {
  const found = await Promise.all(
    config.sources.map(async (source, i): Promise<SourceProblem[]> => {
      if (source.type !== 'changelog') return [];
      const db = databases.get(source.database);
      const dialect = createDialect(config.databases[source.database]!);
      const inspection = await withDeadline(inspectChangelog(db, dialect, source.table), UNREACHABLE_AFTER_MS).catch((error: unknown) => {
        const failure = classifyDatabaseError(error, `checking table ${source.table} of source "${source.name}" (database ${source.database})`);
        if (!failure.retriable) throw failure;
        logger?.warn(
          { event: 'preflight.skipped', source: source.name, database: source.database, table: source.table, reason: failure.message },
          `check of source "${source.name}" skipped: database ${source.database} unreachable`,
        );
        return { problems: [] } as ChangelogInspection;
      });
      if (inspection.table) onTable?.(changelogTopic(source), inspection.table, source);
      return inspection.problems
        .filter((p) => keep(p, source))
        .map((p) => ({ path: ['sources', i, 'table'], message: `source "${source.name}" (database ${source.database}): ${p.message}` }));
    }),
  );
  return found.flat();
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BanyanError(`no answer within ${ms} ms`, { retriable: true, stage: 'receiving', code: 'TIMEOUT' })), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

