import type { ChangelogState, TableInfo, TableRef } from '../dialect';
import { displayName, nLiteral, type SqlQuery } from './sql';

/**
 * The legacy application's own schema changes must never break its writes. Banyan's trigger names
 * every column it records, so a `DROP COLUMN` or a column renamed with sp_rename would make every
 * later write to the table fail (error 207 when the trigger recompiles) until `banyan migrate` ran.
 * So each install records in `[banyan].[tracked]` the trigger as a template (column references as
 * placeholders) with its image members per column, and a database DDL trigger,
 * `[banyan_schema_watch]`, rebuilds the table's trigger from them after every ALTER TABLE and
 * RENAME, in the same transaction as the change: a dropped column leaves the images, a renamed one
 * is recorded under its new name, an added one is not recorded until `banyan migrate` (its text form
 * is Banyan's to choose, not the trigger's), and each rebuild is written to `[banyan].[schema_drift]`,
 * which doctor and the poller report. docs/dialect-mssql.md, "Schema changes by the application".
 */

/** The schema of Banyan's own objects in the legacy database (changelogs, registry, drift). */
export const BANYAN_SCHEMA = 'banyan';
export const WATCH_TRIGGER = 'banyan_schema_watch';

/** A column of the recorded trigger: its member templates use `{{name}}` for the column's current name. */
export interface TrackedColumn {
  /** Its index in the table's columns at install. */
  i: number;
  name: string;
  /** `<text expression> AS {{name}}` over `[d]`, or null when a before image cannot hold it. */
  before: string | null;
  /** The same over `[i]` (or the table itself, `[b]`, for text/ntext/image). */
  after: string;
  /** Its place in the primary key (the template's `{{k<n>}}`), or null. */
  k: number | null;
}

/**
 * The schema (owned by dbo, like the tables of most legacy applications: each changelog is then
 * handed to its table's owner, see createChangelog), the registry and the drift log, if missing.
 */
export function registryStatement(): string {
  return `-- OPENJSON (the registry's columns) exists only at compatibility level 130 and above.
IF (SELECT [compatibility_level] FROM [sys].[databases] WHERE [database_id] = DB_ID()) < 130
BEGIN;
  THROW 50005, N'the database''s compatibility level is below 130: Banyan''s schema watch needs OPENJSON; raise it (ALTER DATABASE CURRENT SET COMPATIBILITY_LEVEL = 140) after checking the application with it (docs/dialect-mssql.md, Schema changes by the application)', 1;
END;
IF SCHEMA_ID(N'${BANYAN_SCHEMA}') IS NULL EXEC (N'CREATE SCHEMA [${BANYAN_SCHEMA}] AUTHORIZATION [dbo]');
IF OBJECT_ID(N'[${BANYAN_SCHEMA}].[tracked]', N'U') IS NULL
  CREATE TABLE [${BANYAN_SCHEMA}].[tracked] (
    [object_id] INT NOT NULL PRIMARY KEY,
    [table_name] NVARCHAR(300) NOT NULL,
    [trigger_name] NVARCHAR(300) NOT NULL,
    [trigger_template] NVARCHAR(MAX) NOT NULL,
    [columns] NVARCHAR(MAX) NOT NULL,
    [signature] NVARCHAR(MAX) NOT NULL,
    [installed_at] DATETIME2(3) NOT NULL DEFAULT SYSUTCDATETIME(),
    [installed_by] NVARCHAR(128) NOT NULL DEFAULT ORIGINAL_LOGIN()
  );
IF OBJECT_ID(N'[${BANYAN_SCHEMA}].[schema_drift]', N'U') IS NULL
  CREATE TABLE [${BANYAN_SCHEMA}].[schema_drift] (
    [id] BIGINT IDENTITY(1, 1) NOT NULL PRIMARY KEY,
    [object_id] INT NOT NULL,
    [table_name] NVARCHAR(300) NOT NULL,
    [at] DATETIME2(3) NOT NULL DEFAULT SYSUTCDATETIME(),
    [login] NVARCHAR(128) NOT NULL DEFAULT ORIGINAL_LOGIN(),
    [event] NVARCHAR(128) NOT NULL,
    [dropped] NVARCHAR(MAX) NULL,
    [renamed] NVARCHAR(MAX) NULL,
    [retyped] NVARCHAR(MAX) NULL,
    [added] NVARCHAR(MAX) NULL,
    [error] NVARCHAR(4000) NULL
  );`;
}

