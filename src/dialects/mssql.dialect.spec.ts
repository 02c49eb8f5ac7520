import knex, { type Knex } from 'knex';
import { describe, expect, it, vi } from 'vitest';
import { BadRecordError } from '../core';
import type { Column, Dialect, TableInfo } from './dialect';
import { MssqlDialect, mssqlDriver, SEEN_LIMIT } from './mssql.dialect';
import { changeBatch, parsePosition, START_RV } from './mssql/position';
import {
  PRUNE_BATCH,
  clearOriginQuery,
  columnNamesQuery,
  pruneQuery,
  readChangesQuery,
  setOriginQuery,
  snapshotPageQuery,
  snapshotSeenQuery,
  snapshotStartQuery,
  pinningTransactionQuery,
} from './mssql/queries';
import type { SqlQuery } from './mssql/sql';
import { columnFromCatalog, keyParameter, type CatalogColumn } from './mssql/types';

// Typed as the interface, as the poller and the migrations hold it.
const dialect: Dialect = new MssqlDialect();
// knex compiles SQL Server SQL without a connection: what the driver would be sent, values inlined.
const compiler = knex({ client: 'mssql' });
const inline = (q: SqlQuery): string => compiler.raw(q.sql, q.bindings).toString();
const native = (q: SqlQuery) => compiler.raw(q.sql, q.bindings).toSQL().toNative();

function catalog(typeName: string, maxLength = 0, precision = 0, scale = 0, extra: Partial<CatalogColumn> = {}): CatalogColumn {
  return { name: 'c', typeName, baseTypeName: typeName, isAssemblyType: false, maxLength, precision, scale, nullable: true, ...extra };
}

function col(name: string, typeName: string, maxLength = 0, precision = 0, scale = 0): Column {
  return columnFromCatalog({ ...catalog(typeName, maxLength, precision, scale), name, nullable: !['tenant_id', 'order_no'].includes(name) });
}

/** A representative legacy table: varied types, a composite primary key, a legacy ntext column. */
const orders: TableInfo = {
  schema: 'sales',
  name: 'orders',
  primaryKey: ['tenant_id', 'order_no'],
  columns: [
    col('tenant_id', 'int', 4, 10),
    col('order_no', 'varchar', 20),
    col('customer', 'nvarchar', 200),
    col('price', 'decimal', 9, 12, 2),
    col('amount', 'money', 8, 19, 4),
    col('active', 'bit', 1),
    col('ratio', 'float', 8, 53),
    col('placed_at', 'datetime2', 8, 27, 7),
    col('shipped_at', 'datetimeoffset', 10, 34, 3),
    col('due', 'date', 3, 10),
    col('slot', 'time', 3, 8, 0),
    col('ref', 'uniqueidentifier', 16),
    col('digest', 'varbinary', 32),
    col('legacy_at', 'datetime', 8, 23, 3),
    col('touched', 'smalldatetime', 4, 16),
    col('note', 'ntext', 16),
  ],
};

/** The text expression each column must get in the after image (values read from inserted, [i]). */
const afterExpressions: Record<string, string> = {
  tenant_id: 'CONVERT(VARCHAR(20), [i].[tenant_id])',
  order_no: '[i].[order_no]',
  customer: '[i].[customer]',
  price: 'CONVERT(VARCHAR(50), [i].[price])',
  amount: 'CONVERT(VARCHAR(50), CONVERT(DECIMAL(19,4), [i].[amount]))',
  active: "CASE [i].[active] WHEN 1 THEN 'true' WHEN 0 THEN 'false' END",
  ratio: 'CONVERT(VARCHAR(30), [i].[ratio], 3)',
  placed_at: 'CONVERT(VARCHAR(27), [i].[placed_at], 121)',
  shipped_at: "CONVERT(VARCHAR(27), CONVERT(DATETIME2(3), SWITCHOFFSET([i].[shipped_at], '+00:00')), 121)",
  due: 'CONVERT(CHAR(10), [i].[due], 23)',
  slot: 'CONVERT(VARCHAR(27), [i].[slot], 121)',
  ref: 'LOWER(CONVERT(CHAR(36), [i].[ref]))',
  digest: 'LOWER(CONVERT(VARCHAR(MAX), CONVERT(VARBINARY(MAX), [i].[digest]), 2))',
  legacy_at: 'CONVERT(VARCHAR(27), [i].[legacy_at], 121)',
  touched: 'CONVERT(VARCHAR(19), [i].[touched], 120)',
  note: 'CONVERT(NVARCHAR(MAX), [b].[note])',
};

/** The SQL without [quoted identifiers], '…' literals, -- comments and @variables: what is left must hold no names. */
function unquotedPart(sql: string): string {
  return sql
    .replace(/--.*$/gm, ' ')
    .replace(/\[(?:[^\]]|\]\])*\]/g, ' ')
    .replace(/N?'(?:[^']|'')*'/g, ' ')
    .replace(/@\w+/g, ' ');
}

describe('MssqlDialect.quoteIdentifier', () => {
  it('brackets a name and doubles a closing bracket, so a name cannot end the quoting early', () => {
    expect(dialect.quoteIdentifier('orders')).toBe('[orders]');
    expect(dialect.quoteIdentifier('a]b')).toBe('[a]]b]');
    expect(dialect.quoteIdentifier('x]; DROP TABLE t; --')).toBe('[x]]; DROP TABLE t; --]');
    expect(dialect.quoteIdentifier('[x')).toBe('[[x]');
    expect(dialect.name).toBe('mssql');
  });
});

