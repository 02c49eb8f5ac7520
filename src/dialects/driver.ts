import type { Knex } from 'knex';
/** The databases Banyan speaks to; `mariadb` in a config is `mysql`. */
export const DIALECTS = ['mssql', 'postgres', 'mysql'] as const;
export type DialectName = (typeof DIALECTS)[number];

/** What a database connection is opened with: the config's database section, as far as a driver needs it. */
export interface ConnectionSettings {
  dialect: DialectName;
  host: string;
  port?: number | undefined;
  database: string;
  user: string;
  password?: string | undefined;
  ssl: boolean;
  /** The default request timeout of a statement, where the driver has one (SQL Server). */
  timeouts?: { requestMs: number } | undefined;
}

/**
 * How knex reaches one kind of database: its driver, the usual port, the driver's own connection
 * options, and the query that tells the server's version (for `doctor`). One per dialect file.
 */
export interface Driver {
  /** knex's client: its name, or a class extending knex's own (SQL Server, for per-statement timeouts). */
  client: 'pg' | 'mysql2' | (new (config: Knex.Config) => Knex.Client);
  defaultPort: number;
  /** The driver's connection options, beyond host, port, database, user and password. */
  connectionOptions(settings: ConnectionSettings): Record<string, unknown>;
  versionQuery: string;
}
