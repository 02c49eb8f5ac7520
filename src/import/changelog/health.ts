import type { Knex } from 'knex';
import { errorMessage, type CheckResult, type HealthCheck } from '../../core';
import type { Dialect } from '../../dialects/dialect';
import type { ChangelogSourceConfig } from './config';
import { inspectChangelog } from './inspect';

/**
 * `banyan doctor`'s row for one changelog source: its table exists and has a primary key, and its
 * changelog table and triggers are installed and current (see inspectChangelog).
 */
export class ChangelogSourceHealthCheck implements HealthCheck {
  readonly name: string;

  constructor(
    private readonly source: ChangelogSourceConfig,
    /** Where the source's table is in the config, e.g. `sources[1].table (line 17)`. */
    private readonly location: string,
    private readonly db: Knex,
    private readonly dialect: Dialect,
  ) {
    this.name = `source:${source.name}`;
  }

  async check(): Promise<CheckResult> {
    try {
      const { table, problems } = await inspectChangelog(this.db, this.dialect, this.source.table);
      if (problems.length > 0) {
        return { name: this.name, ok: false, detail: `${this.location}: ${problems.map((p) => p.message).join('; ')}` };
      }
      return {
        name: this.name,
        ok: true,
        detail: `table ${this.source.table} (key ${table!.primaryKey.join(', ')}): changelog and triggers installed, current for its ${table!.columns.length} columns`,
      };
    } catch (error) {
      return { name: this.name, ok: false, detail: `database ${this.source.database}: ${errorMessage(error)}` };
    }
  }
}
