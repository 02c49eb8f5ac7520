import type { Driver } from './driver';
import type { Knex } from 'knex';
import type { ChangeBatch, ChangelogState, ChangeRow, Dialect, Position, Snapshot, TableInfo, TableRef, MigrationGuard } from './dialect';
import { describeMysqlTable } from './mysql/describe';
import { advance, expireGaps, parsePosition, toPosition, type GapOptions } from './mysql/gaps';
import { openMysqlSnapshot } from './mysql/snapshot';
import { mysqlWrites } from './mysql/writes';
import { writtenName } from './shared-catalog';
import {
  addWriterColumnDdl,
  changelogDdl,
  changelogName,
  changelogTriggerNames,
  isTrustedWriter,
  parseImage,
  qualified,
  quoteIdentifier,
  uninstallDdl,
} from './mysql/sql';

export interface MysqlDialectOptions {
  /** How long a missing change_id is waited for before the ids after it are emitted. */
  gapWaitMs?: number;
  /** How long a passed gap is re-read for a late commit before it is given up. */
  gapRetainMs?: number;
}

/** The longest origin tag the changelog's VARCHAR(128) holds. */
const MAX_ORIGIN = 128;

interface ChangelogRow {
  change_id: number | string;
  op: string;
  changed_at: string;
  origin: string | null;
  origin_user: string | null;
  before_image: unknown;
  after_image: unknown;
}

/** mysql2, for MySQL and MariaDB. */
export const mysqlDriver: Driver = {
  client: 'mysql2',
  defaultPort: 3306,
  // Keep DECIMAL and BIGINT exact and DATETIME as written: the changelog carries them as text.
  connectionOptions: (settings) => ({
    ...(settings.ssl ? { ssl: true } : {}),
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: false,
    dateStrings: true,
  }),
  versionQuery: 'SELECT VERSION() AS version',
};

/**
 * MySQL 8 and MariaDB 10.6+. The changelog's AUTO_INCREMENT change_id is a dense sequence with
 * temporary gaps (transactions in flight) and permanent ones (rollbacks); `mysql/gaps.ts` explains
 * how a gap is waited for, passed and remembered. Reads are plain autocommit SELECTs, each its own
 * consistent read, so every poll sees the latest commits.
 */
export class MysqlDialect implements Dialect {
  readonly name = 'mysql' as const;
  readonly writes = mysqlWrites;

  /**
   * lock_wait_timeout (whole seconds) bounds the metadata lock CREATE TRIGGER and ALTER TABLE wait
   * for; it is a session setting, so it is set back to the server's default after the table. (MySQL
   * DDL commits implicitly: one table's install is not one transaction here.) ER_LOCK_WAIT_TIMEOUT.
   */
  migrationGuard(lockMs: number): MigrationGuard {
    return {
      before: [`SET SESSION lock_wait_timeout = ${Math.max(1, Math.ceil(lockMs / 1000))}`],
      after: ['SET SESSION lock_wait_timeout = DEFAULT'],
      isLockTimeout: (error) => (error as { errno?: unknown })?.errno === 1205,
    };
  }
  private readonly gapOptions: GapOptions;

  constructor(options: MysqlDialectOptions = {}) {
    this.gapOptions = {
      gapWaitMs: options.gapWaitMs ?? 2000,
      gapRetainMs: options.gapRetainMs ?? 10 * 60_000,
      // ~45 kB of position at most; more would weigh on every offset commit and every read.
      maxGaps: 1000,
    };
  }

  quoteIdentifier(name: string): string {
    return quoteIdentifier(name);
  }

  describeTable(db: Knex, table: TableRef): Promise<TableInfo> {
    return describeMysqlTable(db, table);
  }

  changelogTable(table: TableRef): TableRef {
    return { schema: table.schema, name: changelogName(table.name) };
  }

  installChangelog(table: TableInfo): string[] {
    return changelogDdl(table);
  }

  /**
   * One catalog read; the ALTER only for a changelog that exists without the writer column, its
   * metadata-lock wait bounded as the install's is.
   */
  async upgradeChangelog(db: Knex, table: TableRef, lockMs: number): Promise<void> {
    const [[row]] = (await db.raw(
      `SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?) AS t,
              (SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND COLUMN_NAME = 'origin_user') AS c`,
      [table.schema ?? null, this.changelogTable(table).name, table.schema ?? null, this.changelogTable(table).name],
    )) as [[{ t: number | string; c: number | string }]];
    if (Number(row.t) === 0 || Number(row.c) > 0) return;
    const guard = this.migrationGuard(lockMs);
    // One connection, so the session's lock_wait_timeout applies to the ALTER and is set back after.
    await db.transaction(async (trx) => {
      try {
        for (const statement of guard.before) await trx.raw(statement);
        await trx.raw(addWriterColumnDdl(table));
      } catch (error) {
        // Another process added it since the read (ER_DUP_FIELDNAME): what was wanted is there.
        if ((error as { errno?: number }).errno === 1060) return;
        if (!guard.isLockTimeout(error)) throw error;
        throw new Error(
          `table ${writtenName(table)}: adding origin_user to its changelog waited more than ${lockMs} ms for a lock (a session of the application holds one); ` +
            `nothing was changed. Run banyan migrate again when the table is quiet, or raise the database's timeouts.lockMs. (${(error as Error).message})`,
          { cause: error },
        );
      } finally {
        for (const statement of guard.after) await trx.raw(statement).catch(() => undefined);
      }
    });
  }

