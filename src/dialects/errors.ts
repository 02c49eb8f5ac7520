import { BanyanError, errorMessage } from '../core';

/**
 * Driver error codes after which the same statement may succeed later: lost connections,
 * deadlocks, lock timeouts, a server shutting down or out of connections. Decided from codes,
 * never from message text. (node-postgres SQLSTATE, mysql2 errno/code, tedious number/code.)
 */
const RETRIABLE_CODES = new Set<string>([
  // network, all drivers
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  // PostgreSQL SQLSTATE
  '40001', '40P01', '53300', '55P03', '57P01', '57P02', '57P03',
  // MySQL / MariaDB
  'PROTOCOL_CONNECTION_LOST', 'ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'ER_CON_COUNT_ERROR', 'ER_SERVER_SHUTDOWN',
  // SQL Server (tedious)
  'ESOCKET', 'ECONNCLOSED', 'ETIMEOUT', 'ELOGIN_TRANSIENT',
]);
/** SQL Server error numbers: deadlock victim, lock timeout, database unavailable, Azure throttling. */
const RETRIABLE_MSSQL_NUMBERS = new Set<number>([1205, 1222, 4060, 40197, 40501, 40613, 49918, 49919, 49920]);

export function isRetriableDatabaseError(error: unknown): boolean {
  const e = error as { code?: unknown; errno?: unknown; number?: unknown; sqlState?: unknown };
  if (typeof e?.code === 'string' && (RETRIABLE_CODES.has(e.code) || e.code.startsWith('08'))) return true;
  if (typeof e?.number === 'number' && RETRIABLE_MSSQL_NUMBERS.has(e.number)) return true;
  // knex: pool could not hand out a connection in time.
  return (error as Error)?.name === 'KnexTimeoutError';
}

/** Wraps a driver error as a BanyanError that says what Banyan was doing and whether to retry. */
export function classifyDatabaseError(error: unknown, doing: string): BanyanError {
  if (error instanceof BanyanError) return error;
  const code = (error as { code?: unknown })?.code;
  return new BanyanError(`${doing}: ${errorMessage(error)}`, {
    retriable: isRetriableDatabaseError(error),
    stage: 'receiving',
    ...(code !== undefined ? { code: String(code) } : {}),
    cause: error,
  });
}

/**
 * The database is behind the position a source stored (a point-in-time restore, another database):
 * reading on would skip changes, so the source stops until someone decides (never retried).
 */
export const DATABASE_WENT_BACK = 'DATABASE_WENT_BACK';

/** Why a configured table cannot be tracked: a mistake in the config or the database, never worth a retry. */
export const TABLE_PROBLEM_CODES = ['TABLE_NOT_FOUND', 'NO_PRIMARY_KEY', 'NOT_A_TABLE'] as const;
export type TableProblemCode = (typeof TABLE_PROBLEM_CODES)[number];

export function isTableProblemCode(code: string): code is TableProblemCode {
  return (TABLE_PROBLEM_CODES as readonly string[]).includes(code);
}

export class TableProblemError extends BanyanError {
  declare readonly code: TableProblemCode;

  constructor(message: string, code: TableProblemCode, table: string) {
    super(message, { retriable: false, stage: 'receiving', code, context: { table } });
  }
}

export function isTableProblem(error: unknown): error is TableProblemError {
  return error instanceof TableProblemError;
}

/**
 * The database's own message of a driver error, without the statement knex puts before it
 * (`UPDATE … - value too long…`): mysql2's sqlMessage, tedious's message, PostgreSQL's message
 * with its detail.
 */
export function databaseMessage(error: unknown): string {
  const e = error as { sqlMessage?: unknown; message?: unknown; detail?: unknown; code?: unknown };
  if (typeof e?.sqlMessage === 'string') return e.sqlMessage;
  let message = typeof e?.message === 'string' ? e.message : errorMessage(error);
  // knex writes `<statement> - <message>`; a PostgreSQL error's code is its SQLSTATE.
  if (typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) {
    const cut = message.lastIndexOf(' - ');
    if (cut >= 0) message = message.slice(cut + 3);
    if (typeof e.detail === 'string') message += ` (${e.detail})`;
  }
  return message;
}
