import { describe, expect, it } from 'vitest';
import type { Column, TableInfo } from '../dialect';
import { triggerParts } from './changelog';
import { driftQuery, registerStatement, registryStatement, watchStateQuery, watchTriggerStatement, type TrackedColumn } from './drift';
import { quoteIdentifier } from './sql';
import { columnFromCatalog } from './types';

const col = (name: string, typeName: string, maxLength = 4): Column =>
  columnFromCatalog({ name, typeName, baseTypeName: typeName, isAssemblyType: false, maxLength, precision: 10, scale: 0, nullable: name !== 'id' });

const users: TableInfo = {
  schema: 'dbo',
  name: 'users',
  primaryKey: ['tenant', 'code'],
  columns: [col('tenant', 'int'), col('code', 'nvarchar', 40), col('email', 'nvarchar', 400), col('born', 'date', 3), col('note', 'ntext', 16), col('score', 'float', 8)],
};

/**
 * What the schema watch does in T-SQL, done here in TypeScript over the registry's record: the
 * members of the columns that still exist (by column id, under their current names), the keys by
 * their current names, the table by its current name.
 */
function rebuild(template: string, columns: TrackedColumn[], current: Map<number, string>, table: string): string {
  const existing = columns.filter((c) => current.has(c.i));
  const named = (text: string, c: TrackedColumn) => text.replaceAll('{{name}}', quoteIdentifier(current.get(c.i)!));
  let sql = template
    .replace('{{before}}', existing.filter((c) => c.before !== null).map((c) => named(c.before!, c)).join(', '))
    .replace('{{after}}', existing.map((c) => named(c.after, c)).join(', '))
    .replaceAll('{{table}}', table);
  for (const c of columns.filter((k) => k.k !== null)) sql = sql.replaceAll(`{{k${c.k}}}`, quoteIdentifier(current.get(c.i)!));
  return sql;
}

