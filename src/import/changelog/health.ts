import type { Knex } from 'knex';
import { errorMessage, type CheckResult, type HealthCheck } from '../../core';
import type { Dialect } from '../../dialects/dialect';
import type { ChangelogSourceConfig } from './config';
import { inspectChangelog } from './inspect';

/**
 * `banyan doctor`'s row for one changelog source: its table exists and has a primary key, and its
 * changelog table and triggers are installed and current (see inspectChangelog), enabled, and free
 * of the faults the dialect finds (Dialect.changelogState); the dialect's warnings and notes (other
 * triggers, server options) follow in the detail, and a warning alone does not fail the check.
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
      // Read again beside inspectChangelog's own read, which keeps only what the poller needs.
      const state = table ? await this.dialect.changelogState(this.db, table) : undefined;
      const failures = [
        ...problems.map((p) => p.message),
        ...(state?.disabledTriggers ?? []).map(
          (t) =>
            `trigger ${t} of table ${this.source.table} is disabled, so nothing written to the table is recorded: ALTER TABLE ${this.source.table} ENABLE TRIGGER ${t}; what was written while it was disabled is not in the changelog`,
        ),
        ...(state?.faults ?? []),
      ];
      const remarks = [...(state?.warnings ?? []).map((w) => `warning: ${w}`), ...(state?.notes ?? [])];
      const tail = remarks.map((r) => `; ${r}`).join('');
      if (failures.length > 0) return { name: this.name, ok: false, detail: `${this.location}: ${failures.join('; ')}${tail}` };
      return {
        name: this.name,
        ok: true,
        detail: `table ${this.source.table} (key ${table!.primaryKey.join(', ')}): changelog and triggers installed, current for its ${table!.columns.length} columns${tail}`,
      };
    } catch (error) {
      return { name: this.name, ok: false, detail: `database ${this.source.database}: ${errorMessage(error)}` };
    }
  }
}
