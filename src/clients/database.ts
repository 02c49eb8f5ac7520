import knex, { type Knex } from 'knex';
import { DRIVERS, type ConnectionSettings, type DialectName } from '../dialects';

/** A database section of the config, as far as a connection pool needs it. */
export interface DatabaseSettings extends ConnectionSettings {
  pool: { min: number; max: number };
}

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
export function createKnex(settings: DatabaseSettings, log: KnexLog = stderrLog): Knex {
  const driver = DRIVERS[settings.dialect];
  return knex({
    client: driver.client as Knex.Config['client'],
    connection: {
      host: settings.host,
      port: settings.port ?? driver.defaultPort,
      database: settings.database,
      user: settings.user,
      password: settings.password,
      ...driver.connectionOptions(settings),
    },
    pool: { min: settings.pool.min, max: settings.pool.max },
    log: { warn: log.warn, error: log.error, deprecate: log.warn, debug: () => undefined },
  });
}

export function defaultPort(dialect: DialectName): number {
  return DRIVERS[dialect].defaultPort;
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
