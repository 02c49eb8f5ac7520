import type { TableInfo, TableRef } from '../dialect';
import { changelogTable, ORIGIN_KEY, ORIGIN_TX_KEY } from './changelog';
import { DEFAULT_SCHEMA, displayName, ident, nLiteral, qualified, type SqlQuery } from './sql';
import { keyParameter, textExpression } from './types';

/** Columns, their types and their place in the primary key (null when not part of it). */
export function describeTableQuery(table: TableRef): SqlQuery {
  return {
    sql: `SELECT [c].[name] AS [name], [t].[name] AS [type_name], [bt].[name] AS [base_type_name],
  [t].[is_assembly_type] AS [is_assembly_type], [c].[max_length] AS [max_length], [c].[precision] AS [precision],
  [c].[scale] AS [scale], [c].[is_nullable] AS [is_nullable], [ic].[key_ordinal] AS [key_ordinal]
FROM [sys].[tables] AS [tb]
JOIN [sys].[schemas] AS [s] ON [s].[schema_id] = [tb].[schema_id]
JOIN [sys].[columns] AS [c] ON [c].[object_id] = [tb].[object_id]
JOIN [sys].[types] AS [t] ON [t].[user_type_id] = [c].[user_type_id]
LEFT JOIN [sys].[types] AS [bt] ON [bt].[user_type_id] = [c].[system_type_id]
LEFT JOIN [sys].[indexes] AS [pk] ON [pk].[object_id] = [tb].[object_id] AND [pk].[is_primary_key] = 1
LEFT JOIN [sys].[index_columns] AS [ic] ON [ic].[object_id] = [pk].[object_id] AND [ic].[index_id] = [pk].[index_id]
  AND [ic].[column_id] = [c].[column_id] AND [ic].[key_ordinal] > 0
WHERE [s].[name] = ? AND [tb].[name] = ?
ORDER BY [c].[column_id];`,
    bindings: [table.schema ?? DEFAULT_SCHEMA, table.name],
  };
}

/** The table's column names in order (the light read the poller makes for every batch). */
export function columnNamesQuery(table: TableRef): SqlQuery {
  return {
    sql: `SELECT [c].[name] AS [name] FROM [sys].[columns] AS [c] WHERE [c].[object_id] = OBJECT_ID(?, N'U') ORDER BY [c].[column_id];`,
    bindings: [displayName(table)],
  };
}

/**
 * What doctor checks of the changelog (read by health.ts changelogStateOf), in one result set,
 * since knex runs a batch's result sets together: whether the changelog table exists, the
 * `nested triggers` server option (NULL where this login cannot read it), then one row per
 * trigger of the table and statement it fires on, with its First/Last order and whether it is
 * disabled (one row of NULLs when the table has no trigger). OBJECT_ID takes the quoted names as
 * bound values. Every view read here is visible to a login with SELECT on the table.
 */
export function changelogStateQuery(table: TableRef): SqlQuery {
  return {
    sql: `SELECT CASE WHEN OBJECT_ID(?, N'U') IS NULL THEN 0 ELSE 1 END AS [changelog],
  (SELECT CONVERT(INT, [c].[value_in_use]) FROM [sys].[configurations] AS [c] WHERE [c].[name] = N'nested triggers') AS [nested_triggers],
  [tr].[name] AS [trigger], [tr].[is_disabled] AS [is_disabled], [tr].[is_instead_of_trigger] AS [is_instead_of],
  [ev].[type_desc] AS [event], [ev].[is_first] AS [is_first], [ev].[is_last] AS [is_last]
FROM (VALUES (1)) AS [one] ([x])
LEFT JOIN [sys].[triggers] AS [tr] ON [tr].[parent_id] = OBJECT_ID(?, N'U')
LEFT JOIN [sys].[trigger_events] AS [ev] ON [ev].[object_id] = [tr].[object_id]
ORDER BY [tr].[name], [ev].[type_desc];`,
    bindings: [displayName(changelogTable(table)), displayName(table)],
  };
}

/**
 * Locking READ COMMITTED for the rest of the batch it begins. A connection may come from the pool at
 * another level (a session keeps the level a transaction began with), and a SET sent alone through
 * knex is undone at once (every statement goes through sp_executesql), so each batch says it.
 */
