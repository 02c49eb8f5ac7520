import type { Column, TableInfo, TableRef } from '../dialect';
import { BANYAN_SCHEMA, registerStatement, registryStatement, unregisterStatement, watchTriggerStatement, type TrackedColumn } from './drift';
import { DEFAULT_SCHEMA, displayName, ident, nLiteral, qualified, quoteIdentifier } from './sql';
import { isLegacyLob, textExpression } from './types';

/** SQL Server's limit on identifier length. */
const MAX_IDENTIFIER = 128;

/** The session-context keys the exporter sets and the trigger reads (see setOrigin). */
export const ORIGIN_KEY = 'banyan.origin';
export const ORIGIN_TX_KEY = 'banyan.origin_tx';

/**
 * The changelog of `[s].[t]` is `[banyan].[s.t]`, in Banyan's own schema, where nothing of the
 * legacy application lives: an object of Banyan's can never take a name the application uses, nor
 * one of Banyan's own (tracking `x` and `x_seq` once made `banyan_cl_x_seq` both a sequence and a
 * table). A part that holds a dot or begins with `[` is written in brackets (`dbo.[Order.Lines]`),
 * so two tables never share a changelog name. The trigger must live in its table's schema.
 */
export function changelogTable(table: TableRef): TableRef {
  const part = (p: string): string => (p.includes('.') || p.startsWith('[') ? quoteIdentifier(p) : p);
  return { schema: BANYAN_SCHEMA, name: `${part(table.schema ?? DEFAULT_SCHEMA)}.${part(table.name)}` };
}

export function triggerName(table: TableRef): TableRef {
  return { schema: table.schema ?? DEFAULT_SCHEMA, name: `banyan_cl_${table.name}_trg` };
}

/** Where a Banyan before the `banyan` schema kept the changelog, and the sequence its change_id came from. */
function olderLayout(table: TableRef): { changelog: TableRef; sequence: TableRef } {
  const schema = table.schema ?? DEFAULT_SCHEMA;
  return { changelog: { schema, name: `banyan_cl_${table.name}` }, sequence: { schema, name: `banyan_cl_${table.name}_seq` } };
}

/**
 * Statements run one by one, in one transaction per table (CREATE TRIGGER must be alone in its
 * batch, and knex sends one batch per call): Banyan's schema with its registry and drift log, the
 * changelog table if it is missing, the trigger for exactly `table.columns` (replaced in place, so
 * a reinstall after ALTER TABLE picks up new columns) set to fire first, an older install's
 * changelog moved in, the trigger recorded for the schema watch, and the schema watch itself.
 */
export function installStatements(table: TableInfo): string[] {
  assertTrackable(table);
  const trigger = triggerParts(table);
  return [
    registryStatement(),
    createChangelog(table),
    trigger.statement,
    triggerFirst(table),
    moveOlderLayout(table),
    registerStatement(table, displayName(triggerName(table)), trigger.template, trigger.columns),
    watchTriggerStatement(),
  ];
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
  const older = olderLayout(table);
  return [
    `DROP TRIGGER IF EXISTS ${qualified(triggerName(table))};`,
    unregisterStatement(table),
    `DROP TABLE IF EXISTS ${qualified(changelogTable(table))};`,
    `IF OBJECT_ID(${nLiteral(displayName(older.changelog))}, N'U') IS NOT NULL AND COL_LENGTH(${nLiteral(displayName(older.changelog))}, N'before_image') IS NOT NULL
  DROP TABLE ${qualified(older.changelog)};
IF OBJECT_ID(${nLiteral(displayName(older.sequence))}, N'SO') IS NOT NULL DROP SEQUENCE ${qualified(older.sequence)};`,
  ];
}

/**
 * The changelog is clustered on `rv`, its primary key: the poller reads and the pruner deletes `rv`
 * ranges, so both are one range seek that touches only committed rows. A rowversion is unique in
 * the database, so no other key is needed (an older Banyan's `change_id` from a sequence is gone:
 * one index less to write per change and to lock per pruned row, and no sequence to name).
 */
