import knex from 'knex';
import { describe, expect, it } from 'vitest';
import type { Column, GuardRow, SqlStatement, TableInfo } from '../dialect';
import { MssqlDialect } from '../mssql.dialect';
import { mssqlWrites as writes } from './writes';

// knex compiles SQL Server SQL without a connection: what tedious would be sent, `?` made `@pN`.
const compiler = knex({ client: 'mssql' });
const native = (s: SqlStatement) => compiler.raw(s.sql, s.bindings as never[]).toSQL().toNative();
const parameterCount = (s: SqlStatement): number => new Set(native(s).sql.match(/@p\d+/g) ?? []).size;

const col = (name: string, sqlType: string, type: Column['type'], nullable = true): Column => ({ name, sqlType, type, nullable });

const users: TableInfo = {
  schema: 'dbo',
  name: 'users',
  primaryKey: ['id'],
  columns: [
    col('id', 'int', { kind: 'int' }, false),
    col('name', 'nvarchar(200)', { kind: 'string', unicode: true, maxLength: 200 }),
    col('price', 'decimal(12,2)', { kind: 'decimal', precision: 12, scale: 2 }),
    col('seen_at', 'datetimeoffset(3)', { kind: 'timestamptz', precision: 3 }),
    col('born_at', 'datetime2(7)', { kind: 'timestamp', precision: 7 }),
    col('legacy_at', 'datetime', { kind: 'timestamp', precision: 3 }),
  ],
};

const lines: TableInfo = {
  schema: 'sales',
  name: 'order_lines',
  primaryKey: ['order_no', 'line_no'],
  columns: [
    col('order_no', 'varchar(20)', { kind: 'string', maxLength: 20 }, false),
    col('line_no', 'int', { kind: 'int' }, false),
    col('qty', 'int', { kind: 'int' }),
  ],
};

/** Names that try to break out of the quotes or into knex's placeholders. */
const odd: TableInfo = {
  name: 'x]y?',
  primaryKey: ['we?ird'],
  columns: [col('we?ird', 'int', { kind: 'int' }, false), col('a]b', 'nvarchar(10)', { kind: 'string', unicode: true, maxLength: 10 })],
};

describe('mssqlWrites.updateRows', () => {
  const rows = [
    [1, 'Ann', '10.50'],
    [2, null, '3.00'],
  ];
  const s = writes.updateRows(users, ['name', 'price'], rows);

  it('is one MERGE WITH (UPDLOCK, HOLDLOCK) over typed VALUES, matched only', () => {
    expect(s.sql).toMatch(/^MERGE INTO \[dbo\]\.\[users\] WITH \(UPDLOCK, HOLDLOCK\) AS t\n/);
    expect(s.sql).toContain('USING (VALUES (CAST(? AS int), CAST(? AS nvarchar(max)), CAST(? AS decimal(12,2))),\n  (CAST(? AS int), CAST(? AS nvarchar(max)), CAST(? AS decimal(12,2)))) AS s(c0, c1, c2)');
    expect(s.sql).toContain('ON t.[id] = s.c0');
    expect(s.sql).toContain('THEN UPDATE SET [name] = s.c1, [price] = s.c2;');
    expect(s.sql).not.toContain('NOT MATCHED');
    expect(s.sql).not.toContain('INSERT');
  });

  it('updates only rows where a value differs, NULL-safely (EXCEPT), strings by their bytes', () => {
    expect(s.sql).toContain(
      'WHEN MATCHED AND EXISTS (SELECT CONVERT(VARBINARY(MAX), CONVERT(NVARCHAR(MAX), s.c1)), s.c2 ' +
        'EXCEPT SELECT CONVERT(VARBINARY(MAX), CONVERT(NVARCHAR(MAX), t.[name])), t.[price])',
    );
  });

  it('ends with the row count, which is how changedRows learns it', () => {
    expect(s.sql.trimEnd()).toMatch(/;\nSELECT @@ROWCOUNT AS \[changed\];$/);
  });

  it('binds the rows flattened in order, one parameter each', () => {
    expect(s.bindings).toEqual([1, 'Ann', '10.50', 2, null, '3.00']);
    expect(parameterCount(s)).toBe(s.bindings.length);
    expect(native(s).bindings).toEqual(s.bindings);
  });

  it('refuses a row of the wrong width and an empty batch', () => {
    expect(() => writes.updateRows(users, ['name', 'price'], [[1, 'Ann']])).toThrow(/2 values where 3 columns/);
    expect(() => writes.updateRows(users, ['name'], [])).toThrow(/at least one row/);
    expect(() => writes.updateRows(users, ['nope'], [[1, 2]])).toThrow(/"nope" is not among the columns/);
  });
});