describe('the schema watch: triggers that survive the application’s own schema changes', () => {
  const { statement, template, columns } = triggerParts(users);

  it('records a template that, filled with every column, is the trigger install makes', () => {
    const all = new Map(users.columns.map((c, i) => [i, c.name]));
    expect(rebuild(template, columns, all, '[dbo].[users]')).toBe(statement);
  });

  it('after a DROP COLUMN, rebuilds the trigger as install would make it for the columns left', () => {
    const gone = ['born', 'email'];
    const left = new Map(users.columns.map((c, i) => [i, c.name] as [number, string]).filter(([, name]) => !gone.includes(name)));
    const without: TableInfo = { ...users, columns: users.columns.filter((c) => !gone.includes(c.name)) };
    expect(rebuild(template, columns, left, '[dbo].[users]')).toBe(triggerParts(without).statement);
    // The last text/ntext/image column dropped: the rebuilt trigger keeps its join of the table by key (harmless), and images lack it.
    const noLob = new Map([...left].filter(([, name]) => name !== 'note'));
    expect(rebuild(template, columns, noLob, '[dbo].[users]')).toContain('LEFT JOIN [dbo].[users] AS [b] ON');
    expect(rebuild(template, columns, noLob, '[dbo].[users]')).not.toContain('[note]');
  });

  it('after sp_rename of a column (a key among them), rebuilds it under the new names', () => {
    const renamed = new Map(users.columns.map((c, i) => [i, c.name === 'email' ? 'mail' : c.name === 'code' ? 'user_code' : c.name]));
    const after: TableInfo = {
      ...users,
      primaryKey: ['tenant', 'user_code'],
      columns: users.columns.map((c) => ({ ...c, name: renamed.get(users.columns.indexOf(c))! })),
    };
    expect(rebuild(template, columns, renamed, '[dbo].[users]')).toBe(triggerParts(after).statement);
  });

  it('records each column with its members, its key place, and no before member for ntext', () => {
    expect(columns.map((c) => [c.name, c.k])).toEqual([['tenant', 0], ['code', 1], ['email', null], ['born', null], ['note', null], ['score', null]]);
    expect(columns.find((c) => c.name === 'note')!.before).toBeNull();
    expect(columns.find((c) => c.name === 'note')!.after).toBe('CONVERT(NVARCHAR(MAX), [b].{{name}}) AS {{name}}');
    expect(columns.find((c) => c.name === 'born')!.before).toBe('CONVERT(CHAR(10), [d].{{name}}, 23) AS {{name}}');
  });

  it('registers the template, the columns with their ids read by name, and the table’s signature, by object_id', () => {
    const sql = registerStatement(users, '[dbo].[banyan_cl_users_trg]', template, columns);
    expect(sql).toContain("DECLARE @obj INT = OBJECT_ID(N'[dbo].[users]', N'U');");
    expect(sql).toContain('JOIN [sys].[columns] AS [c] ON [c].[object_id] = @obj AND [c].[name] = [j].[name]');
    expect(sql).toContain('STRING_AGG(CONVERT(NVARCHAR(MAX), CONCAT([column_id], N\':\', [name], N\':\', [user_type_id]');
    expect(sql).toContain('MERGE [banyan].[tracked] AS [t]');
    // The template is a literal: quotes doubled.
    expect(sql).toContain("WHEN [i].{{k0}} IS NULL THEN ''D''");
  });

  it('is a database DDL trigger on ALTER_TABLE and RENAME, run as its creator, that rebuilds, re-orders, logs, and never fails the application’s change', () => {
    const watch = watchTriggerStatement();
    expect(watch.startsWith('CREATE OR ALTER TRIGGER [banyan_schema_watch] ON DATABASE\nWITH EXECUTE AS SELF\nFOR ALTER_TABLE, RENAME\nAS\n')).toBe(true);
    expect(watch).toContain('IF @now IS NOT NULL AND (@now COLLATE Latin1_General_100_BIN2 <> @signature COLLATE Latin1_General_100_BIN2 OR @tableNow COLLATE Latin1_General_100_BIN2 <> @table COLLATE Latin1_General_100_BIN2)');
    expect(watch).toContain('EXEC sys.sp_executesql @sql;');
    for (const event of ['INSERT', 'UPDATE', 'DELETE']) expect(watch).toContain(`@order = N'First', @stmttype = N'${event}';`);
    expect(watch).toContain('INSERT INTO [banyan].[schema_drift] ([object_id], [table_name], [event], [dropped], [renamed], [retyped], [added])');
    expect(watch.indexOf('BEGIN TRY')).toBeLessThan(watch.indexOf('EXEC sys.sp_executesql @sql;'));
    // XACT_ABORT is ON in a trigger: off, and each table's rebuild behind a savepoint, a failure is undone and logged, not raised.
    expect(watch).toContain('SET XACT_ABORT OFF;');
    expect(watch.indexOf('SAVE TRANSACTION [banyan_watch];')).toBeLessThan(watch.indexOf('BEGIN TRY'));
    expect(watch).toMatch(/BEGIN CATCH\n[^\n]*\n\s+IF XACT_STATE\(\) = 1\n\s+BEGIN\n\s+ROLLBACK TRANSACTION \[banyan_watch\];\n\s+INSERT INTO \[banyan\]\.\[schema_drift\]/);
    // The signature is read inside the TRY, its aggregates over NVARCHAR(MAX) (no 8,000-byte limit), names compared byte for byte.
    expect(watch.indexOf('SET @now = (SELECT STRING_AGG(CONVERT(NVARCHAR(MAX), CONCAT([column_id]')).toBeGreaterThan(watch.indexOf('BEGIN TRY'));
    expect(watch).toContain('@now COLLATE Latin1_General_100_BIN2 <> @signature COLLATE Latin1_General_100_BIN2');
    expect(watch).not.toMatch(/STRING_AGG\((QUOTENAME|CONCAT)/);
    expect(watch).not.toMatch(/\bTHROW\b(?![^;]*primary-key column)/);
  });

  it('refuses to install below compatibility level 130 (OPENJSON), saying what to do', () => {
    expect(registryStatement()).toMatch(/^-- OPENJSON[^\n]*\nIF \(SELECT \[compatibility_level\] FROM \[sys\]\.\[databases\] WHERE \[database_id\] = DB_ID\(\)\) < 130\nBEGIN;\n  THROW 50005, N'the database''s compatibility level is below 130/);
  });

  it('asks whether this login may see database DDL triggers in this database, not on the server', () => {
    expect(watchStateQuery().sql).toContain("HAS_PERMS_BY_NAME(DB_NAME(), N'DATABASE', N'VIEW DEFINITION') AS [visible]");
  });

  it('reads the drift logged since the last install, the table bound', () => {
    const q = driftQuery({ schema: 'dbo', name: "o'brien" });
    expect(q.bindings).toEqual(["[dbo].[o'brien]"]);
    expect(q.sql).toContain('[d].[at] >= [t].[installed_at]');
  });
});