export const RESET_ISOLATION = 'SET TRANSACTION ISOLATION LEVEL READ COMMITTED;';

/**
 * Up to `limit` changes after `after`, below the watermark. MIN_ACTIVE_ROWVERSION() is read once,
 * into a variable, before the SELECT: every rowversion below it belongs to a finished transaction
 * and every rowversion handed out later is higher, so nothing can appear below it any more. The
 * range `after < rv < @watermark` is a seek on the clustered rv index over finished rows only, so
 * under READ COMMITTED an open transaction's rows are neither read nor skipped: at worst (a lock
 * escalated to the table, or the first key past the range) the read waits for that transaction,
 * which costs latency, never a row. No READPAST (it would silently skip a finished row that
 * something else holds locked) and never NOLOCK.
 *
 * That reasoning needs locking READ COMMITTED, which neither the database nor the connection may
 * give: under READ_COMMITTED_SNAPSHOT (Azure SQL Database's default) a plain read returns the last
 * committed version without waiting, and a pooled connection may still be at another level (a
 * session keeps SET TRANSACTION ISOLATION LEVEL, and knex never resets it). So the batch sets the
 * level itself, for its own statements, and the READCOMMITTEDLOCK hint keeps the read
 * a locking one even where READ_COMMITTED_SNAPSHOT is on.
 */
export function readChangesQuery(table: TableRef, after: string, limit: number): SqlQuery {
  return {
    sql: `${RESET_ISOLATION}
DECLARE @watermark BINARY(8) = MIN_ACTIVE_ROWVERSION();
${behindCheck('@watermark')}
SELECT TOP (?) CONVERT(CHAR(18), [rv], 1) AS [rv], [op],
  DATEDIFF_BIG(MILLISECOND, '19700101', [changed_at]) AS [changed_ms],
  [origin], [origin_user], [before_image], [after_image]
FROM ${qualified(changelogTable(table))} WITH (READCOMMITTEDLOCK)
WHERE [rv] > CONVERT(BINARY(8), ?, 1) AND [rv] < @watermark
ORDER BY [rv];`,
    bindings: [after, after, limit, after],
  };
}

/** The error number readChangesQuery throws when the database is behind the stored position. */
export const BEHIND_POSITION_ERROR = 50002;

/**
 * A rowversion only grows, and every stored position was below the watermark when it was read: a
 * watermark at or below it means the database went back (a point-in-time restore, a copy, another
 * database under the same name). Changes made since then get rowversions the position already
 * passed, and reading on would skip them until the counter caught up, silently. So the read stops,
 * with both values (two bindings: the position).
 */
function behindCheck(watermark: string): string {
  return `IF ${watermark} <= CONVERT(BINARY(8), ?, 1)
BEGIN
  DECLARE @behind NVARCHAR(2048) = CONCAT(N'the database''s rowversion (MIN_ACTIVE_ROWVERSION() ', CONVERT(NVARCHAR(18), ${watermark}, 1), N') is at or below the stored position ', ?, N'; it went back (a restore or another database)');
  THROW ${BEHIND_POSITION_ERROR}, @behind, 1;
END;`;
}

/**
 * Rows one prune statement deletes at most. SQL Server escalates to a table lock when one statement
 * holds 5,000 locks on one table or index, and a table lock on the changelog would block every
 * legacy writer's trigger; a changelog row delete takes a key lock in the clustered index (and one
 * in the change_id index of an older layout's changelog), so 2,000 rows stay well below it. Each
 * statement commits on its own.
 */
export const PRUNE_BATCH = 2000;

/**
 * One bounded prune, in rowversion order from `from` (where the previous prune ended), never past
 * `upTo` (committed to Kafka) nor past the first row younger than `olderThan`. Both reads are bound
 * to the next `limit` rows: the window's first young row (if any) ends the range, `@end`, and the
 * delete is a plain range seek up to it. (A catch-all `@young IS NULL OR rv < @young` would not bound
 * the seek, and a search for the first young row unbounded would read the whole backlog for each
 * batch.) So the rows kept for retention are never scanned again. Returns `deleted` and `last_rv`,
 * the highest rowversion deleted (NULL when none). Like every batch of this dialect outside a
 * transaction of its own, it sets READ COMMITTED first: a DELETE on a connection left at SNAPSHOT
 * could fail with an update conflict (error 3960).
 */
