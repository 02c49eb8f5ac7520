import type { DatabaseConfig, DialectName } from '../runtime/config';
import type { Dialect } from './dialect';
import { MssqlDialect } from './mssql.dialect';
import { MysqlDialect } from './mysql.dialect';
import { PostgresDialect } from './postgres.dialect';

export type { Dialect } from './dialect';

const FACTORIES: Record<DialectName, (config: DatabaseConfig) => Dialect> = {
  mssql: () => new MssqlDialect(),
  postgres: () => new PostgresDialect(),
  mysql: (config) => new MysqlDialect({ gapWaitMs: config.gapWaitMs, gapRetainMs: config.gapRetainMs }),
};

export function createDialect(config: DatabaseConfig): Dialect {
  return FACTORIES[config.dialect](config);
}
