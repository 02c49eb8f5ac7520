import type { Knex } from 'knex';
import { errorMessage, type Json } from '../../core';
import type { ChangeRow, Dialect, TableInfo, TableRef } from '../../dialects/dialect';
import { classifyDatabaseError } from '../../dialects/errors';
import type { Logger } from '../../runtime/logger';
import { inspectChangelog, isTableProblemCode } from './inspect';
import { migrateChangelogs } from './migrate';

export interface SchemaWatchOptions {
  db: Knex;
  dialect: Dialect;
  /** The table as the config writes it, and parsed. */
  table: string;
  ref: TableRef;
  autoMigrate: boolean;
  intervalMs: number;
  logger: Logger;
  now: () => number;
}

/**
 * Keeps a table and its changelog triggers in step. Triggers record the columns they were made
 * for, so after `ALTER TABLE … ADD COLUMN` every row is recorded without the new column until the
 * triggers are made again. This notices it (at connect, on every batch of changes by comparing
 * each image with the table's columns, and every `intervalMs` while idle), says so at error level,
 * in the source's status and metrics, flags each change recorded without a column, and with
 * `autoMigrate` recreates the triggers itself.
 */
export class SchemaWatch {
  private drift: { message: string; since: string; missingColumns: string[] } | undefined;
  private incompleteRecords = 0;
  private autoMigrations = 0;
  private lastCheck = 0;
  /** Columns a before image never holds (see Dialect.columnsNeverInBeforeImage), as of the last check. */
  private unrecordedBefore = new Set<string>();
  /** The columns each row of the last batch lacks; read by the record mapping. */
  private missing = new WeakMap<ChangeRow, string[]>();

  constructor(private readonly options: SchemaWatchOptions) {}

  /**
   * Compares the table with its migration record; installs or updates the triggers with autoMigrate.
   * `described`: the table as the caller described it a moment ago (at connect), not read again.
   */
  async check(described?: TableInfo): Promise<void> {
    this.lastCheck = this.options.now();
    const { table, problems } = await inspectChangelog(this.options.db, this.options.dialect, this.options.table, described).catch((error: unknown) => {
      throw classifyDatabaseError(error, `checking the changelog of ${this.options.table}`);
    });
    if (table) this.unrecordedBefore = new Set(this.options.dialect.columnsNeverInBeforeImage(table));
    // A missing table fails the source elsewhere (describe); here only the changelog's state counts.
    const changelog = problems.filter((p) => !isTableProblemCode(p.code));
    if (changelog.length === 0) return this.resolved();
    if (this.options.autoMigrate) return this.migrate(changelog[0]!.message, []);
    // A drift found in the rows names its columns: keep that rather than alternate with this one.
    if (!this.drift?.missingColumns.length) this.report(changelog[0]!.message, []);
  }

  async whenIdle(): Promise<void> {
    if (this.options.now() - this.lastCheck >= this.options.intervalMs) await this.check();
  }

  /**
   * Reads the table's columns after `rows` were read and finds, for each row, the columns the table has
   * that its image lacks. Such rows were written after the column was added and before the
   * triggers were made again: the value is gone from the changelog, so they are flagged, counted
   * and reported, never passed off as complete.
   */
  async checkRows(rows: ChangeRow[]): Promise<void> {
    this.lastCheck = this.options.now();
    this.missing = new WeakMap();
    const columns = await this.options.dialect.columnNames(this.options.db, this.options.ref).catch((error: unknown) => {
      throw classifyDatabaseError(error, `reading the columns of ${this.options.table}`);
    });
    const unrecordedBefore = this.unrecordedBefore;
    const lacking = new Set<string>();
    let incomplete = 0;
    for (const row of rows) {
      const image = row.after ?? row.before;
      if (!image) continue;
      const missing = columns.filter((c) => !(c in image) && !(row.after === null && unrecordedBefore.has(c)));
      if (missing.length === 0) continue;
      this.missing.set(row, missing);
      missing.forEach((c) => lacking.add(c));
      incomplete++;
    }
    if (incomplete === 0) {
      // Complete images prove the triggers record every column; a drift found by check() (a type
      // change, say) is left for check() to clear.
      if (this.drift?.missingColumns.length) this.resolved();
      return;
    }
    this.incompleteRecords += incomplete;
    const added = [...lacking];
    const message = `table ${this.options.table} has column(s) ${added.join(', ')} that its changelog triggers do not record`;
    this.options.logger.error(
      {
        event: 'schema.incomplete_records',
        table: this.options.table,
        columns: added,
        records: incomplete,
        positions: rows.filter((r) => this.missing.has(r)).map((r) => r.position).slice(0, 20),
      },
      `${message}: ${incomplete} change(s) were recorded without them; their records carry the header banyan.missing.columns`,
    );
    if (this.options.autoMigrate) await this.migrate(message, added);
    else this.report(`${message}: every change is recorded without them until \`banyan migrate\` runs (or set autoMigrate: true)`, added);
  }

  /** The columns `row`'s image lacks, or undefined when it is complete. */
  missingColumns(row: ChangeRow): string[] | undefined {
    return this.missing.get(row);
  }

  details(): Record<string, Json> {
    return {
      ...(this.drift ? { schemaDrift: this.drift.message, schemaDriftSince: this.drift.since, missingColumns: this.drift.missingColumns } : {}),
      ...(this.incompleteRecords > 0 ? { incompleteRecords: this.incompleteRecords } : {}),
      ...(this.autoMigrations > 0 ? { autoMigrations: this.autoMigrations } : {}),
    };
  }

  private report(message: string, missingColumns: string[]): void {
    const known = this.drift;
    if (known && known.message === message) return;
    // Once per drift and column set, not per batch: the count goes to incompleteRecords.
    this.drift = { message, since: known?.since ?? new Date(this.options.now()).toISOString(), missingColumns };
    this.options.logger.error({ event: 'schema.drift', table: this.options.table, missingColumns }, message);
  }

  private resolved(): void {
    if (!this.drift) return;
    this.options.logger.info({ event: 'schema.drift_resolved', table: this.options.table }, `the changelog triggers of ${this.options.table} match its columns again`);
    this.drift = undefined;
  }

  private async migrate(reason: string, missingColumns: string[]): Promise<void> {
    let result;
    try {
      result = await migrateChangelogs(this.options.db, this.options.dialect, [this.options.table]);
    } catch (error) {
      this.report(`${reason}; autoMigrate could not recreate the triggers: ${errorMessage(error)}`, missingColumns);
      throw classifyDatabaseError(error, `autoMigrate of ${this.options.table}`);
    }
    this.autoMigrations++;
    this.drift = undefined;
    this.options.logger.warn(
      { event: 'schema.auto_migrated', table: this.options.table, migrations: result.migrations, columns: result.tables[0]?.columns.map((c) => c.name) ?? [] },
      `autoMigrate: changelog triggers of ${this.options.table} recreated (${reason})`,
    );
  }
}
