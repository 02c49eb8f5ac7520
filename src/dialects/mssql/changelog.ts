import type { Column, TableInfo, TableRef } from '../dialect';
import { DEFAULT_SCHEMA, displayName, ident, nLiteral, qualified, quoteIdentifier } from './sql';
import { isLegacyLob, textExpression } from './types';

/** SQL Server's limit on identifier length. */
const MAX_IDENTIFIER = 128;

/** The session-context keys the exporter sets and the trigger reads (see setOrigin). */
export const ORIGIN_KEY = 'banyan.origin';
export const ORIGIN_TX_KEY = 'banyan.origin_tx';

export function changelogTable(table: TableRef): TableRef {
  return { schema: table.schema ?? DEFAULT_SCHEMA, name: `banyan_cl_${table.name}` };
}

export function triggerName(table: TableRef): TableRef {
  return { schema: table.schema ?? DEFAULT_SCHEMA, name: `banyan_cl_${table.name}_trg` };
}

export function sequenceName(table: TableRef): TableRef {
  return { schema: table.schema ?? DEFAULT_SCHEMA, name: `banyan_cl_${table.name}_seq` };
}

/**
 * Three statements, run one by one (CREATE TRIGGER must be alone in its batch, and knex sends one
 * batch per call): the change_id sequence and the changelog table if they are missing, then the
 * trigger for exactly `table.columns`, replaced in place, so a reinstall after ALTER TABLE picks up
 * new columns.
 */
export function installStatements(table: TableInfo): string[] {
  assertTrackable(table);
  return [createSequence(table), createChangelog(table), createTrigger(table), triggerFirst(table)];
}

/**
 * SQL Server has no BEFORE triggers, so a legacy table's own AFTER trigger often updates the rows
 * again (a modified_at setter). Its nested UPDATE fires Banyan's trigger, which records the new
 * state. Banyan's firing for the outer statement must come before that, not after: `inserted` holds
 * the rows as the outer statement left them, so a firing after the legacy trigger's would record
 * that older state with a higher rowversion, and consumers would end on it. So Banyan's trigger
 * fires first for all three operations, set again after every CREATE OR ALTER (which resets the
 * order). (Issue 12 asked for Last; docs/dialect-mssql.md, Trigger order, says why First.) Another
 * trigger already marked First makes the install fail, naming it.
 */
function triggerFirst(table: TableInfo): string {
  const trigger = triggerName(table);
  const name = nLiteral(qualified(trigger));
  return `DECLARE @other SYSNAME, @event NVARCHAR(60), @message NVARCHAR(2048);
SELECT TOP (1) @other = [t].[name], @event = [e].[type_desc]
FROM sys.triggers AS [t] JOIN sys.trigger_events AS [e] ON [e].[object_id] = [t].[object_id]
WHERE [t].[parent_id] = OBJECT_ID(${nLiteral(displayName(table))}) AND [e].[is_first] = 1 AND [t].[name] <> ${nLiteral(trigger.name)};
IF @other IS NOT NULL
BEGIN
  SET @message = CONCAT(${nLiteral(`table ${displayName(table)}: trigger `)}, @other, N' is set to fire first on ', @event, N'; Banyan''s changelog trigger must fire first (docs/dialect-mssql.md, Trigger order)');
  THROW 50001, @message, 1;
END;
EXEC sys.sp_settriggerorder @triggername = ${name}, @order = N'First', @stmttype = N'INSERT';
EXEC sys.sp_settriggerorder @triggername = ${name}, @order = N'First', @stmttype = N'UPDATE';
EXEC sys.sp_settriggerorder @triggername = ${name}, @order = N'First', @stmttype = N'DELETE';`;
}

export function uninstallStatements(table: TableRef): string[] {
  return [
    `DROP TRIGGER IF EXISTS ${qualified(triggerName(table))};`,
    `DROP TABLE IF EXISTS ${qualified(changelogTable(table))};`,
    `DROP SEQUENCE IF EXISTS ${qualified(sequenceName(table))};`,
  ];
}

/**
 * change_id comes from a sequence, not IDENTITY: an identity insert in the trigger would change
 * what `@@IDENTITY` returns to the legacy application after its own INSERT, and old code that
 * reads `@@IDENTITY` (not SCOPE_IDENTITY()) would then link rows to the changelog's id.
 */
function createSequence(table: TableInfo): string {
  const seq = sequenceName(table);
  return `IF OBJECT_ID(${nLiteral(displayName(seq))}, N'SO') IS NULL
  CREATE SEQUENCE ${qualified(seq)} AS BIGINT START WITH 1 INCREMENT BY 1;`;
}

/**
 * The changelog is clustered on `rv`, not on `change_id`: the poller reads and the pruner deletes
 * `rv` ranges, so both are one range seek that touches only committed rows, and never needs a key
 * lookup into rows an open transaction still holds locked.
 */
function createChangelog(table: TableInfo): string {
  const cl = changelogTable(table);
  return `IF OBJECT_ID(${nLiteral(displayName(cl))}, N'U') IS NULL
BEGIN
  CREATE TABLE ${qualified(cl)} (
    [change_id] BIGINT NOT NULL DEFAULT NEXT VALUE FOR ${qualified(sequenceName(table))} PRIMARY KEY NONCLUSTERED,
    [rv] ROWVERSION NOT NULL,
    [op] CHAR(1) NOT NULL CHECK ([op] IN ('I', 'U', 'D')),
    [changed_at] DATETIME2(7) NOT NULL DEFAULT SYSUTCDATETIME(),
    [origin] NVARCHAR(128) NULL,
    [before_image] NVARCHAR(MAX) NULL,
    [after_image] NVARCHAR(MAX) NULL
  );
  CREATE UNIQUE CLUSTERED INDEX [banyan_cl_rv] ON ${qualified(cl)} ([rv]);
END;`;
}