describe('describeTable type mapping (columnFromCatalog over sys.columns/sys.types rows)', () => {
  it.each([
    ['bit', catalog('bit', 1), 'bit', { kind: 'boolean' }],
    ['tinyint', catalog('tinyint', 1, 3), 'tinyint', { kind: 'int' }],
    ['smallint', catalog('smallint', 2, 5), 'smallint', { kind: 'int' }],
    ['int', catalog('int', 4, 10), 'int', { kind: 'int' }],
    ['bigint', catalog('bigint', 8, 19), 'bigint', { kind: 'long' }],
    ['decimal', catalog('decimal', 9, 12, 2), 'decimal(12,2)', { kind: 'decimal', precision: 12, scale: 2 }],
    ['numeric', catalog('numeric', 5, 5, 0), 'numeric(5,0)', { kind: 'decimal', precision: 5, scale: 0 }],
    ['money', catalog('money', 8, 19, 4), 'money', { kind: 'decimal', precision: 19, scale: 4 }],
    ['smallmoney', catalog('smallmoney', 4, 10, 4), 'smallmoney', { kind: 'decimal', precision: 10, scale: 4 }],
    ['real', catalog('real', 4, 24), 'real', { kind: 'float' }],
    ['float', catalog('float', 8, 53), 'float', { kind: 'double' }],
    ['char', catalog('char', 10), 'char(10)', { kind: 'string', maxLength: 10 }],
    ['varchar', catalog('varchar', 50), 'varchar(50)', { kind: 'string', maxLength: 50 }],
    ['varchar(max)', catalog('varchar', -1), 'varchar(max)', { kind: 'string' }],
    ['text', catalog('text', 16), 'text', { kind: 'string' }],
    ['nchar', catalog('nchar', 20), 'nchar(10)', { kind: 'string', unicode: true, maxLength: 10 }],
    ['nvarchar', catalog('nvarchar', 100), 'nvarchar(50)', { kind: 'string', unicode: true, maxLength: 50 }],
    ['nvarchar(max)', catalog('nvarchar', -1), 'nvarchar(max)', { kind: 'string', unicode: true }],
    ['ntext', catalog('ntext', 16), 'ntext', { kind: 'string', unicode: true }],
    ['xml', catalog('xml', -1), 'xml', { kind: 'string' }],
    ['uniqueidentifier', catalog('uniqueidentifier', 16), 'uniqueidentifier', { kind: 'uuid' }],
    ['binary', catalog('binary', 16), 'binary(16)', { kind: 'bytes' }],
    ['varbinary(max)', catalog('varbinary', -1), 'varbinary(max)', { kind: 'bytes' }],
    ['image', catalog('image', 16), 'image', { kind: 'bytes' }],
    ['timestamp (rowversion)', catalog('timestamp', 8), 'timestamp', { kind: 'bytes' }],
    ['date', catalog('date', 3, 10), 'date', { kind: 'date' }],
    ['time', catalog('time', 5, 12, 3), 'time(3)', { kind: 'time', precision: 3 }],
    ['datetime', catalog('datetime', 8, 23, 3), 'datetime', { kind: 'timestamp', precision: 3 }],
    ['smalldatetime', catalog('smalldatetime', 4, 16), 'smalldatetime', { kind: 'timestamp', precision: 0 }],
    ['datetime2', catalog('datetime2', 8, 27, 7), 'datetime2(7)', { kind: 'timestamp', precision: 7 }],
    ['datetimeoffset', catalog('datetimeoffset', 10, 34, 3), 'datetimeoffset(3)', { kind: 'timestamptz', precision: 3 }],
    ['sql_variant', catalog('sql_variant', 8016), 'sql_variant', { kind: 'other', sqlType: 'sql_variant' }],
    ['a CLR type', catalog('hierarchyid', 892, 0, 0, { baseTypeName: null, isAssemblyType: true }), 'hierarchyid', { kind: 'other', sqlType: 'hierarchyid' }],
    ['an alias type, by its base', catalog('phone', 20, 0, 0, { baseTypeName: 'varchar' }), 'varchar(20)', { kind: 'string', maxLength: 20 }],
    ['sysname, as nvarchar(128)', catalog('sysname', 256, 0, 0, { baseTypeName: 'nvarchar' }), 'nvarchar(128)', { kind: 'string', unicode: true, maxLength: 128 }],
  ])('%s', (_label, row, sqlType, kind) => {
    expect(columnFromCatalog(row)).toEqual({ name: 'c', sqlType, type: kind, nullable: true });
  });
});

