import knex, { type Knex } from 'knex';
import type { DatabaseConfig, DialectName } from '../runtime/config';

const DRIVERS: Record<DialectName, { client: string; port: number }> = {
  mssql: { client: 'mssql', port: 1433 },
  postgres: { client: 'pg', port: 5432 },
  mysql: { client: 'mysql2', port: 3306 },
};

/** Where knex's own warnings go; by default stderr, so stdout stays for a command's output. */
export interface KnexLog {
  warn(message: string): void;
  error(message: string): void;
}

const stderrLog: KnexLog = {
  warn: (message) => process.stderr.write(`knex: ${message}\n`),
  error: (message) => process.stderr.write(`knex: ${message}\n`),
};

/** A knex pool for one configured database. The caller owns it and must `destroy()` it. */
export function createKnex(config: DatabaseConfig, log: KnexLog = stderrLog): Knex {
  const driver = DRIVERS[config.dialect];
  const connection: Record<string, unknown> = {
    host: config.host,
    port: config.port ?? driver.port,
    database: config.database,
    user: config.user,
    password: config.password,
  };
  if (config.dialect === 'mssql') {
    // tedious wants `server` and its TLS settings under `options`.
    connection.server = config.host;
    connection.options = { encrypt: config.ssl, trustServerCertificate: !config.ssl };
  } else if (config.ssl) {
    connection.ssl = true;
  }
  if (config.dialect === 'mysql') {
    // Keep DECIMAL and BIGINT exact and DATETIME as written: the changelog carries them as text.
    Object.assign(connection, { supportBigNumbers: true, bigNumberStrings: true, decimalNumbers: false, dateStrings: true });
  }
  return knex({
    client: driver.client,
    connection,
    pool: { min: config.pool.min, max: config.pool.max },
    log: { warn: log.warn, error: log.error, deprecate: log.warn, debug: () => undefined },
  });
}

export function defaultPort(dialect: DialectName): number {
  return DRIVERS[dialect].port;
}

/** knex.raw answers differ per driver: pg gives {rows}, mysql2 [rows, fields], mssql rows. */
export function firstRow(result: unknown): Record<string, unknown> | undefined {
  if (Array.isArray(result)) {
    const first = result[0];
    return (Array.isArray(first) ? first[0] : first) as Record<string, unknown> | undefined;
  }
  const rows = (result as { rows?: unknown[] } | undefined)?.rows;
  return rows?.[0] as Record<string, unknown> | undefined;
}
