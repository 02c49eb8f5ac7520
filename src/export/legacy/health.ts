import type { Knex } from 'knex';
import { errorMessage, type CheckResult, type HealthCheck } from '../../core';
import { GUARD_TABLE, SINK_OFFSETS_TABLE, type Dialect } from '../../dialects/dialect';
import { parseTableName } from '../../dialects/shared-catalog';
import type { LegacySinkTarget } from './config';
import { mappingProblems } from '../plan';

/**
 * `banyan doctor`'s row for one legacy sink: its table exists, its mapping's columns and key fit
 * it, and whether Banyan's guard and offset tables are there yet (the sink creates them at start).
 */
export class LegacySinkHealthCheck implements HealthCheck {
  readonly name: string;

  constructor(
    sinkName: string,
    private readonly target: LegacySinkTarget,
    private readonly db: Knex,
    private readonly dialect: Dialect,
    private readonly softDeleteColumn?: string,
  ) {
    this.name = `sink:${sinkName}`;
  }

  async check(): Promise<CheckResult> {
    try {
      const table = await this.dialect.describeTable(this.db, parseTableName(this.target.table));
      const problems = mappingProblems(this.target.mapping, table, this.softDeleteColumn);
      if (problems.length > 0) return { name: this.name, ok: false, detail: `mapping "${this.target.mapping.name}" does not fit table ${this.target.table}: ${problems.join('; ')}` };
      const missing: string[] = [];
      for (const name of [GUARD_TABLE, SINK_OFFSETS_TABLE]) {
        if ((await this.dialect.columnNames(this.db, { ...(table.schema !== undefined ? { schema: table.schema } : {}), name })).length === 0) missing.push(name);
      }
      const tables = missing.length ? `; ${missing.join(' and ')} created at the sink's first start` : `; ${GUARD_TABLE} and ${SINK_OFFSETS_TABLE} present`;
      return { name: this.name, ok: true, detail: `table ${this.target.table} (key ${table.primaryKey.join(', ')}) fits mapping "${this.target.mapping.name}"${tables}` };
    } catch (error) {
      return { name: this.name, ok: false, detail: `database ${this.target.database}: ${errorMessage(error)}` };
    }
  }
}
