import knex from 'knex';
import { describe, expect, it } from 'vitest';
import { bytesToDecimal, converterFor } from '../../import/changelog/avro';
import type { Column, ColumnKind, TableInfo } from '../dialect';
import { installStatements } from './changelog';
import { snapshotPageQuery } from './queries';
import { columnFromCatalog, textExpression, type CatalogColumn } from './types';

/**
 * The text forms of docs/dialect-mssql.md "Text forms", as SQL: no SQL Server runs here, so these
 * pin the generated expressions; test/integration/mssql-types.test.ts pins what a server prints.
 */

function column(typeName: string, maxLength = 0, precision = 0, scale = 0, extra: Partial<CatalogColumn> = {}): Column {
  return columnFromCatalog({ name: 'c', typeName, baseTypeName: typeName, isAssemblyType: false, maxLength, precision, scale, nullable: true, ...extra });
}
const clr = (typeName: string): Column => column(typeName, -1, 0, 0, { baseTypeName: null, isAssemblyType: true });
const text = (c: Column): string => textExpression(c, '[i].[c]');

/**
 * Every type a legacy column can have, with the longest text its value can print as (null:
 * unbounded; 'parts': built of other types' forms, whose widths are checked as those types).
 */
const TYPES: Array<[string, Column, number | null | 'parts']> = [
  ['bit', column('bit', 1), 5],
  ['tinyint', column('tinyint', 1, 3), 3],
  ['smallint', column('smallint', 2, 5), 6],
  ['int', column('int', 4, 10), 11],
  ['bigint', column('bigint', 8, 19), 20],
  ['decimal(38,0)', column('decimal', 17, 38, 0), 39],
  ['decimal(38,38)', column('decimal', 17, 38, 38), 41],
  ['numeric(38,10)', column('numeric', 17, 38, 10), 40],
  ['money', column('money', 8, 19, 4), 21],
  ['smallmoney', column('smallmoney', 4, 10, 4), 12],
  ['real', column('real', 4, 24), 24],
  ['float', column('float', 8, 53), 24],
  ['char(10)', column('char', 10), null],
  ['varchar(max)', column('varchar', -1), null],
  ['nvarchar(max)', column('nvarchar', -1), null],
  ['text', column('text', 16), null],
  ['ntext', column('ntext', 16), null],
  ['xml', column('xml', -1), null],
  ['uniqueidentifier', column('uniqueidentifier', 16), 36],
  ['binary(16)', column('binary', 16), null],
  ['varbinary(max)', column('varbinary', -1), null],
  ['image', column('image', 16), null],
  ['rowversion', column('timestamp', 8), 16],
  ['date', column('date', 3, 10), 10],
  ['time(7)', column('time', 5, 16, 7), 16],
  ['datetime', column('datetime', 8, 23, 3), 23],
  ['smalldatetime', column('smalldatetime', 4, 16), 19],
  ['datetime2(7)', column('datetime2', 8, 27, 7), 27],
  ['datetimeoffset(7)', column('datetimeoffset', 10, 34, 7), 27],
  // The base type's forms, and the base type's name as sysname (NVARCHAR(128)).
  ['sql_variant', column('sql_variant', 8016), 'parts'],
  ['hierarchyid', clr('hierarchyid'), null],
  // The SRID, an int (NVARCHAR(11)), and AsTextZM(), an nvarchar(max).
  ['geography', clr('geography'), 'parts'],
  ['geometry', clr('geometry'), 'parts'],
];

/** The expression without its '…' literals, for structural checks. */
const code = (sql: string): string => sql.replace(/N?'(?:[^']|'')*'/g, "''");