describe('installChangelog for a representative table', () => {
  const [registry, createTable, createTrigger, triggerFirst, moveOlder, register, watch, ...rest] = dialect.installChangelog(orders);

  it('returns the registry, the changelog table, the trigger and its order, the move of an older install, the record and the schema watch as separate statements, each trigger first in its batch', () => {
    expect(rest).toEqual([]);
    expect(registry).toContain("IF SCHEMA_ID(N'banyan') IS NULL EXEC (N'CREATE SCHEMA [banyan] AUTHORIZATION [dbo]');");
    expect(triggerFirst).toMatch(/^DECLARE @other SYSNAME/);
    expect(createTrigger!.startsWith('CREATE OR ALTER TRIGGER [sales].[banyan_cl_orders_trg] ON [sales].[orders]\nAFTER INSERT, UPDATE, DELETE\n')).toBe(true);
    expect(moveOlder).toMatch(/^IF OBJECT_ID\(N'\[sales\]\.\[banyan_cl_orders\]', N'U'\) IS NOT NULL/);
    expect(register).toMatch(/^DECLARE @obj INT = OBJECT_ID\(N'\[sales\]\.\[orders\]', N'U'\);/);
    expect(watch!.startsWith('CREATE OR ALTER TRIGGER [banyan_schema_watch] ON DATABASE\nWITH EXECUTE AS SELF\nFOR ALTER_TABLE, RENAME\n')).toBe(true);
  });

  it('puts the changelog in the banyan schema, named after the table, without a sequence: the rowversion is its clustered primary key', () => {
    expect(dialect.changelogTable(orders)).toEqual({ schema: 'banyan', name: 'sales.orders' });
    expect(createTable).toMatch(/^IF OBJECT_ID\(N'\[banyan\]\.\[sales\.orders\]', N'U'\) IS NULL\nBEGIN\n {2}CREATE TABLE \[banyan\]\.\[sales\.orders\] \(/);
    for (const column of [
      '[rv] ROWVERSION NOT NULL CONSTRAINT [pk_sales.orders] PRIMARY KEY CLUSTERED,',
      "[op] CHAR(1) NOT NULL CHECK ([op] IN ('I', 'U', 'D')),",
      '[changed_at] DATETIME2(7) NOT NULL DEFAULT SYSUTCDATETIME(),',
      '[origin] NVARCHAR(128) NULL,',
      '[before_image] NVARCHAR(MAX) NULL,',
      '[after_image] NVARCHAR(MAX) NULL',
    ]) {
      expect(createTable).toContain(`\n    ${column}\n`);
    }
    expect(dialect.installChangelog(orders).join('\n')).not.toMatch(/CREATE SEQUENCE|NEXT VALUE FOR|change_id/);
    // Ownership chaining from the trigger (the writer's rights) needs the changelog owned by the table's owner.
    expect(createTable).toContain("WHERE [o].[object_id] = OBJECT_ID(N'[sales].[orders]', N'U'));");
    expect(createTable).toContain("CONCAT(N'ALTER AUTHORIZATION ON OBJECT::', N'[banyan].[sales.orders]', N' TO ', QUOTENAME(@owner));");
    // Without the rights to give it away, install stops before trying, saying what a DBA grants.
    expect(createTable).toContain("IF HAS_PERMS_BY_NAME(N'[banyan].[sales.orders]', N'OBJECT', N'TAKE OWNERSHIP') = 0 OR HAS_PERMS_BY_NAME(@owner, N'USER', N'IMPERSONATE') = 0");
    expect(createTable).toContain('THROW 50004, @refused, 1;');
  });

  it('names changelogs so that no two tables share one and none is also a sequence: x and x_seq, dots and brackets in names', () => {
    const names = [
      { schema: 'dbo', name: 'x' },
      { schema: 'dbo', name: 'x_seq' },
      { schema: 'dbo', name: 'Order.Lines' },
      { schema: 'dbo.Order', name: 'Lines' },
      { schema: 'dbo', name: '[weird]' },
      { schema: 'dbo', name: 'weird' },
    ].map((t) => dialect.changelogTable(t));
    expect(names.map((n) => n.name)).toEqual(['dbo.x', 'dbo.x_seq', 'dbo.[Order.Lines]', '[dbo.Order].Lines', 'dbo.[[weird]]]', 'dbo.weird']);
    expect(new Set(names.map((n) => n.name)).size).toBe(names.length);
    expect(names.every((n) => n.schema === 'banyan')).toBe(true);
  });

  it('moves an older install’s changelog (beside the table, with a sequence) into the new one in rowversion order, then drops it', () => {
    expect(moveOlder).toContain("IF OBJECT_ID(N'[sales].[banyan_cl_orders]', N'U') IS NOT NULL AND COL_LENGTH(N'[sales].[banyan_cl_orders]', N'rv') IS NOT NULL AND COL_LENGTH(N'[sales].[banyan_cl_orders]', N'before_image') IS NOT NULL");
    // Row by row in rowversion order (a set-based INSERT … SELECT … ORDER BY does not order the rows' new rowversions).
    expect(moveOlder).toContain(
      '  DECLARE [older] CURSOR LOCAL FAST_FORWARD FOR\n    SELECT [op], [changed_at], [origin], [before_image], [after_image] FROM [sales].[banyan_cl_orders] ORDER BY [rv];',
    );
    expect(moveOlder).toContain(
      '    INSERT INTO [banyan].[sales.orders] ([op], [changed_at], [origin], [before_image], [after_image]) VALUES (@op, @at, @origin, @before, @after);',
    );
    expect(moveOlder).toContain('  DEALLOCATE [older];\n  DROP TABLE [sales].[banyan_cl_orders];\nEND;');
    expect(moveOlder).toContain("IF OBJECT_ID(N'[sales].[banyan_cl_orders_seq]', N'SO') IS NOT NULL DROP SEQUENCE [sales].[banyan_cl_orders_seq];");
  });

  it('is set-based: one INSERT…SELECT over inserted FULL JOIN deleted on every primary-key column', () => {
    expect(createTrigger).toContain('SET NOCOUNT ON;');
    expect(createTrigger).toContain('SET ROWCOUNT 0;');
    expect(createTrigger).not.toContain('IDENTITY');
    expect(createTrigger).toContain('INSERT INTO [banyan].[sales.orders] ([op], [origin], [origin_user], [before_image], [after_image])\n  SELECT\n');
    expect(createTrigger).toContain(
      `FROM inserted AS [i]\n  FULL OUTER JOIN deleted AS [d] ON [d].[tenant_id] = [i].[tenant_id] AND ${'[d].[order_no] COLLATE Latin1_General_100_BIN2 = [i].[order_no] COLLATE Latin1_General_100_BIN2 AND DATALENGTH([d].[order_no]) = DATALENGTH([i].[order_no])'}`,
    );
    expect(createTrigger).toContain("CASE WHEN [d].[tenant_id] IS NULL THEN 'I' WHEN [i].[tenant_id] IS NULL THEN 'D' ELSE 'U' END");
    expect(createTrigger).not.toMatch(/\b(CURSOR|WHILE|FETCH)\b/i);
    expect(createTrigger!.match(/FOR JSON PATH, WITHOUT_ARRAY_WRAPPER, INCLUDE_NULL_VALUES\)/g)).toHaveLength(2);
  });

  it('records the origin from SESSION_CONTEXT, only for the transaction that set it', () => {
    expect(createTrigger).toContain(
      "WHEN CAST(SESSION_CONTEXT(N'banyan.origin_tx') AS BIGINT) = CURRENT_TRANSACTION_ID()\n    THEN CAST(SESSION_CONTEXT(N'banyan.origin') AS NVARCHAR(128))",
    );
  });

  it('builds each column’s text form with the expression its kind needs', () => {
    const after = /CASE WHEN \[i\]\.\[tenant_id\] IS NOT NULL THEN \(SELECT (.*) FOR JSON PATH/.exec(createTrigger!)?.[1];
    expect(after).toBe(orders.columns.map((c) => `${afterExpressions[c.name]} AS [${c.name}]`).join(', '));
    const before = /CASE WHEN \[d\]\.\[tenant_id\] IS NOT NULL THEN \(SELECT (.*) FOR JSON PATH/.exec(createTrigger!)?.[1];
    const beforeColumns = orders.columns.filter((c) => c.name !== 'note');
    expect(before).toBe(beforeColumns.map((c) => `${afterExpressions[c.name]!.replaceAll('[i]', '[d]')} AS [${c.name}]`).join(', '));
  });

  it('reads ntext for the after image from the table itself (AFTER triggers cannot see it in inserted)', () => {
    expect(createTrigger).toContain(
      'LEFT JOIN [sales].[orders] AS [b] ON [b].[tenant_id] = [i].[tenant_id] AND [b].[order_no] COLLATE Latin1_General_100_BIN2 = [i].[order_no] COLLATE Latin1_General_100_BIN2 AND DATALENGTH([b].[order_no]) = DATALENGTH([i].[order_no]);',
    );
    expect(createTrigger).not.toContain('[d].[note]');
    expect(createTrigger).not.toContain('[i].[note]');
  });

  it('pairs text keys byte for byte: a key changed only in case or trailing spaces is a delete and an insert', () => {
    // Under a case-insensitive collation `code = UPPER(code)` would otherwise pair old and new as one row.
    expect(createTrigger).toContain('[d].[order_no] COLLATE Latin1_General_100_BIN2 = [i].[order_no] COLLATE Latin1_General_100_BIN2');
    // `=` ignores trailing spaces in every collation: the lengths must match too.
    expect(createTrigger).toContain('DATALENGTH([d].[order_no]) = DATALENGTH([i].[order_no])');
    // A number key compares as it is.
    expect(createTrigger).toContain('[d].[tenant_id] = [i].[tenant_id] AND');
  });

  it('makes its trigger fire first on INSERT, UPDATE and DELETE, after every install, and refuses when another trigger is set first', () => {
    for (const event of ['INSERT', 'UPDATE', 'DELETE']) {
      expect(triggerFirst).toContain(`EXEC sys.sp_settriggerorder @triggername = N'[sales].[banyan_cl_orders_trg]', @order = N'First', @stmttype = N'${event}';`);
    }
    expect(triggerFirst).toContain("WHERE [t].[parent_id] = OBJECT_ID(N'[sales].[orders]') AND [e].[is_first] = 1 AND [t].[name] <> N'banyan_cl_orders_trg';");
    expect(triggerFirst).toContain("THROW 50001, @message, 1;");
    expect(triggerFirst).toContain("CONCAT(N'table [sales].[orders]: trigger ', @other, N' is set to fire first on ', @event,");
  });

  it('joins the table itself only when it has text, ntext or image columns', () => {
    const plain: TableInfo = { name: 'p', primaryKey: ['id'], columns: [col('id', 'int', 4), col('v', 'nvarchar', 20)] };
    const [, , trigger] = dialect.installChangelog(plain);
    expect(trigger).toContain('FULL OUTER JOIN deleted AS [d] ON [d].[id] = [i].[id];\nEND;');
    expect(trigger).not.toContain('[b]');
  });

  it('quotes every identifier', () => {
    const names = ['sales', 'orders', 'banyan', 'banyan_cl_orders', 'banyan_cl_orders_trg', ...orders.columns.map((c) => c.name), 'rv', 'op', 'origin', 'changed_at', 'before_image', 'after_image'];
    for (const statement of [createTable!, createTrigger!, triggerFirst!, moveOlder!]) {
      const bare = unquotedPart(statement);
      for (const name of names) expect(bare, name).not.toMatch(new RegExp(`\\b${name}\\b`));
    }
  });

  it('keeps a hostile name inside its brackets and survives knex placeholder parsing', () => {
    const hostile: TableInfo = {
      schema: "o'd]d",
      name: 'x]; DROP TABLE t; --?',
      primaryKey: ['id?'],
      columns: [col('id?', 'int', 4, 10)],
    };
    const statements = dialect.installChangelog(hostile);
    expect(statements[1]).toContain(`IF OBJECT_ID(N'[banyan].[o''d]]d.x]]; DROP TABLE t; --\\?]', N'U')`);
    expect(dialect.changelogTable(hostile).name).toBe("o'd]d.x]; DROP TABLE t; --?");
    const trigger = compiler.raw(statements[2]!).toString();
    expect(trigger).toContain('CREATE OR ALTER TRIGGER [o\'d]]d].[banyan_cl_x]]; DROP TABLE t; --?_trg] ON [o\'d]]d].[x]]; DROP TABLE t; --?]');
    expect(trigger).toContain('[d].[id?] = [i].[id?]');
    for (const statement of statements) expect(compiler.raw(statement).toSQL().toNative().sql).not.toContain('@p0');
  });

  it('refuses tables it cannot track, naming the table', () => {
    expect(() => dialect.installChangelog({ ...orders, primaryKey: [] })).toThrow('table [sales].[orders] has no primary key');
    expect(() => dialect.installChangelog({ ...orders, columns: [...orders.columns, col('a.b', 'int', 4)] })).toThrow(/\[sales\]\.\[orders\].*"a\.b"/);
    expect(() => dialect.installChangelog({ ...orders, name: 'x'.repeat(120) })).toThrow(/exceed SQL Server's 128 characters/);
  });

  it('uninstalls the trigger, its record, then the changelog table (and an older install’s table and sequence)', () => {
    const [trigger, record, table, older, ...rest] = dialect.uninstallChangelog({ name: 'orders' });
    expect(rest).toEqual([]);
    expect(trigger).toBe('DROP TRIGGER IF EXISTS [dbo].[banyan_cl_orders_trg];');
    expect(record).toContain("DELETE FROM [banyan].[tracked] WHERE [object_id] = OBJECT_ID(N'[dbo].[orders]', N'U');");
    expect(table).toBe('DROP TABLE IF EXISTS [banyan].[dbo.orders];');
    expect(older).toContain('DROP TABLE [dbo].[banyan_cl_orders];');
    expect(older).toContain('DROP SEQUENCE [dbo].[banyan_cl_orders_seq];');
  });
});

describe('readChanges, prune and origin SQL', () => {
  it('reads one batch below MIN_ACTIVE_ROWVERSION, in rv order, as parameters', () => {
    const q = readChangesQuery(orders, '0x00000000000007D1', 5000);
    expect(q.bindings).toEqual(['0x00000000000007D1', '0x00000000000007D1', 5000, '0x00000000000007D1']);
    expect(q.sql).toContain('DECLARE @watermark BINARY(8) = MIN_ACTIVE_ROWVERSION();\n');
    expect(q.sql).toContain('END;\nSELECT TOP (?) ');
    expect(q.sql).toContain('WHERE [rv] > CONVERT(BINARY(8), ?, 1) AND [rv] < @watermark\nORDER BY [rv];');
    expect(q.sql).not.toMatch(/NOLOCK|READPAST|READUNCOMMITTED/i);
    expect(inline(q)).toContain("FROM [banyan].[sales.orders] WITH (READCOMMITTEDLOCK)\nWHERE [rv] > CONVERT(BINARY(8), '0x00000000000007D1', 1)");
    expect(inline(q)).toContain('SELECT TOP (5000) CONVERT(CHAR(18), [rv], 1) AS [rv]');
    expect(native(q).sql).toContain('TOP (@p2)');
  });

  it('stops when the database is behind the stored position (a restore): THROW 50002 before any row is read', () => {
    const q = readChangesQuery(orders, '0x00000000000007D1', 5000);
    const sql = inline(q);
    const check = sql.indexOf("IF @watermark <= CONVERT(BINARY(8), '0x00000000000007D1', 1)");
    expect(check).toBeGreaterThan(sql.indexOf('DECLARE @watermark BINARY(8) = MIN_ACTIVE_ROWVERSION();'));
    expect(check).toBeLessThan(sql.indexOf('SELECT TOP (5000)'));
    expect(sql).toContain("N') is at or below the stored position ', '0x00000000000007D1', N'; it went back (a restore or another database)');\n  THROW 50002, @behind, 1;");
  });

  it('reads changes under locking READ COMMITTED whatever the database or the pooled connection says', () => {
    const q = readChangesQuery(orders, '0x00000000000007D1', 5000);
    // The level first (a connection the snapshot left at SNAPSHOT, or READ_COMMITTED_SNAPSHOT on).
    expect(q.sql.split('\n')[0]).toBe('SET TRANSACTION ISOLATION LEVEL READ COMMITTED;');
    expect(q.sql).toContain('WITH (READCOMMITTEDLOCK)');
  });

  it('prunes in rowversion order from where the last prune ended, in batches below lock escalation, stopping at the first young row', () => {
    const q = pruneQuery(orders, '0x0000000000000100', '0x00000000000007D1', new Date('2024-01-02T03:04:05.678Z'), 10_000);
    expect(PRUNE_BATCH).toBeLessThanOrEqual(2500);
    expect(q.bindings).toEqual(['0x0000000000000100', '0x00000000000007D1', '2024-01-02T03:04:05.678Z', PRUNE_BATCH, PRUNE_BATCH]);
    expect(pruneQuery(orders, START_RV, '0x00000000000007D1', new Date(0), 100).bindings.slice(-2)).toEqual([100, 100]);
    expect(inline(q)).toBe(
      'SET TRANSACTION ISOLATION LEVEL READ COMMITTED;\n' +
        "DECLARE @from BINARY(8) = CONVERT(BINARY(8), '0x0000000000000100', 1), @upTo BINARY(8) = CONVERT(BINARY(8), '0x00000000000007D1', 1);\n" +
        "DECLARE @olderThan DATETIME2(7) = CONVERT(DATETIME2(7), '2024-01-02T03:04:05.678Z', 127);\n" +
        'DECLARE @end BINARY(8) = ISNULL((SELECT CONVERT(BINARY(8), CONVERT(BIGINT, MIN([w].[rv])) - 1)\n' +
        `  FROM (SELECT TOP (${PRUNE_BATCH}) [rv], [changed_at] FROM [banyan].[sales.orders] WHERE [rv] > @from AND [rv] <= @upTo ORDER BY [rv]) AS [w]\n` +
        '  WHERE [w].[changed_at] >= @olderThan), @upTo);\n' +
        'DECLARE @gone TABLE ([rv] BINARY(8) NOT NULL);\n' +
        'WITH [doomed] AS (\n' +
        `  SELECT TOP (${PRUNE_BATCH}) [rv] FROM [banyan].[sales.orders]\n` +
        '  WHERE [rv] > @from AND [rv] <= @end\n' +
        '  ORDER BY [rv]\n' +
        ')\n' +
        'DELETE FROM [doomed] OUTPUT [deleted].[rv] INTO @gone;\n' +
        'SELECT COUNT(*) AS [deleted], CONVERT(CHAR(18), MAX([rv]), 1) AS [last_rv] FROM @gone;',
    );
  });

  it('tags a transaction with sp_set_session_context, the origin as a parameter', () => {
    const q = setOriginQuery("it's me");
    expect(q.bindings).toEqual(["it's me"]);
    expect(q.sql).toContain("EXEC sp_set_session_context @key = N'banyan.origin', @value = ?, @read_only = 0;");
    expect(q.sql).toContain('DECLARE @tx BIGINT = CURRENT_TRANSACTION_ID();');
    expect(q.sql).toContain("EXEC sp_set_session_context @key = N'banyan.origin_tx', @value = @tx, @read_only = 0;");
    expect(inline(q)).toContain("@value = 'it''s me'");
    expect(clearOriginQuery().sql).toBe(
      "EXEC sp_set_session_context @key = N'banyan.origin', @value = NULL;\nEXEC sp_set_session_context @key = N'banyan.origin_tx', @value = NULL;",
    );
  });
});

describe('snapshot SQL', () => {
  it('reads its start (watermark - 1), the isolation state and the row estimate before it begins', () => {
    const q = snapshotStartQuery(orders);
    expect(q.bindings).toEqual(['sales', 'orders']);
    expect(q.sql).toContain('CONVERT(CHAR(18), CONVERT(BINARY(8), CONVERT(BIGINT, MIN_ACTIVE_ROWVERSION()) - 1), 1) AS [start_rv]');
    expect(q.sql).toContain('[snapshot_isolation_state]');
    expect(q.sql).toContain('[sys].[partitions]');
    expect(inline(snapshotSeenQuery(orders, '0x00000000000007D0', 10_001))).toBe(
      "SELECT TOP (10001) CONVERT(CHAR(18), [rv], 1) AS [rv] FROM [banyan].[sales.orders]\nWHERE [rv] > CONVERT(BINARY(8), '0x00000000000007D0', 1)\nORDER BY [rv];",
    );
  });

  it('finds the oldest open transaction that wrote in this database, with its session, login and start', () => {
    const q = pinningTransactionQuery();
    expect(q.sql).toContain('FROM [sys].[dm_tran_database_transactions] AS [dt]');
    expect(q.sql).toContain('[dt].[database_id] = DB_ID() AND [dt].[database_transaction_begin_time] IS NOT NULL');
    expect(q.sql).toContain('[es].[login_name] AS [login_name]');
    expect(q.sql).toContain('ORDER BY [dt].[database_transaction_begin_time];');
  });

  it('pages by primary key with the trigger’s text expressions, ordering by the columns, not the aliases', () => {
    const q = snapshotPageQuery(orders, undefined, 500);
    expect(q.bindings).toEqual([500]);
    expect(q.sql).toContain('CONVERT(VARCHAR(20), [t].[tenant_id]) AS [tenant_id]');
    expect(q.sql).toContain("CONVERT(VARCHAR(27), CONVERT(DATETIME2(3), SWITCHOFFSET([t].[shipped_at], '+00:00')), 121) AS [shipped_at]");
    expect(q.sql).toContain('CONVERT(NVARCHAR(MAX), [t].[note]) AS [note]');
    expect(q.sql).toMatch(/FROM \[sales\]\.\[orders\] AS \[t\]\nORDER BY \[t\]\.\[tenant_id\], \[t\]\.\[order_no\];$/);
  });

  it('expands a composite keyset cursor into (a > ?) OR (a = ? AND b > ?)…, behind a seekable a >= ?', () => {
    const table: TableInfo = {
      name: 'lines',
      primaryKey: ['a', 'b', 'c'],
      columns: [col('a', 'int', 4), col('b', 'varchar', 10), col('c', 'datetime2', 8, 27, 3), col('v', 'nvarchar', 20)],
    };
    const q = snapshotPageQuery(table, ['7', 'x', '2024-01-02 03:04:05.123'], 100);
    const [a, b, c] = ['CONVERT(INT, ?)', 'CONVERT(VARCHAR(10), ?)', 'CONVERT(DATETIME2(3), ?, 121)'];
    expect(q.sql).toContain(
      `WHERE [t].[a] >= ${a}\n  AND (([t].[a] > ${a})\n    OR ([t].[a] = ${a} AND [t].[b] > ${b})\n` +
        `    OR ([t].[a] = ${a} AND [t].[b] = ${b} AND [t].[c] > ${c}))\nORDER BY [t].[a], [t].[b], [t].[c];`,
    );
    expect(q.bindings).toEqual([100, '7', '7', '7', 'x', '7', 'x', '2024-01-02 03:04:05.123']);
    expect(inline(q)).toContain("FROM [dbo].[lines] AS [t]\nWHERE [t].[a] >= CONVERT(INT, '7')");
  });

  it('uses a plain a > ? for a one-column key', () => {
    const q = snapshotPageQuery({ name: 'u', primaryKey: ['id'], columns: [col('id', 'uniqueidentifier', 16)] }, ['0f8fad5b-d9cb-469f-a165-70867728950e'], 10);
    expect(q.sql).toContain('\nWHERE [t].[id] > CONVERT(UNIQUEIDENTIFIER, ?)\nORDER BY [t].[id];');
  });

  it.each([
    [col('k', 'binary', 16), 'CONVERT(BINARY(16), ?, 2)'],
    [col('k', 'date', 3), 'CONVERT(DATE, ?, 23)'],
    [col('k', 'smalldatetime', 4), 'CONVERT(SMALLDATETIME, ?, 120)'],
    [col('k', 'datetimeoffset', 10, 34, 7), "TODATETIMEOFFSET(CONVERT(DATETIME2(7), ?, 121), '+00:00')"],
    [col('k', 'decimal', 9, 12, 2), 'CONVERT(DECIMAL(12,2), ?)'],
    [col('k', 'bit', 1), 'CONVERT(BIT, ?)'],
    [col('k', 'nchar', 8), 'CONVERT(NCHAR(4), ?)'],
  ])('turns a key’s text back into %j', (column, expected) => {
    expect(keyParameter(column)).toBe(expected);
  });

  it('refuses to page by a key type it cannot parse back, from the first page on', () => {
    expect(() => keyParameter(col('k', 'sql_variant', 8016))).toThrow('primary-key column "k" has type sql_variant');
    const table: TableInfo = { name: 'v', primaryKey: ['k'], columns: [col('k', 'sql_variant', 8016)] };
    expect(() => snapshotPageQuery(table, undefined, 10)).toThrow('which a snapshot cannot page by');
  });
});

describe('positions and change rows', () => {
  const record = (rv: string, op = 'I', after: unknown = '{"id":"1","name":null}') => ({
    rv,
    op,
    changed_ms: '1704164645678',
    origin: null,
    before_image: null,
    after_image: after,
  });

  it('starts at rowversion 0 and rejects a position that is not one', () => {
    expect(parsePosition(undefined)).toEqual({ rv: START_RV });
    expect(parsePosition({ rv: '0x00000000000007d1' })).toEqual({ rv: '0x00000000000007D1' });
    expect(() => parsePosition({ rv: 17 })).toThrow(/16 hex digits/);
    expect(() => parsePosition({ rv: '0x07D1' })).toThrow(/16 hex digits/);
  });

  it('parses images and advances the position to the last row', () => {
    const batch = changeBatch(orders, [record('0x00000000000007D1'), record('0x00000000000007D2', 'D', null)], { rv: START_RV });
    expect(batch.position).toEqual({ rv: '0x00000000000007D2' });
    expect(batch.rows[0]).toEqual({
      op: 'I',
      changedAt: 1704164645678,
      origin: null,
      before: null,
      after: { id: '1', name: null },
      position: '0x00000000000007D1',
    });
    expect(changeBatch(orders, [], { rv: '0x00000000000007D2' }).position).toEqual({ rv: '0x00000000000007D2' });
  });

  it('skips, once, the changes the snapshot already held, and forgets them when passed', () => {
    const from = { rv: '0x0000000000000010', seen: ['0x0000000000000012', '0x0000000000000020'] };
    const batch = changeBatch(orders, [record('0x0000000000000011'), record('0x0000000000000012'), record('0x0000000000000013')], from);
    expect(batch.rows.map((r) => r.position)).toEqual(['0x0000000000000011', '0x0000000000000013']);
    expect(batch.position).toEqual({ rv: '0x0000000000000013', seen: ['0x0000000000000020'] });
    expect(changeBatch(orders, [record('0x0000000000000020')], parsePosition(batch.position))).toEqual({ rows: [], position: { rv: '0x0000000000000020' } });
  });

  it('names the table and position of a row it cannot read', () => {
    const bad = () => changeBatch(orders, [record('0x00000000000007D1', 'I', '{"id":1}')], { rv: START_RV });
    expect(bad).toThrow(BadRecordError);
    expect(bad).toThrow('changelog row 0x00000000000007D1 of [sales].[orders]: after_image.id is not text or null');
    expect(() => changeBatch(orders, [record('0x00000000000007D1', 'X')], { rv: START_RV })).toThrow(/op is "X"/);
  });
});

/** A knex stand-in that answers raw queries from a script and records what it was asked. */
function fakeKnex(answer: (sql: string, bindings: unknown[]) => unknown[]) {
  const calls: Array<{ on: 'db' | 'trx'; sql: string; bindings: unknown[] }> = [];
  let completed = false;
  // knex's raw is a thenable with .options() (the request timeout); so is this one.
  const raw = (on: 'db' | 'trx') => (sql: string, bindings: unknown[]) => {
    calls.push({ on, sql, bindings });
    const pending = (async () => answer(sql, bindings))();
    return Object.assign(pending, { options: () => pending });
  };
  const trx = {
    raw: vi.fn(raw('trx')),
    isCompleted: () => completed,
    rollback: vi.fn(async () => void (completed = true)),
  };
  const db = {
    raw: vi.fn(raw('db')),
    transaction: vi.fn(async () => trx),
  };
  return { db: db as unknown as Knex, trx: trx as unknown as Knex.Transaction & typeof trx, calls, transaction: db.transaction };
}

describe('MssqlDialect against a scripted connection', () => {
  const catalogRow = (name: string, type_name: string, key_ordinal: number | null, extra: Record<string, unknown> = {}) => ({
    name,
    type_name,
    base_type_name: type_name,
    is_assembly_type: false,
    max_length: 4,
    precision: 10,
    scale: 0,
    is_nullable: key_ordinal === null,
    key_ordinal,
    ...extra,
  });

  it('describes a table with its primary key in key order', async () => {
    const { db } = fakeKnex(() => [
      catalogRow('a', 'int', 2),
      catalogRow('b', 'varchar', 1, { max_length: 10, precision: 0 }),
      catalogRow('c', 'bit', null, { max_length: 1 }),
    ]);
    const info = await dialect.describeTable(db, { name: 't' });
    expect(info.schema).toBe('dbo');
    expect(info.primaryKey).toEqual(['b', 'a']);
    expect(info.columns.map((c) => [c.name, c.sqlType, c.nullable])).toEqual([
      ['a', 'int', false],
      ['b', 'varchar(10)', false],
      ['c', 'bit', true],
    ]);
  });

  it('names a missing table, and one without a primary key', async () => {
    await expect(dialect.describeTable(fakeKnex(() => []).db, { schema: 'app', name: 'gone' })).rejects.toThrow(
      'SQL Server table app.gone does not exist',
    );
    await expect(dialect.describeTable(fakeKnex(() => [catalogRow('a', 'int', null)]).db, { name: 'heap' })).rejects.toThrow(
      'SQL Server table heap has no primary key',
    );
  });

  it('shows a table name holding brackets and quotes as written, not doubled', async () => {
    await expect(dialect.describeTable(fakeKnex(() => []).db, { schema: 'dbo', name: "order]lines';DROP TABLE x;--" })).rejects.toThrow(
      "SQL Server table dbo.order]lines';DROP TABLE x;-- does not exist",
    );
  });

  it('reads the column names by OBJECT_ID, the name bound', async () => {
    const q = columnNamesQuery({ name: "we]ird" });
    expect(q.sql).toBe("SELECT [c].[name] AS [name] FROM [sys].[columns] AS [c] WHERE [c].[object_id] = OBJECT_ID(?, N'U') ORDER BY [c].[column_id];");
    expect(q.bindings).toEqual(['[dbo].[we]]ird]']);
    const { db } = fakeKnex(() => [{ name: 'a' }, { name: 'b' }]);
    expect(await dialect.columnNames(db, orders)).toEqual(['a', 'b']);
  });

  it('names the columns a before image cannot hold: text, ntext and image', () => {
    expect(dialect.columnsNeverInBeforeImage(orders)).toEqual(['note']);
  });

  // changelogState (the catalog query and what is read from it): mssql/health.spec.ts.

  it('reads changes with one query and returns the position after them', async () => {
    const { db, calls } = fakeKnex(() => [{ rv: '0x00000000000007D1', op: 'U', changed_ms: '5', origin: 'banyan', before_image: '{}', after_image: '{}' }]);
    const batch = await dialect.readChanges(db, orders, undefined, 5000, 0);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.bindings).toEqual([START_RV, START_RV, 5000, START_RV]);
    expect(batch).toEqual({
      rows: [{ op: 'U', changedAt: 5, origin: 'banyan', before: {}, after: {}, position: '0x00000000000007D1' }],
      position: { rv: '0x00000000000007D1' },
    });
  });

  it('turns the database being behind the position into an error that is never retried and says what to do', async () => {
    const { db } = fakeKnex(() => {
      throw Object.assign(new Error("the database's rowversion (MIN_ACTIVE_ROWVERSION() 0x0000000000000100) is at or below the stored position 0x00000000000007D1"), { number: 50002 });
    });
    const error = await dialect.readChanges(db, orders, { rv: '0x00000000000007D1' }, 10, 0).catch((e: unknown) => e);
    expect(error).toMatchObject({ retriable: false, code: 'DATABASE_WENT_BACK', context: { table: '[sales].[orders]', position: '0x00000000000007D1' } });
    expect((error as Error).message).toContain('changelog of [sales].[orders]: the database');
    expect((error as Error).message).toContain('give the source a new name');
    // Any other error passes as it came.
    const other = fakeKnex(() => {
      throw Object.assign(new Error('deadlock'), { number: 1205 });
    });
    await expect(dialect.readChanges(other.db, orders, undefined, 10, 0)).rejects.toMatchObject({ number: 1205 });
  });

  it('returns the number of pruned rows', async () => {
    const { db } = fakeKnex(() => [{ deleted: 42, last_rv: '0x0000000000000042' }]);
    await expect(new MssqlDialect().pruneChangelog(db, orders, { rv: '0x00000000000007D1' }, new Date(0), 1000)).resolves.toBe(42);
  });

  it('prunes a large backlog in statements of PRUNE_BATCH rows, each from where the one before ended, and the next prune goes on from there', async () => {
    const ends = ['0x0000000000001000', '0x0000000000002000', '0x0000000000002100'];
    const counts = [PRUNE_BATCH, PRUNE_BATCH, 7];
    const { db, calls } = fakeKnex(() => [{ deleted: counts.shift() ?? 0, last_rv: ends.shift() ?? null }]);
    const fresh = new MssqlDialect();
    await expect(fresh.pruneChangelog(db, orders, { rv: '0x00000000000FFFFF' }, new Date(0), 10_000)).resolves.toBe(2 * PRUNE_BATCH + 7);
    expect(calls.map((c) => c.bindings[0])).toEqual([START_RV, '0x0000000000001000', '0x0000000000002000']);
    expect(calls.map((c) => c.bindings.at(-1))).toEqual([PRUNE_BATCH, PRUNE_BATCH, PRUNE_BATCH]);
    // Nothing more to delete now; the next prune starts after the last row deleted, not at the start.
    await expect(fresh.pruneChangelog(db, orders, { rv: '0x00000000000FFFFF' }, new Date(0), 10_000)).resolves.toBe(0);
    expect(calls[3]!.bindings[0]).toBe('0x0000000000002100');
    // The limit is kept: the last statement asks only for what is left of it.
    const capped = fakeKnex((_sql, bindings) => [{ deleted: bindings.at(-1), last_rv: '0x0000000000003000' }]);
    await expect(new MssqlDialect().pruneChangelog(capped.db, orders, { rv: '0x00000000000FFFFF' }, new Date(0), PRUNE_BATCH + 5)).resolves.toBe(PRUNE_BATCH + 5);
    expect(capped.calls.map((c) => c.bindings.at(-1))).toEqual([PRUNE_BATCH, 5]);
  });

  it('opens a SNAPSHOT transaction when the database allows it, and lists what it already holds', async () => {
    const pages = [[{ tenant_id: '1', order_no: 'A' }], []];
    const { db, trx, calls, transaction } = fakeKnex((sql) => {
      if (sql.includes('[start_rv]')) return [{ start_rv: '0x000000000000000F', snapshot_isolation_state: 1, estimated_rows: '12' }];
      if (sql.startsWith('SELECT TOP (?) CONVERT(CHAR(18), [rv], 1)')) return [{ rv: '0x0000000000000011' }];
      return pages.shift()!;
    });
    const snapshot = await dialect.openSnapshot(db, orders, 0);
    expect(transaction).toHaveBeenCalledWith({ isolationLevel: 'snapshot' });
    expect(snapshot.position).toEqual({ rv: '0x000000000000000F', seen: ['0x0000000000000011'] });
    expect(snapshot.estimatedRows).toBe(12);
    expect(calls.map((c) => c.on)).toEqual(['db', 'trx']);
    expect(await snapshot.nextPage(1)).toEqual([{ tenant_id: '1', order_no: 'A' }]);
    expect(await snapshot.nextPage(1)).toEqual([]);
    expect(calls[3]!.bindings).toEqual([1, '1', '1', '1', 'A']);
    await snapshot.close();
    expect(trx.rollback).toHaveBeenCalledOnce();
  });

  it('bounds the list of changes the snapshot holds: past SEEN_LIMIT it keeps the first ones, counts the rest as possible duplicates and names the pinning transaction', async () => {
    const rvs = Array.from({ length: SEEN_LIMIT + 1 }, (_, i) => ({ rv: `0x${(0x10 + i).toString(16).toUpperCase().padStart(16, '0')}` }));
    const { db, calls } = fakeKnex((sql) => {
      if (sql.includes('[start_rv]')) return [{ start_rv: '0x000000000000000F', snapshot_isolation_state: 1, estimated_rows: '12' }];
      if (sql.startsWith('SELECT TOP (?) CONVERT(CHAR(18), [rv], 1)')) return rvs;
      if (sql.startsWith('SELECT COUNT_BIG(*)')) return [{ n: '250000' }];
      if (sql.includes('[dm_tran_database_transactions]')) return [{ session_id: 53, login_name: 'CORP\\app', host_name: 'web-1', program_name: 'Legacy ERP', begin_time: '2026-12-05T09:00:00.123' }];
      return [];
    });
    const snapshot = await dialect.openSnapshot(db, orders, 0);
    expect((snapshot.position.seen as string[]).length).toBe(SEEN_LIMIT);
    expect(JSON.stringify(snapshot.position).length).toBeLessThan(300_000);
    expect(calls.find((c) => c.sql.startsWith('SELECT COUNT_BIG(*)'))!.bindings).toEqual([rvs[SEEN_LIMIT - 1]!.rv]);
    expect(snapshot.handover).toEqual({
      duplicatesPossible: 250_000,
      pinningTransaction: { session: 53, login: 'CORP\\app', host: 'web-1', program: 'Legacy ERP', since: '2026-12-05T09:00:00.123Z' },
    });
    // Without the permission to read the DMVs, the handover says so.
    const denied = fakeKnex((sql) => {
      if (sql.includes('[start_rv]')) return [{ start_rv: '0x000000000000000F', snapshot_isolation_state: 1, estimated_rows: '12' }];
      if (sql.startsWith('SELECT TOP (?) CONVERT(CHAR(18), [rv], 1)')) return rvs;
      if (sql.startsWith('SELECT COUNT_BIG(*)')) return [{ n: 3 }];
      throw new Error('The user does not have permission to perform this action.');
    });
    expect((await dialect.openSnapshot(denied.db, orders, 0)).handover?.pinningTransaction).toMatch(/^unknown: The user does not have permission.*VIEW SERVER STATE/);
    // Below the limit, no handover note.
    const few = fakeKnex((sql) => (sql.includes('[start_rv]') ? [{ start_rv: '0x000000000000000F', snapshot_isolation_state: 1, estimated_rows: '1' }] : rvs.slice(0, 3)));
    expect((await dialect.openSnapshot(few.db, orders, 0)).handover).toBeUndefined();
  });

  it('bounds migrate: each statement in an inner batch after SET LOCK_TIMEOUT (knex’s sp_executesql would undo a SET of its own), the migrate request timeout, error 1222 known as a lock wait', () => {
    const guard = new MssqlDialect({ lockMs: 2500, requestMs: 1, readMs: 1, snapshotPageMs: 1, pruneMs: 1, migrateMs: 90_000 }).migrationGuard(2500);
    expect([guard.before, guard.after]).toEqual([[], []]);
    const [, , trigger] = new MssqlDialect().installChangelog(orders);
    const wrapped = guard.wrap!(trigger!);
    expect(wrapped.startsWith("SET LOCK_TIMEOUT 2500;\nEXEC sys.sp_executesql N'CREATE OR ALTER TRIGGER [sales].[banyan_cl_orders_trg]")).toBe(true);
    // The statement inside the literal, its quotes doubled, still first in its own (inner) batch.
    expect(wrapped).toContain("THEN ''I'' WHEN");
    expect(wrapped.endsWith("END;';")).toBe(true);
    expect(guard.options).toEqual({ requestTimeout: 90_000 });
    expect(guard.isLockTimeout(Object.assign(new Error('Lock request time out period exceeded.'), { number: 1222 }))).toBe(true);
    expect(guard.isLockTimeout(Object.assign(new Error('deadlock'), { number: 1205 }))).toBe(false);
  });

  it('gives each kind of statement its own request timeout, and the connection the default', async () => {
    const timeouts = { lockMs: 1, requestMs: 11, readMs: 22, snapshotPageMs: 33, pruneMs: 44, migrateMs: 55 };
    const timed: Dialect = new MssqlDialect(timeouts);
    const seen: unknown[] = [];
    const raw = vi.fn((sql: string) => {
      const answer = sql.includes('[start_rv]') ? [{ start_rv: '0x000000000000000F', snapshot_isolation_state: 0, estimated_rows: '1' }] : [];
      const pending = Promise.resolve(answer);
      return Object.assign(pending, { options: (o: { requestTimeout: number }) => (seen.push([sql.split('\n')[1] ?? sql, o.requestTimeout]), pending) });
    });
    const trx = { raw, isCompleted: () => false, rollback: vi.fn(async () => undefined) };
    const db = { raw, transaction: vi.fn(async () => trx) } as unknown as Knex;
    await timed.readChanges(db, orders, undefined, 10, 0);
    await timed.pruneChangelog(db, orders, { rv: '0x0000000000000001' }, new Date(0), 10);
    const snapshot = await timed.openSnapshot(db, orders, 0);
    await snapshot.nextPage(10);
    expect(seen.map((s) => (s as [string, number])[1])).toEqual([22, 44, 33]);
    expect(mssqlDriver.connectionOptions({ dialect: 'mssql', host: 'h', database: 'd', user: 'u', ssl: false, timeouts })).toMatchObject({ requestTimeout: 11 });
  });

  it('falls back to READ COMMITTED pages without a seen list when SNAPSHOT isolation is off', async () => {
    const { db, calls, transaction } = fakeKnex(() => [{ start_rv: '0x000000000000000F', snapshot_isolation_state: 0, estimated_rows: null }]);
    const snapshot = await dialect.openSnapshot(db, orders, 0);
    expect(transaction).toHaveBeenCalledWith({ isolationLevel: 'read committed' });
    expect(snapshot.position).toEqual({ rv: '0x000000000000000F' });
    expect(snapshot.estimatedRows).toBe(0);
    expect(calls).toHaveLength(1);
  });

  it('refuses an origin the changelog column cannot hold', async () => {
    const { trx } = fakeKnex(() => []);
    await expect(dialect.setOrigin(trx, 'x'.repeat(129))).rejects.toThrow('origin must be 1 to 128 characters');
    await dialect.setOrigin(trx, 'banyan');
    expect(trx.raw).toHaveBeenCalledWith(setOriginQuery('banyan').sql, ['banyan']);
  });
});