export function pruneQuery(table: TableRef, from: string, upTo: string, olderThan: Date, limit: number): SqlQuery {
  const cl = qualified(changelogTable(table));
  const batch = Math.min(limit, PRUNE_BATCH);
  return {
    sql: `${RESET_ISOLATION}
DECLARE @from BINARY(8) = CONVERT(BINARY(8), ?, 1), @upTo BINARY(8) = CONVERT(BINARY(8), ?, 1);
DECLARE @olderThan DATETIME2(7) = CONVERT(DATETIME2(7), ?, 127);
DECLARE @end BINARY(8) = ISNULL((SELECT CONVERT(BINARY(8), CONVERT(BIGINT, MIN([w].[rv])) - 1)
  FROM (SELECT TOP (?) [rv], [changed_at] FROM ${cl} WHERE [rv] > @from AND [rv] <= @upTo ORDER BY [rv]) AS [w]
  WHERE [w].[changed_at] >= @olderThan), @upTo);
DECLARE @gone TABLE ([rv] BINARY(8) NOT NULL);
WITH [doomed] AS (
  SELECT TOP (?) [rv] FROM ${cl}
  WHERE [rv] > @from AND [rv] <= @end
  ORDER BY [rv]
)
DELETE FROM [doomed] OUTPUT [deleted].[rv] INTO @gone;
SELECT COUNT(*) AS [deleted], CONVERT(CHAR(18), MAX([rv]), 1) AS [last_rv] FROM @gone;`,
    bindings: [from, upTo, olderThan.toISOString(), batch, batch],
  };
}

/**
 * Read before the snapshot transaction begins: whether SNAPSHOT isolation is on, the row estimate,
 * and the position to stream from (MIN_ACTIVE_ROWVERSION() - 1, i.e. "read rv >= watermark").
 * Every change below that watermark was finished before the snapshot starts, so it is in the
 * snapshot; a change at or above it may or may not be, which `snapshotSeenQuery` settles.
 */
export function snapshotStartQuery(table: TableRef): SqlQuery {
  return {
    sql: `SELECT
  CONVERT(CHAR(18), CONVERT(BINARY(8), CONVERT(BIGINT, MIN_ACTIVE_ROWVERSION()) - 1), 1) AS [start_rv],
  (SELECT [snapshot_isolation_state] FROM [sys].[databases] WHERE [database_id] = DB_ID()) AS [snapshot_isolation_state],
  (SELECT SUM([p].[rows]) FROM [sys].[partitions] AS [p]
    JOIN [sys].[tables] AS [tb] ON [tb].[object_id] = [p].[object_id]
    JOIN [sys].[schemas] AS [s] ON [s].[schema_id] = [tb].[schema_id]
    WHERE [s].[name] = ? AND [tb].[name] = ? AND [p].[index_id] IN (0, 1)) AS [estimated_rows];`,
    bindings: [table.schema ?? DEFAULT_SCHEMA, table.name],
  };
}

/**
 * The first statement of the SNAPSHOT transaction, so it also fixes the snapshot: the changes at or
 * above the start position that the snapshot already contains. The stream skips exactly these.
 */
export function snapshotSeenQuery(table: TableRef, start: string, limit: number): SqlQuery {
  return {
    sql: `SELECT TOP (?) CONVERT(CHAR(18), [rv], 1) AS [rv] FROM ${qualified(changelogTable(table))}
WHERE [rv] > CONVERT(BINARY(8), ?, 1)
ORDER BY [rv];`,
    bindings: [limit, start],
  };
}

/** How many changes above `after` the snapshot holds (after the listed ones, when there are too many to list). */
export function snapshotSeenCountQuery(table: TableRef, after: string): SqlQuery {
  return {
    sql: `SELECT COUNT_BIG(*) AS [n] FROM ${qualified(changelogTable(table))} WHERE [rv] > CONVERT(BINARY(8), ?, 1);`,
    bindings: [after],
  };
}

/**
 * The oldest open transaction that has written in this database: the one that holds
 * MIN_ACTIVE_ROWVERSION() back. Needs VIEW SERVER STATE (SQL Server 2019) or VIEW SERVER
 * PERFORMANCE STATE (2022); without it the caller says so instead.
 */