describe('textExpression: the form of each type', () => {
  it('prints a sql_variant by its base type, prefixed with that type, never in the default style nor cut at 4,000 characters', () => {
    const sql = text(column('sql_variant', 8016));
    const base = "CONVERT(NVARCHAR(128), SQL_VARIANT_PROPERTY([i].[c], 'BaseType'))";
    expect(sql.startsWith(`CASE WHEN [i].[c] IS NULL THEN NULL ELSE ${base} + N':' + CASE ${base} `)).toBe(true);
    const branches = [
      // Seconds and milliseconds of a datetime (the default style prints 'Jan  2 2024  3:04AM').
      "WHEN N'datetime' THEN CONVERT(VARCHAR(27), CONVERT(DATETIME, [i].[c]), 121)",
      "WHEN N'smalldatetime' THEN CONVERT(VARCHAR(19), CONVERT(SMALLDATETIME, [i].[c]), 120)",
      "WHEN N'datetime2' THEN CONVERT(VARCHAR(27), CONVERT(DATETIME2(7), [i].[c]), 121)",
      "WHEN N'datetimeoffset' THEN CONVERT(VARCHAR(27), CONVERT(DATETIME2(7), SWITCHOFFSET(CONVERT(DATETIMEOFFSET(7), [i].[c]), '+00:00')), 121)",
      "WHEN N'date' THEN CONVERT(CHAR(10), CONVERT(DATE, [i].[c]), 23)",
      "WHEN N'time' THEN CONVERT(VARCHAR(27), CONVERT(TIME(7), [i].[c]), 121)",
      // Every digit of a float (the default style prints 6), four decimals of money (the default prints 2).
      "WHEN N'float' THEN CONVERT(VARCHAR(30), CONVERT(FLOAT, [i].[c]), 3)",
      "WHEN N'money' THEN CONVERT(VARCHAR(50), CONVERT(DECIMAL(19,4), CONVERT(MONEY, [i].[c])))",
      "WHEN N'smallmoney' THEN CONVERT(VARCHAR(50), CONVERT(DECIMAL(19,4), CONVERT(SMALLMONEY, [i].[c])))",
      "WHEN N'bit' THEN CASE CONVERT(BIT, [i].[c]) WHEN 1 THEN 'true' WHEN 0 THEN 'false' END",
      "WHEN N'bigint' THEN CONVERT(VARCHAR(20), CONVERT(BIGINT, [i].[c]))",
      "WHEN N'uniqueidentifier' THEN LOWER(CONVERT(CHAR(36), CONVERT(UNIQUEIDENTIFIER, [i].[c])))",
      "WHEN N'varbinary' THEN LOWER(CONVERT(VARCHAR(MAX), CONVERT(VARBINARY(MAX), CONVERT(VARBINARY(8000), [i].[c])), 2))",
      "WHEN N'decimal' THEN CONVERT(VARCHAR(50), [i].[c])",
      "WHEN N'numeric' THEN CONVERT(VARCHAR(50), [i].[c])",
    ];
    for (const branch of branches) expect(sql).toContain(branch);
    expect(sql).toContain(`WHEN N'real' THEN ${text(column('real', 4, 24)).replaceAll('[i].[c]', 'CONVERT(REAL, [i].[c])')}`);
    // Strings (char, varchar, nchar, nvarchar: up to 8,000 bytes) and any base type a later version adds.
    expect(sql.endsWith('ELSE CONVERT(NVARCHAR(MAX), [i].[c]) END END')).toBe(true);
    expect(sql).not.toContain('4000');
  });

  it('has a branch for every base type a sql_variant can hold (the strings through the ELSE)', () => {
    const sql = text(column('sql_variant', 8016));
    const bases = [
      ...['bigint', 'binary', 'bit', 'date', 'datetime', 'datetime2', 'datetimeoffset', 'decimal', 'float', 'int', 'money', 'numeric'],
      ...['real', 'smalldatetime', 'smallint', 'smallmoney', 'time', 'tinyint', 'uniqueidentifier', 'varbinary'],
    ];
    for (const base of bases) expect(sql).toContain(`WHEN N'${base}' THEN `);
    for (const base of ['char', 'varchar', 'nchar', 'nvarchar']) expect(sql).not.toContain(`WHEN N'${base}'`);
  });

  it('keeps the SRID and the Z and M values of geography and geometry', () => {
    for (const type of ['geography', 'geometry']) {
      expect(text(clr(type))).toBe(
        "CASE WHEN [i].[c] IS NULL THEN NULL ELSE N'SRID=' + CONVERT(NVARCHAR(11), [i].[c].STSrid) + N';' + [i].[c].AsTextZM() END",
      );
    }
  });

  it('prints hierarchyid through ToString() and xml as its serialization', () => {
    expect(text(clr('hierarchyid'))).toBe('[i].[c].ToString()');
    expect(text(column('xml', -1))).toBe('CONVERT(NVARCHAR(MAX), [i].[c])');
  });

  it('prints a real as the shortest of styles 0 and 1 that reads back, else style 3; a float always in style 3', () => {
    const styled = (style: number) => `CONVERT(VARCHAR(30), [i].[c], ${style})`;
    expect(text(column('real', 4, 24))).toBe(
      `CASE WHEN TRY_CONVERT(REAL, ${styled(0)}) = [i].[c] THEN ${styled(0)} WHEN TRY_CONVERT(REAL, ${styled(1)}) = [i].[c] THEN ${styled(1)} ELSE ${styled(3)} END`,
    );
    expect(text(column('float', 8, 53))).toBe(styled(3));
  });

  it.each([
    ['decimal(38,10)', column('decimal', 17, 38, 10), 'CONVERT(VARCHAR(50), [i].[c])'],
    ['money', column('money', 8, 19, 4), 'CONVERT(VARCHAR(50), CONVERT(DECIMAL(19,4), [i].[c]))'],
    ['smallmoney', column('smallmoney', 4, 10, 4), 'CONVERT(VARCHAR(50), CONVERT(DECIMAL(19,4), [i].[c]))'],
    ['datetime', column('datetime', 8, 23, 3), 'CONVERT(VARCHAR(27), [i].[c], 121)'],
    ['smalldatetime', column('smalldatetime', 4, 16), 'CONVERT(VARCHAR(19), [i].[c], 120)'],
    ['datetime2(0)', column('datetime2', 6, 19, 0), 'CONVERT(VARCHAR(27), [i].[c], 121)'],
    ['time(0)', column('time', 3, 8, 0), 'CONVERT(VARCHAR(27), [i].[c], 121)'],
    ['datetimeoffset(0)', column('datetimeoffset', 8, 26, 0), "CONVERT(VARCHAR(27), CONVERT(DATETIME2(0), SWITCHOFFSET([i].[c], '+00:00')), 121)"],
    ['datetimeoffset(7)', column('datetimeoffset', 10, 34, 7), "CONVERT(VARCHAR(27), CONVERT(DATETIME2(7), SWITCHOFFSET([i].[c], '+00:00')), 121)"],
    ['binary(4)', column('binary', 4), 'LOWER(CONVERT(VARCHAR(MAX), CONVERT(VARBINARY(MAX), [i].[c]), 2))'],
    ['varbinary(max)', column('varbinary', -1), 'LOWER(CONVERT(VARCHAR(MAX), CONVERT(VARBINARY(MAX), [i].[c]), 2))'],
    ['nvarchar(max), as it is (non-BMP characters are UTF-16 pairs FOR JSON leaves alone)', column('nvarchar', -1), '[i].[c]'],
    ['ntext', column('ntext', 16), 'CONVERT(NVARCHAR(MAX), [i].[c])'],
  ])('%s', (_label, c, expected) => {
    expect(text(c)).toBe(expected);
  });
});