describe('mssqlWrites.insertRows', () => {
  it('inserts what is not there and updates, where a value differs, what appeared meanwhile', () => {
    const s = writes.insertRows(users, ['id', 'name', 'price'], [[7, 'Eve', '1.00']]);
    expect(s.sql).toMatch(/^MERGE INTO \[dbo\]\.\[users\] WITH \(UPDLOCK, HOLDLOCK\) AS t\n/);
    expect(s.sql).toContain('ON t.[id] = s.c0');
    expect(s.sql).toContain('WHEN MATCHED AND EXISTS (SELECT CONVERT(VARBINARY(MAX), CONVERT(NVARCHAR(MAX), s.c1)), s.c2 EXCEPT SELECT ');
    // Key columns are not updated; only the others.
    expect(s.sql).toContain('THEN UPDATE SET [name] = s.c1, [price] = s.c2\n');
    expect(s.sql).toContain('WHEN NOT MATCHED BY TARGET\n  THEN INSERT ([id], [name], [price]) VALUES (s.c0, s.c1, s.c2);');
    expect(s.sql).toContain('SELECT @@ROWCOUNT AS [changed];');
    expect(s.bindings).toEqual([7, 'Eve', '1.00']);
    expect(parameterCount(s)).toBe(3);
  });

  it('finds key columns wherever they stand in the column list (composite key)', () => {
    const s = writes.insertRows(lines, ['qty', 'line_no', 'order_no'], [
      [5, 1, 'A-1'],
      [6, 2, 'A-1'],
    ]);
    expect(s.sql).toContain('ON t.[order_no] = s.c2 AND t.[line_no] = s.c1');
    expect(s.sql).toContain('CAST(? AS int), CAST(? AS int), CAST(? AS varchar(max))');
    expect(s.sql).toContain('THEN UPDATE SET [qty] = s.c0\n');
    expect(s.bindings).toEqual([5, 1, 'A-1', 6, 2, 'A-1']);
    expect(parameterCount(s)).toBe(6);
  });

  it('has no update branch when only key columns are written, and refuses rows without the key', () => {
    const s = writes.insertRows(lines, ['order_no', 'line_no'], [['A-1', 1]]);
    expect(s.sql).not.toContain('WHEN MATCHED');
    expect(s.sql).toContain('WHEN NOT MATCHED BY TARGET');
    expect(() => writes.insertRows(lines, ['order_no', 'qty'], [['A-1', 1]])).toThrow(/key column "line_no"/);
  });
});