function createChangelog(table: TableInfo): string {
  const cl = changelogTable(table);
  return `IF OBJECT_ID(${nLiteral(displayName(cl))}, N'U') IS NULL
BEGIN
  CREATE TABLE ${qualified(cl)} (
    [rv] ROWVERSION NOT NULL CONSTRAINT ${ident(`pk_${cl.name}`.slice(0, MAX_IDENTIFIER))} PRIMARY KEY CLUSTERED,
    [op] CHAR(1) NOT NULL CHECK ([op] IN ('I', 'U', 'D')),
    [changed_at] DATETIME2(7) NOT NULL DEFAULT SYSUTCDATETIME(),
    [origin] NVARCHAR(128) NULL,
    [origin_user] NVARCHAR(128) NULL,
    [before_image] NVARCHAR(MAX) NULL,
    [after_image] NVARCHAR(MAX) NULL
  );
END;
-- The trigger runs with the legacy writer's rights and reaches the changelog by ownership chaining,
-- which needs both owned by one principal: the changelog belongs to whoever owns the table.
DECLARE @owner SYSNAME = (SELECT USER_NAME(COALESCE([o].[principal_id], [s].[principal_id]))
  FROM [sys].[objects] AS [o] JOIN [sys].[schemas] AS [s] ON [s].[schema_id] = [o].[schema_id]
  WHERE [o].[object_id] = OBJECT_ID(${nLiteral(displayName(table))}, N'U'));
DECLARE @current SYSNAME = (SELECT USER_NAME(COALESCE([o].[principal_id], [s].[principal_id]))
  FROM [sys].[objects] AS [o] JOIN [sys].[schemas] AS [s] ON [s].[schema_id] = [o].[schema_id]
  WHERE [o].[object_id] = OBJECT_ID(${nLiteral(displayName(cl))}, N'U'));
IF @owner IS NOT NULL AND @owner <> @current
BEGIN
  -- ALTER AUTHORIZATION needs TAKE OWNERSHIP on the changelog and IMPERSONATE on the new owner.
  IF HAS_PERMS_BY_NAME(${nLiteral(displayName(cl))}, N'OBJECT', N'TAKE OWNERSHIP') = 0 OR HAS_PERMS_BY_NAME(@owner, N'USER', N'IMPERSONATE') = 0
  BEGIN
    DECLARE @refused NVARCHAR(2048) = CONCAT(N'table ', ${nLiteral(displayName(table))}, N' belongs to ', QUOTENAME(@owner), N', not to the owner of schema [banyan]: its changelog must belong to ', QUOTENAME(@owner), N' too, for the trigger to reach it by ownership chaining, and this login may not give it away. A DBA grants: GRANT TAKE OWNERSHIP ON SCHEMA::[banyan] TO ', QUOTENAME(USER_NAME()), N'; GRANT IMPERSONATE ON USER::', QUOTENAME(@owner), N' TO ', QUOTENAME(USER_NAME()), N'; then banyan migrate again (docs/dialect-mssql.md, Permissions)');
    THROW 50004, @refused, 1;
  END;
  DECLARE @authorize NVARCHAR(MAX) = CONCAT(N'ALTER AUTHORIZATION ON OBJECT::', ${nLiteral(displayName(cl))}, N' TO ', QUOTENAME(@owner));
  EXEC sys.sp_executesql @authorize;
END;`;
}

/**
 * An install by a Banyan before the `banyan` schema kept the changelog beside the table (with a
 * change_id sequence). By the time this runs the trigger writes to the new changelog, and the
 * table's schema lock (held by the trigger's ALTER until the install commits) keeps writers out, so
 * the old rows are copied over in rowversion order and the old table and sequence dropped. Row by
 * row through a cursor: INSERT … SELECT … ORDER BY orders identity values, not the order rows are
 * written in, and a copy's new rowversion must follow its row's order ("Ordering guarantees in SQL
 * Server"). The copies get new rowversions, above every stored position: the rows not pruned yet
 * are delivered again, in their order (at least once; docs/dialect-mssql.md, "Upgrading an older
 * install").
 */