  async changelogState(db: Knex, table: TableRef): Promise<ChangelogState> {
    const schema = table.schema ?? null;
    const [[[found]], [present]] = (await Promise.all([
      db.raw('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?', [
        schema,
        this.changelogTable(table).name,
      ]),
      db.raw(
        'SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = COALESCE(?, DATABASE()) AND EVENT_OBJECT_TABLE = ?',
        [schema, table.name],
      ),
    ])) as [[Array<{ n: number | string }>], [Array<{ name: string }>]];
    const triggers = changelogTriggerNames(table);
    const names = new Set(present.map((t) => t.name));
    return { table: Number(found?.n) > 0, triggers, missingTriggers: triggers.filter((t) => !names.has(t)) };
  }

  async columnNames(db: Knex, table: TableRef): Promise<string[]> {
    const [rows] = (await db.raw(
      'SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
      [table.schema ?? null, table.name],
    )) as [Array<{ name: string }>];
    return rows.map((r) => r.name);
  }

  columnsNeverInBeforeImage(): string[] {
    return [];
  }

  uninstallChangelog(table: TableRef): string[] {
    return uninstallDdl(table);
  }

  async readChanges(db: Knex, table: TableInfo, position: Position | undefined, limit: number, now: number): Promise<ChangeBatch> {
    const start = parsePosition(position);
    // One statement, so one consistent read: a late row and a later change of the same row are
    // seen together and come out in id order.
    const where = ['change_id > ?', ...start.gaps.map(() => 'change_id BETWEEN ? AND ?')].join(' OR ');
    const [rows] = (await db.raw(
      `SELECT change_id, op, CAST(changed_at AS CHAR) AS changed_at, origin, origin_user, before_image, after_image
         FROM ${qualified(this.changelogTable(table))}
        WHERE ${where}
        ORDER BY change_id LIMIT ?`,
      [start.next, ...start.gaps.flatMap((g) => [g.from, g.to]), limit],
    )) as [ChangelogRow[]];
    const step = advance(start, rows.map((r) => toId(r.change_id)), now, this.gapOptions);
    // Expired gaps were still read this once: after a snapshot longer than gapRetainMs, the
    // transactions it saw in flight are found here rather than given up unread.
    const { position: end, expired } = expireGaps(step.position, now, this.gapOptions.gapRetainMs);

    const after = toPosition(end);
    const unchanged = position !== undefined && JSON.stringify(after) === JSON.stringify(position);
    const notes = {
      ...(step.gapsPassed ? { gapsPassed: step.gapsPassed } : {}),
      ...(step.lateRows ? { lateRows: step.lateRows } : {}),
      ...(expired + step.gapsDropped ? { gapsExpired: expired + step.gapsDropped } : {}),
    };
    return {
      rows: rows.slice(0, step.emit).map(toChangeRow),
      position: unchanged ? position : after,
      ...(Object.keys(notes).length ? { notes } : {}),
    };
  }

  openSnapshot(db: Knex, table: TableInfo, now: number): Promise<Snapshot> {
    return openMysqlSnapshot(db, table, now, { maxGaps: this.gapOptions.maxGaps });
  }

  async pruneChangelog(db: Knex, table: TableInfo, position: Position, olderThan: Date, limit: number): Promise<number> {
    const p = parsePosition(position);
    // Stop below the first remembered gap: late rows inside it are still to be read.
    const upTo = Math.min(p.next, ...p.gaps.map((g) => g.from - 1));
    if (upTo < 1) return 0;
    const [result] = (await db.raw(
      `DELETE FROM ${qualified(this.changelogTable(table))} WHERE change_id <= ? AND changed_at < ? ORDER BY change_id LIMIT ?`,
      [upTo, utcText(olderThan), limit],
    )) as [{ affectedRows: number }];
    return result.affectedRows;
  }

  async setOrigin(trx: Knex.Transaction, origin: string): Promise<void> {
    if ([...origin].length > MAX_ORIGIN) throw new Error(`origin tag is longer than ${MAX_ORIGIN} characters: ${origin.slice(0, 40)}…`);
    await trx.raw('SET @banyan_origin = ?', [origin]);
  }

  async clearOrigin(trx: Knex.Transaction): Promise<void> {
    // A user variable outlives the transaction: it must not tag the next user of this connection.
    await trx.raw('SET @banyan_origin = NULL');
  }

  isTrustedWriter(writer: string, trusted: string): boolean {
    return isTrustedWriter(writer, trusted);
  }
}

function toId(value: number | string): number {
  const id = Number(value);
  if (!Number.isSafeInteger(id)) throw new Error(`change_id ${value} is beyond 2^53: positions cannot hold it exactly`);
  return id;
}

function toChangeRow(row: ChangelogRow): ChangeRow {
  if (row.op !== 'I' && row.op !== 'U' && row.op !== 'D') throw new Error(`changelog row ${row.change_id} has an unknown op '${row.op}'`);
  return {
    op: row.op,
    changedAt: parseUtc(row.changed_at),
    origin: row.origin,
    originUser: row.origin_user,
    before: parseImage(row.before_image),
    after: parseImage(row.after_image),
    position: String(row.change_id).padStart(20, '0'),
  };
}

/** 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC, as the trigger wrote it) to ms since the epoch. */
export function parseUtc(text: string): number {
  const n = (from: number, to: number) => Number(text.slice(from, to));
  return Date.UTC(n(0, 4), n(5, 7) - 1, n(8, 10), n(11, 13), n(14, 16), n(17, 19), text.length > 20 ? n(20, 23) : 0);
}

/** A Date as the UTC DATETIME(6) text the changelog stores. */
function utcText(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', '');
}