/**
 * The table's columns as the drift check compares them: id, name and type, in column order. The
 * same expression is used at install and in the watch trigger, so an unchanged table compares equal.
 */
function signatureOf(objectId: string): string {
  // STRING_AGG's result is as long as its input's type allows: NVARCHAR(MAX) in, or error 9829 past 8,000 bytes.
  return `(SELECT STRING_AGG(CONVERT(NVARCHAR(MAX), CONCAT([column_id], N':', [name], N':', [user_type_id], N':', [max_length], N':', [precision], N':', [scale])), N',') WITHIN GROUP (ORDER BY [column_id]) FROM [sys].[columns] WHERE [object_id] = ${objectId})`;
}

/**
 * Records the trigger just installed: its template, its columns with their ids (read here, by
 * name), and the table's signature. Runs after the trigger, in the table's install transaction.
 */
export function registerStatement(table: TableInfo, trigger: string, template: string, columns: TrackedColumn[]): string {
  return `DECLARE @obj INT = OBJECT_ID(${nLiteral(displayName(table))}, N'U');
DECLARE @columns NVARCHAR(MAX) = (
  SELECT [j].[i], [c].[column_id] AS [id], [j].[name], [j].[before], [j].[after], [j].[k]
  FROM OPENJSON(${nLiteral(JSON.stringify(columns))}) WITH ([i] INT, [name] SYSNAME, [before] NVARCHAR(MAX), [after] NVARCHAR(MAX), [k] INT) AS [j]
  JOIN [sys].[columns] AS [c] ON [c].[object_id] = @obj AND [c].[name] = [j].[name]
  ORDER BY [j].[i]
  FOR JSON PATH, INCLUDE_NULL_VALUES);
DECLARE @signature NVARCHAR(MAX) = ${signatureOf('@obj')};
MERGE [${BANYAN_SCHEMA}].[tracked] AS [t]
USING (SELECT @obj AS [object_id]) AS [s] ON [t].[object_id] = [s].[object_id]
WHEN MATCHED THEN UPDATE SET [table_name] = ${nLiteral(displayName(table))}, [trigger_name] = ${nLiteral(trigger)},
  [trigger_template] = ${nLiteral(template)}, [columns] = @columns, [signature] = @signature,
  [installed_at] = SYSUTCDATETIME(), [installed_by] = ORIGINAL_LOGIN()
WHEN NOT MATCHED THEN INSERT ([object_id], [table_name], [trigger_name], [trigger_template], [columns], [signature])
  VALUES (@obj, ${nLiteral(displayName(table))}, ${nLiteral(trigger)}, ${nLiteral(template)}, @columns, @signature);`;
}

/** Forgets the table (uninstall). */
export function unregisterStatement(table: TableRef): string {
  return `IF OBJECT_ID(N'[${BANYAN_SCHEMA}].[tracked]', N'U') IS NOT NULL
  DELETE FROM [${BANYAN_SCHEMA}].[tracked] WHERE [object_id] = OBJECT_ID(${nLiteral(displayName(table))}, N'U');`;
}

/**
 * The database DDL trigger. It runs as its creator (WITH EXECUTE AS SELF: the install login, which
 * owns the registry and may alter the tracked tables), not as the application's login that altered
 * a table. For every tracked table whose columns (or name) changed: the trigger rebuilt from its
 * template, with the members of the columns that still exist under their current names and the
 * keys by their current names; its order set first again; the change logged; the registry brought
 * up to date. A rebuild that fails is logged with the error, never raised: the application's schema
 * change goes through (its writes then fail until `banyan migrate`, as they would have anyway).
 */
