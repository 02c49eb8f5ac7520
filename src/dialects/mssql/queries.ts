import type { TableInfo, TableRef } from '../dialect';
import { changelogTable, ORIGIN_KEY, ORIGIN_TX_KEY, triggerName } from './changelog';
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

/** Whether the changelog table and its trigger exist: OBJECT_ID takes the quoted names as bound values. */
export function changelogStateQuery(table: TableRef): SqlQuery {
  return {
    sql: `SELECT CASE WHEN OBJECT_ID(?, N'U') IS NULL THEN 0 ELSE 1 END AS [changelog],
  CASE WHEN OBJECT_ID(?, N'TR') IS NULL THEN 0 ELSE 1 END AS [trigger];`,
    bindings: [displayName(changelogTable(table)), displayName(triggerName(table))],
  };
}

/**
 * Up to `limit` changes after `after`, below the watermark. MIN_ACTIVE_ROWVERSION() is read once,
 * into a variable, before the SELECT: every rowversion below it belongs to a finished transaction
 * and every rowversion handed out later is higher, so nothing can appear below it any more. The
 * range `after < rv < @watermark` is a seek on the clustered rv index over finished rows only, so
 * under READ COMMITTED an open transaction's rows are neither read nor skipped: at worst (a lock
 * escalated to the table, or the first key past the range) the read waits for that transaction,
 * which costs latency, never a row. No READPAST (it would silently skip a finished row that
 * something else holds locked) and never NOLOCK.
 */
export function readChangesQuery(table: TableRef, after: string, limit: number): SqlQuery {
  return {
    sql: `DECLARE @watermark BINARY(8) = MIN_ACTIVE_ROWVERSION();
SELECT TOP (?) CONVERT(CHAR(18), [rv], 1) AS [rv], [op],
  DATEDIFF_BIG(MILLISECOND, '19700101', [changed_at]) AS [changed_ms],
  [origin], [before_image], [after_image]
FROM ${qualified(changelogTable(table))}
WHERE [rv] > CONVERT(BINARY(8), ?, 1) AND [rv] < @watermark
ORDER BY [rv];`,
    bindings: [limit, after],
  };
}

/** One bounded DELETE, then its row count (the only row the batch returns). */
export function pruneQuery(table: TableRef, upTo: string, olderThan: Date, limit: number): SqlQuery {
  return {
    sql: `DELETE TOP (?) FROM ${qualified(changelogTable(table))}
WHERE [rv] <= CONVERT(BINARY(8), ?, 1) AND [changed_at] < CONVERT(DATETIME2(7), ?, 127);
SELECT @@ROWCOUNT AS [deleted];`,
    bindings: [limit, upTo, olderThan.toISOString()],
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
export function snapshotSeenQuery(table: TableRef, start: string): SqlQuery {
  return {
    sql: `SELECT CONVERT(CHAR(18), [rv], 1) AS [rv] FROM ${qualified(changelogTable(table))}
WHERE [rv] > CONVERT(BINARY(8), ?, 1)
ORDER BY [rv];`,
    bindings: [start],
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