describe('textExpression: what holds for every type', () => {
  it.each(TYPES.filter(([, , longest]) => longest !== 'parts'))('%s: no conversion narrower than the longest text the value prints as', (_label, c, longest) => {
    const widths = [...code(text(c)).matchAll(/\bN?(?:VAR)?CHAR\((\d+|MAX)\)/g)].map((m) => m[1]!);
    for (const width of widths) {
      if (width === 'MAX') continue;
      // A value wider than a VARCHAR(n) it is converted to is cut short (strings) or fails the write (numbers).
      expect(longest, `${c.sqlType} goes through CHAR/VARCHAR(${width})`).not.toBeNull();
      expect(Number(width)).toBeGreaterThanOrEqual(longest as number);
    }
  });

  it.each(TYPES)('%s: balanced parentheses and CASE … END, on one line', (_label, c) => {
    const sql = code(text(c));
    let depth = 0;
    for (const ch of sql) {
      depth += ch === '(' ? 1 : ch === ')' ? -1 : 0;
      expect(depth).toBeGreaterThanOrEqual(0);
    }
    expect(depth).toBe(0);
    expect(sql.match(/\bCASE\b/g)?.length ?? 0).toBe(sql.match(/\bEND\b/g)?.length ?? 0);
    // The trigger's images are one SELECT list; no line breaks, no `?` for knex to take for a parameter.
    expect(sql).not.toMatch(/[\n?]/);
  });
});

describe('one text form, whichever way a row arrives', () => {
  const table: TableInfo = {
    schema: 'dbo',
    name: 'kinds',
    primaryKey: ['id'],
    columns: [
      { ...column('int', 4, 10), name: 'id', nullable: false },
      { ...column('sql_variant', 8016), name: 'v' },
      { ...clr('geography'), name: 'g' },
      { ...column('real', 4, 24), name: 'r' },
    ],
  };

  it('uses the same expressions in the trigger’s images and in the snapshot’s pages', () => {
    const trigger = installStatements(table).find((s) => s.includes('CREATE OR ALTER TRIGGER'))!;
    const page = snapshotPageQuery(table, ['7'], 100);
    for (const c of table.columns.slice(1)) {
      expect(trigger).toContain(`${textExpression(c, `[i].[${c.name}]`)} AS [${c.name}]`);
      expect(trigger).toContain(`${textExpression(c, `[d].[${c.name}]`)} AS [${c.name}]`);
      expect(page.sql).toContain(`${textExpression(c, `[t].[${c.name}]`)} AS [${c.name}]`);
    }
    // knex sends the page with its two parameters only: nothing in the expressions is taken for one.
    const native = knex({ client: 'mssql' }).raw(page.sql, page.bindings).toSQL().toNative();
    expect(native.bindings).toEqual([100, '7']);
    expect(native.sql.match(/@p\d+/g)).toEqual(['@p0', '@p1']);
  });
});