export function watchTriggerStatement(): string {
  const s = `[${BANYAN_SCHEMA}]`;
  return `CREATE OR ALTER TRIGGER [${WATCH_TRIGGER}] ON DATABASE
WITH EXECUTE AS SELF
FOR ALTER_TABLE, RENAME
AS
BEGIN
  SET NOCOUNT ON;
  -- A trigger runs with XACT_ABORT ON: any error would doom the application's transaction (its
  -- ALTER TABLE). Off, a failed rebuild is rolled back to its savepoint and logged instead.
  SET XACT_ABORT OFF;
  IF OBJECT_ID(N'${s}.[tracked]', N'U') IS NULL RETURN;
  DECLARE @event NVARCHAR(128) = EVENTDATA().value('(/EVENT_INSTANCE/EventType)[1]', 'NVARCHAR(128)');
  DECLARE @obj INT, @table NVARCHAR(300), @trigger NVARCHAR(300), @template NVARCHAR(MAX), @columns NVARCHAR(MAX), @signature NVARCHAR(MAX);
  DECLARE @now NVARCHAR(MAX), @tableNow NVARCHAR(300), @sql NVARCHAR(MAX), @before NVARCHAR(MAX), @after NVARCHAR(MAX);
  DECLARE @dropped NVARCHAR(MAX), @renamed NVARCHAR(MAX), @retyped NVARCHAR(MAX), @added NVARCHAR(MAX), @k INT, @key SYSNAME, @keys INT;
  DECLARE [tracked] CURSOR LOCAL FAST_FORWARD FOR
    SELECT [object_id], [table_name], [trigger_name], [trigger_template], [columns], [signature] FROM ${s}.[tracked];
  OPEN [tracked];
  FETCH NEXT FROM [tracked] INTO @obj, @table, @trigger, @template, @columns, @signature;
  WHILE @@FETCH_STATUS = 0
  BEGIN
    SELECT @dropped = NULL, @renamed = NULL, @retyped = NULL, @added = NULL, @now = NULL, @tableNow = NULL;
    SAVE TRANSACTION [banyan_watch];
    BEGIN TRY
      SET @now = ${signatureOf('@obj')};
      SET @tableNow = CONCAT(QUOTENAME(OBJECT_SCHEMA_NAME(@obj)), N'.', QUOTENAME(OBJECT_NAME(@obj)));
      -- Compared byte for byte: a column renamed only in case is a rename too.
      IF @now IS NOT NULL AND (@now COLLATE Latin1_General_100_BIN2 <> @signature COLLATE Latin1_General_100_BIN2 OR @tableNow COLLATE Latin1_General_100_BIN2 <> @table COLLATE Latin1_General_100_BIN2)
      BEGIN
        SELECT
          @before = STRING_AGG(REPLACE([j].[before], N'{{name}}', QUOTENAME([c].[name])), N', ') WITHIN GROUP (ORDER BY [j].[i]),
          @after = STRING_AGG(REPLACE([j].[after], N'{{name}}', QUOTENAME([c].[name])), N', ') WITHIN GROUP (ORDER BY [j].[i])
        FROM OPENJSON(@columns) WITH ([i] INT, [id] INT, [before] NVARCHAR(MAX), [after] NVARCHAR(MAX)) AS [j]
        JOIN [sys].[columns] AS [c] ON [c].[object_id] = @obj AND [c].[column_id] = [j].[id];
        SELECT @dropped = STRING_AGG(CONVERT(NVARCHAR(MAX), QUOTENAME([j].[name])), N', ')
        FROM OPENJSON(@columns) WITH ([id] INT, [name] SYSNAME) AS [j]
        WHERE NOT EXISTS (SELECT 1 FROM [sys].[columns] AS [c] WHERE [c].[object_id] = @obj AND [c].[column_id] = [j].[id]);
        SELECT @renamed = STRING_AGG(CONVERT(NVARCHAR(MAX), CONCAT(QUOTENAME([j].[name]), N' -> ', QUOTENAME([c].[name]))), N', ')
        FROM OPENJSON(@columns) WITH ([id] INT, [name] SYSNAME) AS [j]
        JOIN [sys].[columns] AS [c] ON [c].[object_id] = @obj AND [c].[column_id] = [j].[id]
        WHERE [c].[name] COLLATE Latin1_General_100_BIN2 <> [j].[name] COLLATE Latin1_General_100_BIN2;
        SELECT @added = STRING_AGG(CONVERT(NVARCHAR(MAX), QUOTENAME([c].[name])), N', ')
        FROM [sys].[columns] AS [c]
        WHERE [c].[object_id] = @obj AND [c].[column_id] NOT IN (SELECT [id] FROM OPENJSON(@columns) WITH ([id] INT));
        SELECT @retyped = STRING_AGG(CONVERT(NVARCHAR(MAX), QUOTENAME([c].[name])), N', ')
        FROM [sys].[columns] AS [c]
        WHERE [c].[object_id] = @obj AND [c].[column_id] IN (SELECT [id] FROM OPENJSON(@columns) WITH ([id] INT))
          AND CHARINDEX(CONCAT(N',', [c].[column_id], N':', [c].[name], N':', [c].[user_type_id], N':', [c].[max_length], N':', [c].[precision], N':', [c].[scale], N','), CONCAT(N',', @signature, N',')) = 0
          AND CHARINDEX(CONCAT(N',', [c].[column_id], N':'), CONCAT(N',', @signature, N',')) > 0
          AND [c].[name] COLLATE Latin1_General_100_BIN2 = (SELECT [j].[name] FROM OPENJSON(@columns) WITH ([id] INT, [name] SYSNAME) AS [j] WHERE [j].[id] = [c].[column_id]) COLLATE Latin1_General_100_BIN2;
        SET @sql = REPLACE(REPLACE(REPLACE(@template, N'{{before}}', ISNULL(@before, N'')), N'{{after}}', ISNULL(@after, N'')), N'{{table}}', @tableNow);
        SELECT @keys = COUNT(*) FROM OPENJSON(@columns) WITH ([k] INT) WHERE [k] IS NOT NULL;
        SET @k = 0;
        WHILE @k < @keys
        BEGIN
          SET @key = (SELECT [c].[name] FROM OPENJSON(@columns) WITH ([id] INT, [k] INT) AS [j]
            JOIN [sys].[columns] AS [c] ON [c].[object_id] = @obj AND [c].[column_id] = [j].[id] WHERE [j].[k] = @k);
          IF @key IS NULL
          BEGIN;
            THROW 50003, N'a primary-key column the trigger pairs rows on is gone: run banyan migrate', 1;
          END;
          SET @sql = REPLACE(@sql, CONCAT(N'{{k', @k, N'}}'), QUOTENAME(@key));
          SET @k += 1;
        END;
        EXEC sys.sp_executesql @sql;
        EXEC sys.sp_settriggerorder @triggername = @trigger, @order = N'First', @stmttype = N'INSERT';
        EXEC sys.sp_settriggerorder @triggername = @trigger, @order = N'First', @stmttype = N'UPDATE';
        EXEC sys.sp_settriggerorder @triggername = @trigger, @order = N'First', @stmttype = N'DELETE';
        INSERT INTO ${s}.[schema_drift] ([object_id], [table_name], [event], [dropped], [renamed], [retyped], [added])
        VALUES (@obj, @tableNow, @event, @dropped, @renamed, @retyped, @added);
        UPDATE ${s}.[tracked] SET [signature] = @now, [table_name] = @tableNow,
          [columns] = (SELECT [j].[i], [j].[id], [c].[name], [j].[before], [j].[after], [j].[k]
            FROM OPENJSON(@columns) WITH ([i] INT, [id] INT, [before] NVARCHAR(MAX), [after] NVARCHAR(MAX), [k] INT) AS [j]
            JOIN [sys].[columns] AS [c] ON [c].[object_id] = @obj AND [c].[column_id] = [j].[id]
            ORDER BY [j].[i] FOR JSON PATH, INCLUDE_NULL_VALUES)
        WHERE [object_id] = @obj;
      END;
    END TRY
    BEGIN CATCH
      -- The half-done rebuild undone (a trigger replaced but not set first, say), the failure logged.
      IF XACT_STATE() = 1
      BEGIN
        ROLLBACK TRANSACTION [banyan_watch];
        INSERT INTO ${s}.[schema_drift] ([object_id], [table_name], [event], [dropped], [renamed], [added], [error])
        VALUES (@obj, ISNULL(@tableNow, @table), @event, @dropped, @renamed, @added, LEFT(ERROR_MESSAGE(), 4000));
      END;
    END CATCH;
    FETCH NEXT FROM [tracked] INTO @obj, @table, @trigger, @template, @columns, @signature;
  END;
  CLOSE [tracked];
  DEALLOCATE [tracked];
END;`;
}

