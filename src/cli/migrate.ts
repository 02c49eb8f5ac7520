import { Databases } from '../clients/databases';
import { createDialect } from '../dialects';
import { migrateChangelogs } from '../import/changelog/migrate';
import { changelogSourceProblems } from '../import/changelog/preflight';
import { isTableProblemCode } from '../import/changelog/inspect';
import { configErrorAt, type BanyanConfig } from '../config';

/** `banyan migrate [--down]`: changelog tables and triggers for every changelog source, per database. */
export async function migrate(config: BanyanConfig, direction: 'up' | 'down'): Promise<string[]> {
  const databases = new Databases(config.databases);
  const lines: string[] = [];
  try {
    // Every table is checked before anything changes, so one run names every missing table.
    const problems = await changelogSourceProblems(config, databases, (p) => isTableProblemCode(p.code));
    if (problems.length > 0) throw configErrorAt(config, problems);
    const byDatabase = new Map<string, string[]>();
    for (const source of config.sources) {
      if (source.type === 'changelog') byDatabase.set(source.database, [...(byDatabase.get(source.database) ?? []), source.table]);
    }
    for (const [name, tables] of byDatabase) {
      const result = await migrateChangelogs(databases.get(name), createDialect(config.databases[name]!), tables, direction, { lockMs: config.databases[name]!.timeouts.lockMs });
      const done = result.migrations.length ? result.migrations.join(', ') : 'already up to date';
      lines.push(`${name}: ${direction === 'up' ? 'applied' : 'reverted'} ${done}`);
    }
  } finally {
    await databases.destroy();
  }
  return lines;
}