describe('the text forms, read as the importer reads them (src/import/changelog/avro.ts)', () => {
  const kind = (c: Column): ColumnKind => c.type;

  it('reads every printed real back to the same 32-bit float, whichever style printed it', () => {
    const real = converterFor(kind(column('real', 4, 24)));
    expect(kind(column('real', 4, 24))).toEqual({ kind: 'float' });
    expect(Math.fround(real('0.1') as number)).toBe(Math.fround(0.1)); // style 0
    expect(Math.fround(real('1.2345679e+000') as number)).toBe(Math.fround(1.23456789)); // style 1
    expect(Math.fround(real('1.2345678806304932e+000') as number)).toBe(Math.fround(1.23456789)); // style 3 of the same real
    expect(Math.fround(real('1.0012850341796875e+003') as number)).toBe(Math.fround(1001.2850341796875)); // needs 9 digits: style 3
    expect(Math.fround(real('3.4028235e+038') as number)).toBe(Math.fround(3.4028234663852886e38));
    const float = converterFor(kind(column('float', 8, 53)));
    expect(float('1.0000000000000001e-001')).toBe(0.1);
    expect(float('3.3333333333333331e-001')).toBe(1 / 3);
  });

  it('reads decimals of 38 digits, money with four decimals and smallmoney exactly', () => {
    const d38 = kind(column('decimal', 17, 38, 10)) as ColumnKind & { kind: 'decimal' };
    const nines = '9'.repeat(28);
    expect(bytesToDecimal(converterFor(d38)(`-${nines}.0123456789`) as Buffer, 10)).toBe(`-${nines}.0123456789`);
    const fraction = kind(column('decimal', 17, 38, 38));
    expect(bytesToDecimal(converterFor(fraction)(`-0.${'9'.repeat(38)}`) as Buffer, 38)).toBe(`-0.${'9'.repeat(38)}`);
    expect(bytesToDecimal(converterFor(kind(column('money', 8, 19, 4)))('922337203685477.5807') as Buffer, 4)).toBe('922337203685477.5807');
    expect(bytesToDecimal(converterFor(kind(column('smallmoney', 4, 10, 4)))('-214748.3648') as Buffer, 4)).toBe('-214748.3648');
  });

  it('reads the date and time forms at their precision, datetimeoffset as the UTC instant', () => {
    const at = (iso: string) => BigInt(Date.parse(iso));
    expect(converterFor(kind(column('datetime2', 6, 19, 0)))('2024-01-02 03:04:05')).toBe(at('2024-01-02T03:04:05Z'));
    expect(converterFor(kind(column('datetime', 8, 23, 3)))('2024-01-02 03:04:05.997')).toBe(at('2024-01-02T03:04:05.997Z'));
    expect(converterFor(kind(column('smalldatetime', 4, 16)))('2024-01-02 03:04:00')).toBe(at('2024-01-02T03:04:00Z'));
    expect(converterFor(kind(column('time', 3, 8, 0)))('23:59:59')).toBe(86_399_000_000n);
    expect(converterFor(kind(column('time', 5, 16, 7)))('12:34:56.1234567')).toBe(45_296_123_456_700n);
    // '2024-01-02T03:04:05.1234567+05:30' as the trigger prints it.
    expect(converterFor(kind(column('datetimeoffset', 10, 34, 7)))('2024-01-01 21:34:05.1234567')).toBe(at('2024-01-01T21:34:05.123Z') * 1_000_000n + 456_700n);
  });

  it('reads hex without 0x as bytes, and carries sql_variant, geography, hierarchyid and xml as text', () => {
    expect(converterFor(kind(column('varbinary', -1)))('00abcdef')).toEqual(Buffer.from([0, 0xab, 0xcd, 0xef]));
    for (const [c, value] of [
      [column('sql_variant', 8016), 'datetime:2024-01-02 03:04:05.997'],
      [clr('geography'), 'SRID=4326;POINT (-122.349 47.651 10.3 12)'],
      [clr('hierarchyid'), '/1/2.5/3/'],
      [column('xml', -1), '<r a="1"><t>x &amp; y</t></r>'],
      [column('nvarchar', -1), 'x😀'],
    ] as Array<[Column, string]>) {
      expect(converterFor(kind(c))(value)).toBe(value);
    }
    expect(kind(column('sql_variant', 8016))).toEqual({ kind: 'other', sqlType: 'sql_variant' });
    expect(kind(clr('geography'))).toEqual({ kind: 'other', sqlType: 'geography' });
  });

  it('keeps a non-BMP character through the JSON image as JSON.parse reads it', () => {
    // FOR JSON escapes only '"', '\', '/' and control characters; a surrogate pair passes as is.
    const image = '{"c":"x\uD83D\uDE00\\/\\"\\u0001"}';
    expect(JSON.parse(image)).toEqual({ c: 'x😀/"\u0001' });
  });
});