function moveOlderLayout(table: TableInfo): string {
  const older = olderLayout(table);
  const old = nLiteral(displayName(older.changelog));
  return `IF OBJECT_ID(${old}, N'U') IS NOT NULL AND COL_LENGTH(${old}, N'rv') IS NOT NULL AND COL_LENGTH(${old}, N'before_image') IS NOT NULL
BEGIN
  DECLARE @op CHAR(1), @at DATETIME2(7), @origin NVARCHAR(128), @before NVARCHAR(MAX), @after NVARCHAR(MAX);
  DECLARE [older] CURSOR LOCAL FAST_FORWARD FOR
    SELECT [op], [changed_at], [origin], [before_image], [after_image] FROM ${qualified(older.changelog)} ORDER BY [rv];
  OPEN [older];
  FETCH NEXT FROM [older] INTO @op, @at, @origin, @before, @after;
  WHILE @@FETCH_STATUS = 0
  BEGIN
    INSERT INTO ${qualified(changelogTable(table))} ([op], [changed_at], [origin], [before_image], [after_image]) VALUES (@op, @at, @origin, @before, @after);
    FETCH NEXT FROM [older] INTO @op, @at, @origin, @before, @after;
  END;
  CLOSE [older];
  DEALLOCATE [older];
  DROP TABLE ${qualified(older.changelog)};
END;
IF OBJECT_ID(${nLiteral(displayName(older.sequence))}, N'SO') IS NOT NULL DROP SEQUENCE ${qualified(older.sequence)};`;
}

/**
 * One statement-level trigger for all three operations. `inserted` and `deleted` hold every row
 * the statement touched; joined on the primary key they give one changelog row per affected row:
 * only in inserted → I, only in deleted → D, in both → U. An UPDATE that changes a primary key
 * shows the old key only in deleted and the new key only in inserted, so it is recorded as D of the
 * old key and I of the new one, which is what a consumer keyed by the primary key needs.
 */
/** The trigger's statement, and the same as a template with its columns, for the schema watch (./drift.ts). */
export function triggerParts(table: TableInfo): { statement: string; template: string; columns: TrackedColumn[] } {
  // The statement goes through knex (identifiers with `?` escaped); the template is stored as a
  // literal and run by the schema watch through sp_executesql, so its identifiers are plain.
  const statement = createTrigger(table, {
    quote: ident,
    column: (c) => ident(c.name),
    before: (members) => members.join(', '),
    after: (members) => members.join(', '),
    table: qualified(table),
  });
  const keyIndex = (c: Column): number => table.primaryKey.indexOf(c.name);
  const template = createTrigger(table, {
    quote: quoteIdentifier,
    column: (c) => `{{k${keyIndex(c)}}}`,
    before: () => '{{before}}',
    after: () => '{{after}}',
    table: '{{table}}',
  });
  const columns = table.columns.map(
    (c, i): TrackedColumn => ({
      i,
      name: c.name,
      before: isLegacyLob(c) ? null : member(c, '[d]', '{{name}}'),
      after: member(c, isLegacyLob(c) ? '[b]' : '[i]', '{{name}}'),
      k: keyIndex(c) < 0 ? null : keyIndex(c),
    }),
  );
  return { statement, template, columns };
}

interface TriggerNaming {
  /** Quotes an identifier that is not a tracked table's column. */
  quote(name: string): string;
  /** A key column, as the ON clauses name it. */
  column(c: Column): string;
  /** The members of the before and after images, joined. */
  before(members: string[]): string;
  after(members: string[]): string;
  /** The tracked table, qualified. */
  table: string;
}