describe('mssqlWrites lockRows and deleteRows', () => {
  const keys = [
    ['A-1', 2],
    ['A-1', 1],
  ];

  it('locks by joining the keys (no row-value IN) with UPDLOCK, HOLDLOCK, ROWLOCK, in key order', () => {
    const s = writes.lockRows(lines, keys);
    expect(s.sql).toContain('CONVERT(NVARCHAR(4000), t.[order_no]) AS [k0], CONVERT(NVARCHAR(4000), CONVERT(VARCHAR(20), t.[line_no])) AS [k1]');
    expect(s.sql).toContain('FROM [sales].[order_lines] AS t WITH (UPDLOCK, HOLDLOCK, ROWLOCK)');
    expect(s.sql).toContain('JOIN (VALUES (CAST(? AS varchar(max)), CAST(? AS int)),\n  (CAST(? AS varchar(max)), CAST(? AS int))) AS v(c0, c1)');
    expect(s.sql).toContain('ON t.[order_no] = v.c0 AND t.[line_no] = v.c1');
    expect(s.sql).toMatch(/ORDER BY t\.\[order_no\], t\.\[line_no\];$/);
    expect(s.sql).not.toMatch(/\bIN\s*\(/);
    expect(s.bindings).toEqual(['A-1', 2, 'A-1', 1]);
    expect(parameterCount(s)).toBe(4);
  });

  it('reads datetime keys in their documented text form, not CONVERT’s default', () => {
    const s = writes.lockRows({ ...users, primaryKey: ['legacy_at'] }, [['2024-01-02T03:04:05.678']]);
    expect(s.sql).toContain('CONVERT(NVARCHAR(4000), CONVERT(VARCHAR(27), t.[legacy_at], 121)) AS [k0]');
  });

  it('deletes by joining the keys', () => {
    const s = writes.deleteRows(lines, keys);
    expect(s.sql).toMatch(/^DELETE t FROM \[sales\]\.\[order_lines\] AS t\nJOIN \(VALUES /);
    expect(s.sql).toContain('ON t.[order_no] = v.c0 AND t.[line_no] = v.c1;\nSELECT @@ROWCOUNT AS [changed];');
    expect(s.bindings).toEqual(['A-1', 2, 'A-1', 1]);
    expect(parameterCount(s)).toBe(4);
  });
});

describe('mssqlWrites identifiers', () => {
  it('quotes every name, doubling ], and hides a ? in a name from knex', () => {
    const statements = [
      writes.updateRows(odd, ['a]b'], [[1, 'x']]),
      writes.insertRows(odd, ['we?ird', 'a]b'], [[1, 'x']]),
      writes.lockRows(odd, [[1]]),
      writes.deleteRows(odd, [[1]]),
    ];
    for (const s of statements) {
      // Without the escape knex would count the name's ? as a parameter and refuse the bindings.
      const sent = native(s);
      expect(sent.bindings).toEqual(s.bindings);
      expect(parameterCount(s)).toBe(s.bindings.length);
      expect(sent.sql).toContain('[dbo].[x]]y?]'); // no schema: dbo
      expect(sent.sql).toContain('[we?ird]');
      expect(s.sql).not.toMatch(/\[we\?ird\]/); // the raw SQL carries it escaped: [we\?ird]
    }
    expect(native(statements[0]!).sql).toContain('[a]]b] = s.c1');
  });

  it('quotes the sink tables’ schema the same way', () => {
    const [guard, offsets] = writes.sinkTables('s]?');
    expect(compiler.raw(guard!, []).toSQL().toNative().sql).toContain(`IF OBJECT_ID(N'[s]]?].[banyan_guard]', N'U') IS NULL\nCREATE TABLE [s]]?].[banyan_guard]`);
    expect(compiler.raw(offsets!, []).toSQL().toNative().sql).toContain('CREATE TABLE [s]]?].[banyan_sink_offsets]');
  });
});

describe('mssqlWrites sink tables', () => {
  const guardRows: GuardRow[] = [
    { entity: 'user', entityId: '1', field: 'email', versionMs: 1_700_000_000_000, origin: 'salesforce', eventId: 'e1', written: true },
    { entity: 'user', entityId: '2', field: 'name', versionMs: 1_700_000_000_001, origin: 'legacy', eventId: 'e2', written: false },
  ];

  it('creates the guard and the offsets tables only if missing, in dbo by default', () => {
    const [guard, offsets] = writes.sinkTables(undefined);
    expect(guard).toMatch(/^IF OBJECT_ID\(N'\[dbo\]\.\[banyan_guard\]', N'U'\) IS NULL\nCREATE TABLE \[dbo\]\.\[banyan_guard\] \(/);
    expect(guard).toContain('[version_ms] bigint NOT NULL');
    expect(guard).toContain('[written] bit NOT NULL');
    expect(guard).toContain('[updated_at] datetime2(3) NOT NULL DEFAULT SYSUTCDATETIME()');
    expect(guard).toContain('PRIMARY KEY NONCLUSTERED ([entity], [entity_id], [field])');
    expect(offsets).toMatch(/^IF OBJECT_ID\(N'\[dbo\]\.\[banyan_sink_offsets\]', N'U'\) IS NULL\nCREATE TABLE /);
    expect(offsets).toContain('PRIMARY KEY NONCLUSTERED ([sink], [topic], [kafka_partition])');
  });

  it('reads the guard rows of (entity, id) pairs', () => {
    const s = writes.readGuard('app', [
      ['user', '1'],
      ['user', '2'],
    ]);
    expect(s.sql).toContain('FROM [app].[banyan_guard] AS g\nWHERE EXISTS (SELECT 1 FROM (VALUES ');
    expect(s.sql).toContain('WHERE v.c0 = g.[entity] AND v.c1 = g.[entity_id]');
    expect(s.bindings).toEqual(['user', '1', 'user', '2']);
    expect(parameterCount(s)).toBe(4);
  });

  it('writes guard rows with one MERGE WITH (UPDLOCK, HOLDLOCK)', () => {
    const s = writes.writeGuard(undefined, guardRows);
    expect(s.sql).toMatch(/^MERGE INTO \[dbo\]\.\[banyan_guard\] WITH \(UPDLOCK, HOLDLOCK\) AS t\n/);
    expect(s.sql).toContain('ON t.[entity] = s.c0 AND t.[entity_id] = s.c1 AND t.[field] = s.c2');
    expect(s.sql).toContain('[updated_at] = SYSUTCDATETIME()');
    expect(s.sql).toContain('WHEN NOT MATCHED BY TARGET');
    expect(s.bindings).toEqual(['user', '1', 'email', 1_700_000_000_000, 'salesforce', 'e1', true, 'user', '2', 'name', 1_700_000_000_001, 'legacy', 'e2', false]);
    expect(parameterCount(s)).toBe(14);
  });

  it('reads offsets as text and never moves one back', () => {
    expect(writes.readOffsets(undefined, 'legacy')).toEqual({
      sql: 'SELECT [topic], [kafka_partition], CONVERT(VARCHAR(20), [next_offset]) AS [next_offset]\nFROM [dbo].[banyan_sink_offsets] WHERE [sink] = ?;',
      bindings: ['legacy'],
    });
    const s = writes.writeOffsets(undefined, 'legacy', [
      { topic: 'domain.user', partition: 0, next: '10' },
      { topic: 'domain.user', partition: 1, next: '9007199254740993' },
    ]);
    expect(s.sql).toMatch(/^MERGE INTO \[dbo\]\.\[banyan_sink_offsets\] WITH \(UPDLOCK, HOLDLOCK\) AS t\n/);
    expect(s.sql).toContain('[next_offset] = CASE WHEN s.c3 > t.[next_offset] THEN s.c3 ELSE t.[next_offset] END');
    expect(s.bindings).toEqual(['legacy', 'domain.user', 0, '10', 'legacy', 'domain.user', 1, '9007199254740993']);
    expect(parameterCount(s)).toBe(8);
  });

  it('moves one partition’s offset back only when told to (its topic was made again)', () => {
    const s = writes.resetOffset('sales', 'legacy', { topic: 'domain.user', partition: 2, next: '0' });
    expect(s.sql).toBe('UPDATE [sales].[banyan_sink_offsets] SET [next_offset] = ?, [updated_at] = SYSUTCDATETIME()\nWHERE [sink] = ? AND [topic] = ? AND [kafka_partition] = ?;');
    expect(s.bindings).toEqual(['0', 'legacy', 'domain.user', 2]);
    expect(parameterCount(s)).toBe(4);
  });
});

describe('mssqlWrites results', () => {
  it('counts changed rows from the trailing SELECT @@ROWCOUNT (knex returns no count of its own)', () => {
    expect(writes.changedRows([{ changed: 3 }])).toBe(3);
    // A legacy trigger that still returns a result set puts its rows first.
    expect(writes.changedRows([{ audit: 'x' }, { changed: 2 }])).toBe(2);
    expect(writes.changedRows([])).toBe(0);
    expect(writes.changedRows(undefined)).toBe(0);
  });

  it('returns a SELECT’s rows as knex gives them', () => {
    const rows = [{ k0: '1' }, { k0: '2' }];
    expect(writes.resultRows(rows)).toBe(rows);
  });
});

describe('mssqlWrites.parameter', () => {
  const column = (name: string) => users.columns.find((c) => c.name === name)!;
  const ms = Date.UTC(2024, 0, 2, 3, 4, 5, 678);

  it('writes timestamps as ISO text in UTC (datetimeoffset with Z, datetime2/datetime as the UTC wall time)', () => {
    expect(writes.parameter(column('seen_at'), ms)).toBe('2024-01-02T03:04:05.678Z');
    expect(writes.parameter(column('born_at'), ms)).toBe('2024-01-02T03:04:05.678');
    expect(writes.parameter(column('legacy_at'), new Date(ms))).toBe('2024-01-02T03:04:05.678');
    // 'YYYY-MM-DD' alone would be read by DATEFORMAT into a datetime.
    expect(writes.parameter(column('legacy_at'), '2024-01-02')).toBe('2024-01-02T00:00:00');
  });

  it('writes bigint as text and the rest as the domain gives it', () => {
    expect(writes.parameter(column('id'), 2n ** 60n)).toBe('1152921504606846976');
    expect(writes.parameter(column('price'), '12.50')).toBe('12.50');
    expect(writes.parameter(column('name'), 'Ann')).toBe('Ann');
    expect(writes.parameter(column('name'), undefined)).toBeNull();
    expect(writes.parameter(column('id'), 42)).toBe(42);
  });
});

describe('mssqlWrites.maxRows', () => {
  it('keeps a statement under SQL Server’s 2,100 parameters, and uses the room', () => {
    for (const width of [1, 2, 3, 7, 40, 333, 1024]) {
      const rows = writes.maxRows(width);
      expect(rows).toBeGreaterThanOrEqual(1);
      expect(rows * width).toBeLessThanOrEqual(2_000);
      expect((rows + 1) * width).toBeGreaterThan(2_000);
    }
  });

  it('so that a full statement compiles to fewer than 2,100 parameters', () => {
    const rows = Array.from({ length: writes.maxRows(3) }, (_, i) => [i, `n${i}`, '1.00']);
    const s = writes.updateRows(users, ['name', 'price'], rows);
    expect(parameterCount(s)).toBe(s.bindings.length);
    expect(s.bindings.length).toBeLessThan(2_100);
  });
});

describe('mssqlWrites.isRowRefusal', () => {
  const refusals = [515, 547, 2601, 2627, 2628, 8152, 245, 8114, 220, 8115, 242];

  it.each(refusals)('is true for error %i (tedious and node-mssql shapes)', (number) => {
    expect(writes.isRowRefusal(Object.assign(new Error('refused'), { number }))).toBe(true);
    expect(writes.isRowRefusal({ originalError: { info: { number } } })).toBe(true);
    // tedious reports several errors of one request as an AggregateError.
    expect(writes.isRowRefusal(new AggregateError([Object.assign(new Error('a'), { number }), Object.assign(new Error('b'), { number: 3621 })]))).toBe(true);
  });

  it('is false for deadlocks, lock timeouts, connection errors, and never reads the message', () => {
    expect(writes.isRowRefusal(Object.assign(new Error('deadlock victim'), { number: 1205 }))).toBe(false);
    expect(writes.isRowRefusal(Object.assign(new Error('lock timeout'), { number: 1222 }))).toBe(false);
    expect(writes.isRowRefusal(Object.assign(new Error('Connection lost'), { code: 'ESOCKET' }))).toBe(false);
    expect(writes.isRowRefusal(new Error('Violation of PRIMARY KEY constraint'))).toBe(false);
    expect(writes.isRowRefusal(undefined)).toBe(false);
  });
});

describe('MssqlDialect.writes', () => {
  it('is these statements', () => {
    expect(new MssqlDialect().writes).toBe(writes);
  });
});
