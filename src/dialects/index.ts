import type { Dialect } from './dialect';
import type { DialectName, Driver } from './driver';
import { MssqlDialect, mssqlDriver } from './mssql.dialect';
import { MysqlDialect, mysqlDriver } from './mysql.dialect';
import { PostgresDialect, postgresDriver } from './postgres.dialect';

export type { Dialect } from './dialect';
export { parseTableName, writtenName } from './shared-catalog';
export { DIALECTS, type ConnectionSettings, type DialectName, type Driver } from './driver';

/** What a dialect is made with: the database's config section, as far as the dialect reads it. */
export interface DialectSettings {
  dialect: DialectName;
  /** MySQL/MariaDB: how long a gap in the changelog sequence is waited for, and re-checked after. */
  gapWaitMs: number;
  gapRetainMs: number;
  /** How long statements may take (SQL Server's per kind; lockMs for every dialect's migrate). */
  timeouts: StatementTimeouts;
}

export interface StatementTimeouts {
  lockMs: number;
  requestMs: number;
  readMs: number;
  snapshotPageMs: number;
  pruneMs: number;
  migrateMs: number;
}

const FACTORIES: Record<DialectName, (settings: DialectSettings) => Dialect> = {
  mssql: (settings) => new MssqlDialect(settings.timeouts),
  postgres: () => new PostgresDialect(),
  mysql: (settings) => new MysqlDialect({ gapWaitMs: settings.gapWaitMs, gapRetainMs: settings.gapRetainMs }),
};

export const DRIVERS: Record<DialectName, Driver> = { mssql: mssqlDriver, postgres: postgresDriver, mysql: mysqlDriver };

export function createDialect(settings: DialectSettings): Dialect {
  return FACTORIES[settings.dialect](settings);
}