/**
 * One statement-level trigger for all three operations. `inserted` and `deleted` hold every row
 * the statement touched; joined on the primary key they give one changelog row per affected row:
 * only in inserted → I, only in deleted → D, in both → U. An UPDATE that changes a primary key
 * shows the old key only in deleted and the new key only in inserted, so it is recorded as D of the
 * old key and I of the new one, which is what a consumer keyed by the primary key needs.
 */
function createTrigger(table: TableInfo): string {
  // Keys compare byte for byte: under a case- or accent-insensitive collation `code = UPPER(code)`
  // would pair the old and new key as one row (an update), and the old key would never be deleted
  // downstream; `=` ignores trailing spaces whatever the collation, so their lengths must match too.
  const on = (left: string, right: string): string =>
    table.primaryKey.map((k) => keyEquals(table, k, left, right)).join(' AND ');
  const firstKey = ident(table.primaryKey[0]!);
  // text/ntext/image are invisible in inserted/deleted: the after image reads them from the table
  // itself (already changed when an AFTER trigger runs); the before image cannot have them.
  const afterSource = (c: Column): string => (isLegacyLob(c) ? '[b]' : '[i]');
  const baseJoin = table.columns.some(isLegacyLob) ? `\n  LEFT JOIN ${qualified(table)} AS [b] ON ${on('[b]', '[i]')}` : '';
  const before = image(table.columns.filter((c) => !isLegacyLob(c)), () => '[d]');
  const after = image(table.columns, afterSource);
  return `CREATE OR ALTER TRIGGER ${qualified(triggerName(table))} ON ${qualified(table)}
AFTER INSERT, UPDATE, DELETE
AS
BEGIN
  -- Legacy clients often check "rows affected": the changelog insert must not add a count of its own.
  SET NOCOUNT ON;
  -- A caller's SET ROWCOUNT would cut the changelog insert short, and NEXT VALUE FOR (change_id's
  -- default) refuses to run under one; the caller's setting comes back when the trigger returns.
  SET ROWCOUNT 0;
  -- The origin tag counts only inside the transaction that set it (see setOrigin).
  DECLARE @origin NVARCHAR(128) = CASE
    WHEN CAST(SESSION_CONTEXT(${nLiteral(ORIGIN_TX_KEY)}) AS BIGINT) = CURRENT_TRANSACTION_ID()
    THEN CAST(SESSION_CONTEXT(${nLiteral(ORIGIN_KEY)}) AS NVARCHAR(128))
  END;
  INSERT INTO ${qualified(changelogTable(table))} ([op], [origin], [before_image], [after_image])
  SELECT
    CASE WHEN [d].${firstKey} IS NULL THEN 'I' WHEN [i].${firstKey} IS NULL THEN 'D' ELSE 'U' END,
    @origin,
    CASE WHEN [d].${firstKey} IS NOT NULL THEN ${before} END,
    CASE WHEN [i].${firstKey} IS NOT NULL THEN ${after} END
  FROM inserted AS [i]
  FULL OUTER JOIN deleted AS [d] ON ${on('[d]', '[i]')}${baseJoin};
END;`;
}

/** `left.k = right.k`, for a text key in a binary collation and with equal byte lengths. */
function keyEquals(table: TableInfo, key: string, left: string, right: string): string {
  const [l, r] = [`${left}.${ident(key)}`, `${right}.${ident(key)}`];
  const column = table.columns.find((c) => c.name === key);
  if (column?.type.kind !== 'string') return `${l} = ${r}`;
  return `${l} COLLATE Latin1_General_100_BIN2 = ${r} COLLATE Latin1_General_100_BIN2 AND DATALENGTH(${l}) = DATALENGTH(${r})`;
}

/** A JSON object of column → text value (NULLs included) for one row of `source(column)`. */
function image(columns: Column[], source: (column: Column) => string): string {
  const members = columns.map((c) => `${textExpression(c, `${source(c)}.${ident(c.name)}`)} AS ${ident(c.name)}`);
  return `(SELECT ${members.join(', ')} FOR JSON PATH, WITHOUT_ARRAY_WRAPPER, INCLUDE_NULL_VALUES)`;
}

function assertTrackable(table: TableInfo): void {
  const where = displayName(table);
  if (table.primaryKey.length === 0) throw new Error(`table ${where} has no primary key; Banyan can only track tables with one`);
  for (const key of table.primaryKey) {
    if (!table.columns.some((c) => c.name === key)) throw new Error(`table ${where}: primary-key column "${key}" is not among its columns`);
  }
  const longest = triggerName(table).name;
  if (longest.length > MAX_IDENTIFIER) {
    throw new Error(`table ${where}: its trigger name ${quoteIdentifier(longest)} would exceed SQL Server's ${MAX_IDENTIFIER} characters`);
  }
  // FOR JSON PATH reads a dot in an alias as nesting ("a.b" → {"a":{"b":…}}), or fails on "a..b".
  const dotted = table.columns.filter((c) => c.name.includes('.'));
  if (dotted.length > 0) {
    throw new Error(
      `table ${where}: column name(s) ${dotted.map((c) => `"${c.name}"`).join(', ')} contain "."; ` +
        'FOR JSON PATH would nest them, so their changelog images would be wrong',
    );
  }
}