/** The drift logged for a table since its trigger was last installed (doctor and the poller report it). */
export function driftQuery(table: TableRef): SqlQuery {
  return {
    sql: `IF OBJECT_ID(N'[${BANYAN_SCHEMA}].[schema_drift]', N'U') IS NULL SELECT TOP (0) NULL AS [at];
ELSE SELECT CONVERT(CHAR(23), [d].[at], 126) AS [at], [d].[login], [d].[event], [d].[dropped], [d].[renamed], [d].[retyped], [d].[added], [d].[error]
FROM [${BANYAN_SCHEMA}].[schema_drift] AS [d]
JOIN [${BANYAN_SCHEMA}].[tracked] AS [t] ON [t].[object_id] = [d].[object_id] AND [d].[at] >= [t].[installed_at]
WHERE [d].[object_id] = OBJECT_ID(?, N'U')
ORDER BY [d].[id];`,
    bindings: [displayName(table)],
  };
}

/** Whether the schema watch exists and is enabled, and whether this login could see it if it did. */
export function watchStateQuery(): SqlQuery {
  return {
    sql: `SELECT (SELECT COUNT(*) FROM [sys].[triggers] WHERE [parent_class] = 0 AND [name] = N'${WATCH_TRIGGER}') AS [present],
  (SELECT COUNT(*) FROM [sys].[triggers] WHERE [parent_class] = 0 AND [name] = N'${WATCH_TRIGGER}' AND [is_disabled] = 1) AS [disabled],
  HAS_PERMS_BY_NAME(DB_NAME(), N'DATABASE', N'VIEW DEFINITION') AS [visible];`,
    bindings: [],
  };
}