function createTrigger(table: TableInfo, naming: TriggerNaming): string {
  const q = (t: TableRef): string => `${naming.quote(t.schema ?? DEFAULT_SCHEMA)}.${naming.quote(t.name)}`;
  const key = (name: string): Column => table.columns.find((c) => c.name === name)!;
  // Keys compare byte for byte: under a case- or accent-insensitive collation `code = UPPER(code)`
  // would pair the old and new key as one row (an update), and the old key would never be deleted
  // downstream; `=` ignores trailing spaces whatever the collation, so their lengths must match too.
  const on = (left: string, right: string): string =>
    table.primaryKey.map((k) => keyEquals(key(k), naming.column(key(k)), left, right)).join(' AND ');
  const firstKey = naming.column(key(table.primaryKey[0]!));
  // text/ntext/image are invisible in inserted/deleted: the after image reads them from the table
  // itself (already changed when an AFTER trigger runs); the before image cannot have them.
  const afterSource = (c: Column): string => (isLegacyLob(c) ? '[b]' : '[i]');
  const baseJoin = table.columns.some(isLegacyLob) ? `\n  LEFT JOIN ${naming.table} AS [b] ON ${on('[b]', '[i]')}` : '';
  const before = image(naming.before(table.columns.filter((c) => !isLegacyLob(c)).map((c) => member(c, '[d]', naming.quote(c.name)))));
  const after = image(naming.after(table.columns.map((c) => member(c, afterSource(c), naming.quote(c.name)))));
  return `CREATE OR ALTER TRIGGER ${q(triggerName(table))} ON ${naming.table}
AFTER INSERT, UPDATE, DELETE
AS
BEGIN
  -- Legacy clients often check "rows affected": the changelog insert must not add a count of its own.
  SET NOCOUNT ON;
  -- A caller's SET ROWCOUNT would cut the changelog insert short; the caller's setting comes back
  -- when the trigger returns.
  SET ROWCOUNT 0;
  -- The origin tag counts only inside the transaction that set it (see setOrigin).
  DECLARE @origin NVARCHAR(128) = CASE
    WHEN CAST(SESSION_CONTEXT(${nLiteral(ORIGIN_TX_KEY)}) AS BIGINT) = CURRENT_TRANSACTION_ID()
    THEN CAST(SESSION_CONTEXT(${nLiteral(ORIGIN_KEY)}) AS NVARCHAR(128))
  END;
  -- Any session can set the tag, so the login that wrote goes with it; ORIGINAL_LOGIN() is the one
  -- that connected, which EXECUTE AS does not change.
  DECLARE @origin_user NVARCHAR(128) = CASE WHEN @origin IS NOT NULL THEN ORIGINAL_LOGIN() END;
  INSERT INTO ${q(changelogTable(table))} ([op], [origin], [origin_user], [before_image], [after_image])
  SELECT
    CASE WHEN [d].${firstKey} IS NULL THEN 'I' WHEN [i].${firstKey} IS NULL THEN 'D' ELSE 'U' END,
    @origin,
    @origin_user,
    CASE WHEN [d].${firstKey} IS NOT NULL THEN ${before} END,
    CASE WHEN [i].${firstKey} IS NOT NULL THEN ${after} END
  FROM inserted AS [i]
  FULL OUTER JOIN deleted AS [d] ON ${on('[d]', '[i]')}${baseJoin};
END;`;
}

/** `left.k = right.k`, for a text key in a binary collation and with equal byte lengths. */
function keyEquals(column: Column, name: string, left: string, right: string): string {
  const [l, r] = [`${left}.${name}`, `${right}.${name}`];
  if (column.type.kind !== 'string') return `${l} = ${r}`;
  return `${l} COLLATE Latin1_General_100_BIN2 = ${r} COLLATE Latin1_General_100_BIN2 AND DATALENGTH(${l}) = DATALENGTH(${r})`;
}

/** One member of an image: the column's text form from `source`, named as the column. */
function member(column: Column, source: string, name: string): string {
  return `${textExpression(column, `${source}.${name}`)} AS ${name}`;
}

/** A JSON object of column → text value (NULLs included) for one row. */
function image(members: string): string {
  return `(SELECT ${members} FOR JSON PATH, WITHOUT_ARRAY_WRAPPER, INCLUDE_NULL_VALUES)`;
}

function assertTrackable(table: TableInfo): void {
  const where = displayName(table);
  if (table.primaryKey.length === 0) throw new Error(`table ${where} has no primary key; Banyan can only track tables with one`);
  for (const key of table.primaryKey) {
    if (!table.columns.some((c) => c.name === key)) throw new Error(`table ${where}: primary-key column "${key}" is not among its columns`);
  }
  for (const name of [triggerName(table).name, changelogTable(table).name]) {
    if (name.length > MAX_IDENTIFIER) {
      throw new Error(`table ${where}: Banyan's object name ${quoteIdentifier(name)} would exceed SQL Server's ${MAX_IDENTIFIER} characters`);
    }
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