export function pinningTransactionQuery(): SqlQuery {
  return {
    sql: `SELECT TOP (1) [st].[session_id] AS [session_id], [es].[login_name] AS [login_name], [es].[host_name] AS [host_name],
  [es].[program_name] AS [program_name], CONVERT(CHAR(23), [dt].[database_transaction_begin_time], 126) AS [begin_time]
FROM [sys].[dm_tran_database_transactions] AS [dt]
JOIN [sys].[dm_tran_session_transactions] AS [st] ON [st].[transaction_id] = [dt].[transaction_id]
JOIN [sys].[dm_exec_sessions] AS [es] ON [es].[session_id] = [st].[session_id]
WHERE [dt].[database_id] = DB_ID() AND [dt].[database_transaction_begin_time] IS NOT NULL AND [st].[session_id] <> @@SPID
ORDER BY [dt].[database_transaction_begin_time];`,
    bindings: [],
  };
}

/**
 * One keyset page in primary-key order, after `cursor` (the previous page's last key, as text).
 * For a key (a, b): `a >= ? AND ((a > ?) OR (a = ? AND b > ?))`; the redundant leading `a >= ?`
 * gives the optimizer a seek start, so a page never rescans the pages before it. Columns are
 * qualified by the table alias because ORDER BY would otherwise bind to the text-valued output
 * aliases of the same names.
 */
export function snapshotPageQuery(table: TableInfo, cursor: string[] | undefined, limit: number): SqlQuery {
  // Built for the first page too, so a key type that cannot be paged by fails before any row is read.
  const keys = table.primaryKey.map((name) => {
    const column = table.columns.find((c) => c.name === name);
    if (!column) throw new Error(`primary-key column "${name}" is not among the columns of ${table.name}`);
    return { column: `[t].${ident(name)}`, parameter: keyParameter(column) };
  });
  const select = table.columns.map((c) => `${textExpression(c, `[t].${ident(c.name)}`)} AS ${ident(c.name)}`).join(',\n  ');
  const bindings: Array<string | number> = [limit];
  let where = '';
  if (cursor) {
    if (cursor.length !== keys.length) throw new Error(`a snapshot cursor of ${table.name} needs ${keys.length} key values, got ${cursor.length}`);
    const compare = (i: number, operator: '>' | '>=' | '='): string => {
      bindings.push(cursor[i]!);
      return `${keys[i]!.column} ${operator} ${keys[i]!.parameter}`;
    };
    if (keys.length === 1) {
      where = `\nWHERE ${compare(0, '>')}`;
    } else {
      const seek = compare(0, '>=');
      const disjuncts = keys.map((_, i) => `(${keys.slice(0, i + 1).map((_k, j) => compare(j, j < i ? '=' : '>')).join(' AND ')})`);
      where = `\nWHERE ${seek}\n  AND (${disjuncts.join('\n    OR ')})`;
    }
  }
  const orderBy = keys.map((k) => k.column).join(', ');
  return {
    sql: `SELECT TOP (?)\n  ${select}\nFROM ${qualified(table)} AS [t]${where}\nORDER BY ${orderBy};`,
    bindings,
  };
}

/**
 * sp_set_session_context is per session, not per transaction, so the tag is paired with the
 * transaction that set it and the trigger honours it only inside that transaction.
 */
export function setOriginQuery(origin: string): SqlQuery {
  return {
    sql: `DECLARE @tx BIGINT = CURRENT_TRANSACTION_ID();
EXEC sp_set_session_context @key = ${nLiteral(ORIGIN_KEY)}, @value = ?, @read_only = 0;
EXEC sp_set_session_context @key = ${nLiteral(ORIGIN_TX_KEY)}, @value = @tx, @read_only = 0;`,
    bindings: [origin],
  };
}

export function clearOriginQuery(): SqlQuery {
  return {
    sql: `EXEC sp_set_session_context @key = ${nLiteral(ORIGIN_KEY)}, @value = NULL;
EXEC sp_set_session_context @key = ${nLiteral(ORIGIN_TX_KEY)}, @value = NULL;`,
    bindings: [],
  };
}
