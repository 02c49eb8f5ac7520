import knex, { type Knex } from 'knex';
import { describe, expect, it, vi } from 'vitest';
import { BadRecordError } from '../core';
import type { Column, Dialect, TableInfo } from './dialect';
import { MssqlDialect } from './mssql.dialect';
import { changeBatch, parsePosition, START_RV } from './mssql/position';
import {
  changelogStateQuery,
  clearOriginQuery,
  columnNamesQuery,
  pruneQuery,
  readChangesQuery,
  setOriginQuery,
  snapshotPageQuery,
  snapshotSeenQuery,
  snapshotStartQuery,
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
  const [createSequence, createTable, createTrigger, triggerFirst, ...rest] = dialect.installChangelog(orders);

  it('returns the sequence, the changelog table, the trigger and its order as separate statements, the trigger first in its batch', () => {
    expect(rest).toEqual([]);
    expect(triggerFirst).toMatch(/^DECLARE @other SYSNAME/);
    expect(createTrigger!.startsWith('CREATE OR ALTER TRIGGER [sales].[banyan_cl_orders_trg] ON [sales].[orders]\nAFTER INSERT, UPDATE, DELETE\n')).toBe(true);
  });

  it('creates the change_id sequence and the changelog table only when missing, with a unique clustered rowversion index', () => {
    expect(dialect.changelogTable(orders)).toEqual({ schema: 'sales', name: 'banyan_cl_orders' });
    expect(createSequence).toBe(
      "IF OBJECT_ID(N'[sales].[banyan_cl_orders_seq]', N'SO') IS NULL\n  CREATE SEQUENCE [sales].[banyan_cl_orders_seq] AS BIGINT START WITH 1 INCREMENT BY 1;",
    );
    expect(createTable).toMatch(/^IF OBJECT_ID\(N'\[sales\]\.\[banyan_cl_orders\]', N'U'\) IS NULL\nBEGIN\n {2}CREATE TABLE \[sales\]\.\[banyan_cl_orders\] \(/);
    for (const column of [
      '[change_id] BIGINT NOT NULL DEFAULT NEXT VALUE FOR [sales].[banyan_cl_orders_seq] PRIMARY KEY NONCLUSTERED,',
      '[rv] ROWVERSION NOT NULL,',
      "[op] CHAR(1) NOT NULL CHECK ([op] IN ('I', 'U', 'D')),",
      '[changed_at] DATETIME2(7) NOT NULL DEFAULT SYSUTCDATETIME(),',
      '[origin] NVARCHAR(128) NULL,',
      '[before_image] NVARCHAR(MAX) NULL,',
      '[after_image] NVARCHAR(MAX) NULL',
    ]) {
      expect(createTable).toContain(`\n    ${column}\n`);
    }
    expect(createTable).toContain('CREATE UNIQUE CLUSTERED INDEX [banyan_cl_rv] ON [sales].[banyan_cl_orders] ([rv]);\nEND;');
  });

  it('is set-based: one INSERT…SELECT over inserted FULL JOIN deleted on every primary-key column', () => {
    expect(createTrigger).toContain('SET NOCOUNT ON;');
    expect(createTrigger).toContain('SET ROWCOUNT 0;');
    expect(createTrigger).not.toContain('IDENTITY');
    expect(createTrigger).toContain('INSERT INTO [sales].[banyan_cl_orders] ([op], [origin], [before_image], [after_image])\n  SELECT\n');
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
    const names = ['sales', 'orders', 'banyan_cl_orders', 'banyan_cl_orders_trg', 'banyan_cl_orders_seq', ...orders.columns.map((c) => c.name), 'rv', 'op', 'origin', 'change_id', 'changed_at', 'before_image', 'after_image'];
    for (const statement of [createSequence!, createTable!, createTrigger!, triggerFirst!]) {
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
    expect(statements[1]).toContain(`IF OBJECT_ID(N'[o''d]]d].[banyan_cl_x]]; DROP TABLE t; --\\?]', N'U')`);
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

  it('uninstalls the trigger, then the changelog table, then its sequence', () => {
    expect(dialect.uninstallChangelog({ name: 'orders' })).toEqual([
      'DROP TRIGGER IF EXISTS [dbo].[banyan_cl_orders_trg];',
      'DROP TABLE IF EXISTS [dbo].[banyan_cl_orders];',
      'DROP SEQUENCE IF EXISTS [dbo].[banyan_cl_orders_seq];',
    ]);
  });
});

describe('readChanges, prune and origin SQL', () => {
  it('reads one batch below MIN_ACTIVE_ROWVERSION, in rv order, as parameters', () => {
    const q = readChangesQuery(orders, '0x00000000000007D1', 5000);
    expect(q.bindings).toEqual([5000, '0x00000000000007D1']);
    expect(q.sql.startsWith('DECLARE @watermark BINARY(8) = MIN_ACTIVE_ROWVERSION();\nSELECT TOP (?) ')).toBe(true);
    expect(q.sql).toContain('WHERE [rv] > CONVERT(BINARY(8), ?, 1) AND [rv] < @watermark\nORDER BY [rv];');
    expect(q.sql).not.toMatch(/NOLOCK|READPAST|READUNCOMMITTED/i);
    expect(inline(q)).toContain("FROM [sales].[banyan_cl_orders]\nWHERE [rv] > CONVERT(BINARY(8), '0x00000000000007D1', 1)");
    expect(inline(q)).toContain('SELECT TOP (5000) CONVERT(CHAR(18), [rv], 1) AS [rv]');
    expect(native(q)).toMatchObject({ bindings: [5000, '0x00000000000007D1'] });
    expect(native(q).sql).toContain('TOP (@p0)');
  });

  it('prunes with one bounded DELETE below the position and older than the cut-off', () => {
    const q = pruneQuery(orders, '0x00000000000007D1', new Date('2024-01-02T03:04:05.678Z'), 1000);
    expect(q.bindings).toEqual([1000, '0x00000000000007D1', '2024-01-02T03:04:05.678Z']);
    expect(inline(q)).toBe(
      'DELETE TOP (1000) FROM [sales].[banyan_cl_orders]\n' +
        "WHERE [rv] <= CONVERT(BINARY(8), '0x00000000000007D1', 1) AND [changed_at] < CONVERT(DATETIME2(7), '2024-01-02T03:04:05.678Z', 127);\n" +
        'SELECT @@ROWCOUNT AS [deleted];',
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
    expect(inline(snapshotSeenQuery(orders, '0x00000000000007D0'))).toBe(
      "SELECT CONVERT(CHAR(18), [rv], 1) AS [rv] FROM [sales].[banyan_cl_orders]\nWHERE [rv] > CONVERT(BINARY(8), '0x00000000000007D0', 1)\nORDER BY [rv];",
    );
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
  const trx = {
    raw: vi.fn(async (sql: string, bindings: unknown[]) => (calls.push({ on: 'trx', sql, bindings }), answer(sql, bindings))),
    isCompleted: () => completed,
    rollback: vi.fn(async () => void (completed = true)),
  };
  const db = {
    raw: vi.fn(async (sql: string, bindings: unknown[]) => (calls.push({ on: 'db', sql, bindings }), answer(sql, bindings))),
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

  it('finds the changelog table and its trigger by OBJECT_ID, the names bound, not inlined', async () => {
    const hostile = { schema: 'sales', name: "order]lines';--" };
    const q = changelogStateQuery(hostile);
    expect(q.sql).toBe(
      "SELECT CASE WHEN OBJECT_ID(?, N'U') IS NULL THEN 0 ELSE 1 END AS [changelog],\n  CASE WHEN OBJECT_ID(?, N'TR') IS NULL THEN 0 ELSE 1 END AS [trigger];",
    );
    expect(q.bindings).toEqual(["[sales].[banyan_cl_order]]lines';--]", "[sales].[banyan_cl_order]]lines';--_trg]"]);
    expect(native(q).sql).toContain('OBJECT_ID(@p0, N\'U\')');

    const present = fakeKnex(() => [{ changelog: 1, trigger: 1 }]);
    expect(await dialect.changelogState(present.db, orders)).toEqual({ table: true, triggers: ['banyan_cl_orders_trg'], missingTriggers: [] });
    expect(present.calls[0]!.bindings).toEqual(['[sales].[banyan_cl_orders]', '[sales].[banyan_cl_orders_trg]']);
    const gone = fakeKnex(() => [{ changelog: 0, trigger: 0 }]);
    expect(await dialect.changelogState(gone.db, orders)).toEqual({ table: false, triggers: ['banyan_cl_orders_trg'], missingTriggers: ['banyan_cl_orders_trg'] });
  });

  it('reads changes with one query and returns the position after them', async () => {
    const { db, calls } = fakeKnex(() => [{ rv: '0x00000000000007D1', op: 'U', changed_ms: '5', origin: 'banyan', before_image: '{}', after_image: '{}' }]);
    const batch = await dialect.readChanges(db, orders, undefined, 5000, 0);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.bindings).toEqual([5000, START_RV]);
    expect(batch).toEqual({
      rows: [{ op: 'U', changedAt: 5, origin: 'banyan', before: {}, after: {}, position: '0x00000000000007D1' }],
      position: { rv: '0x00000000000007D1' },
    });
  });

  it('returns the number of pruned rows', async () => {
    const { db } = fakeKnex(() => [{ deleted: 42 }]);
    await expect(dialect.pruneChangelog(db, orders, { rv: '0x00000000000007D1' }, new Date(0), 1000)).resolves.toBe(42);
  });

  it('opens a SNAPSHOT transaction when the database allows it, and lists what it already holds', async () => {
    const pages = [[{ tenant_id: '1', order_no: 'A' }], []];
    const { db, trx, calls, transaction } = fakeKnex((sql) => {
      if (sql.includes('[start_rv]')) return [{ start_rv: '0x000000000000000F', snapshot_isolation_state: 1, estimated_rows: '12' }];
      if (sql.startsWith('SELECT CONVERT(CHAR(18), [rv], 1)')) return [{ rv: '0x0000000000000011' }];
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