/**
 * Doctor's account of the schema watch and of the drift it logged since the table's last install:
 * the watch missing or disabled is a fault (a column the application drops would break its writes
 * again); each logged change a warning (the triggers image other columns than the configuration
 * knows until `banyan migrate`); a rebuild that failed a fault with the server's error.
 */
export function withDrift(state: ChangelogState, watch: Record<string, unknown> | undefined, drift: Array<Record<string, unknown>> | string): ChangelogState {
  const faults = [...(state.faults ?? [])];
  const warnings = [...(state.warnings ?? [])];
  const notes = [...(state.notes ?? [])];
  const present = Number(watch?.present ?? 0) > 0;
  if (!present && Number(watch?.visible ?? 0) === 1) {
    faults.push(`the schema watch [${WATCH_TRIGGER}] is missing: a column the application drops or renames will make every write to the table fail until banyan migrate; run banyan migrate`);
  } else if (!present) {
    notes.push(`the schema watch [${WATCH_TRIGGER}] cannot be seen by this login (it needs VIEW DEFINITION on the database): check by hand that it exists and is enabled`);
  } else if (Number(watch?.disabled ?? 0) > 0) {
    faults.push(`the schema watch [${WATCH_TRIGGER}] is disabled: a column the application drops or renames will make every write to the table fail; ENABLE TRIGGER [${WATCH_TRIGGER}] ON DATABASE`);
  }
  if (typeof drift === 'string') notes.push(drift);
  else {
    for (const row of drift) {
      const what = [
        row.dropped ? `dropped ${String(row.dropped)}` : '',
        row.renamed ? `renamed ${String(row.renamed)}` : '',
        row.retyped ? `retyped ${String(row.retyped)} (imaged as the old type)` : '',
        row.added ? `added ${String(row.added)} (not imaged)` : '',
      ].filter(Boolean);
      const when = `${String(row.at)}Z by ${String(row.login)} (${String(row.event)})`;
      if (row.error) faults.push(`the schema watch could not rebuild the trigger after the change at ${when}: ${String(row.error)}; run banyan migrate`);
      else warnings.push(`the application changed the table at ${when}: ${what.join('; ') || 'no column Banyan images'}; the trigger was rebuilt, run banyan migrate to image the table as it is now`);
    }
  }
  return { ...state, faults, warnings, notes };
}
