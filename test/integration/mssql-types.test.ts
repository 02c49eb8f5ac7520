import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import type { ChangeRow, Dialect, Position, TableInfo } from '../../src/dialects/dialect';
import { MssqlDialect } from '../../src/dialects/mssql.dialect';
import { converterFor } from '../../src/import/changelog/avro';
import { freshName, waitFor } from '../helpers';
import { databaseConfig, mssqlTarget, type MssqlServer } from '../mssql';

/**
 * The text forms of docs/dialect-mssql.md "Text forms" as a real SQL Server prints them, at the
 * edges of each type: through the trigger's images (readChanges) and through the snapshot's pages,
 * which must agree. Runs where a SQL Server is reachable (MSSQL_URL, or MSSQL_IMAGE with Docker: test/mssql.ts).
 */
const target = await mssqlTarget('test/integration/mssql-types.test.ts');

// Typed as the interface, as the poller and the migrations hold it.
const dialect: Dialect = new MssqlDialect();

const long = `é${'x'.repeat(4100)}😀"\\/`; // past nvarchar(4000), with a non-BMP character and JSON's escapes
const longAscii = 'a'.repeat(9000); // past varchar(8000)
const nonBmp = '😀𝄞'; // four UTF-16 code units in an nvarchar(10)
const xml = '<?xml version="1.0"?><r a="1"><t>x &amp; y</t></r>';

/** Row 1: every type at an edge. The SQL literal typed as the column, and the text the image must hold. */
const EDGES: Array<[column: string, type: string, literal: string, text: string]> = [
  ['d38_0', 'DECIMAL(38,0)', '99999999999999999999999999999999999999', '99999999999999999999999999999999999999'],
  ['d38_38', 'DECIMAL(38,38)', `-0.${'9'.repeat(38)}`, `-0.${'9'.repeat(38)}`],
  ['d38_10', 'DECIMAL(38,10)', '1234567890123456789012345678.0123456789', '1234567890123456789012345678.0123456789'],
  // real: style 0 where 6 digits read back, style 1 (8 digits) where they do not, else style 3 (17 digits).
  ['r6', 'REAL', 'CAST(0.1 AS REAL)', '0.1'],
  ['r8', 'REAL', 'CAST(1.23456789 AS REAL)', '1.2345679e+000'],
  ['r9', 'REAL', 'CAST(1001.2850341796875 AS REAL)', '1.0012850341796875e+003'],
  ['f', 'FLOAT', 'CAST(0.1 AS FLOAT)', '1.0000000000000001e-001'],
  ['m', 'MONEY', '922337203685477.5807', '922337203685477.5807'],
  ['sm', 'SMALLMONEY', '-214748.3648', '-214748.3648'],
  // datetime keeps 1/300 s ticks: .998 is stored as .997, and .999 rounds up to the next second.
  ['dt', 'DATETIME', "'2024-01-02T03:04:05.998'", '2024-01-02 03:04:05.997'],
  ['dt_up', 'DATETIME', "'2024-12-31T23:59:59.999'", '2025-01-01 00:00:00.000'],
  ['sdt', 'SMALLDATETIME', "'2024-01-02T03:04:29'", '2024-01-02 03:04:00'],
  ['dt2_0', 'DATETIME2(0)', "'2024-01-02T03:04:05'", '2024-01-02 03:04:05'],
  ['dt2_7', 'DATETIME2(7)', "'2024-01-02T03:04:05.1234567'", '2024-01-02 03:04:05.1234567'],
  ['dto', 'DATETIMEOFFSET(7)', "'2024-01-02T03:04:05.1234567+05:30'", '2024-01-01 21:34:05.1234567'],
  ['dto0', 'DATETIMEOFFSET(0)', "'2024-01-01T23:30:00-01:00'", '2024-01-02 00:30:00'],
  ['t0', 'TIME(0)', "'23:59:59'", '23:59:59'],
  ['t7', 'TIME(7)', "'12:34:56.1234567'", '12:34:56.1234567'],
  ['bin', 'BINARY(4)', '0x00ABCDEF', '00abcdef'],
  ['vbin', 'VARBINARY(MAX)', "CONVERT(VARBINARY(MAX), REPLICATE(CONVERT(VARCHAR(MAX), 'A'), 5000)) + 0xFF", `${'41'.repeat(5000)}ff`],
  ['nv', 'NVARCHAR(MAX)', '?', long],
  ['v', 'VARCHAR(MAX)', '?', longAscii],
  ['nvs', 'NVARCHAR(10)', '?', nonBmp],
  // The XML declaration is not stored; the rest prints as it was written. (A parameter: knex reads `?` as one.)
  ['x', 'XML', '?', '<r a="1"><t>x &amp; y</t></r>'],
  ['h', 'HIERARCHYID', "'/1/2.5/3/'", '/1/2.5/3/'],
  ['geo', 'GEOGRAPHY', "geography::STGeomFromText('POINT(-122.349 47.651 10.3 12)', 4326)", 'SRID=4326;POINT (-122.349 47.651 10.3 12)'],
  ['geo_nad83', 'GEOGRAPHY', "geography::STGeomFromText('LINESTRING(-122.36 47.656, -122.343 47.656)', 4269)", 'SRID=4269;LINESTRING (-122.36 47.656, -122.343 47.656)'],
  ['geom', 'GEOMETRY', "geometry::STGeomFromText('POLYGON((0 0, 3 0, 3 3, 0 3, 0 0))', 3857)", 'SRID=3857;POLYGON ((0 0, 3 0, 3 3, 0 3, 0 0))'],
];

/** Rows 2…: one sql_variant value each (a sql_variant holds at most 8,000 bytes of its base value). */
const VARIANTS: Array<[literal: string, text: string]> = [
  // The default style would print 'Jan  2 2024  3:04AM', '0.1', '922337203685477.58'.
  ["CAST('2024-01-02T03:04:05.997' AS DATETIME)", 'datetime:2024-01-02 03:04:05.997'],
  ['CAST(0.1 AS FLOAT)', 'float:1.0000000000000001e-001'],
  ['CAST(922337203685477.5807 AS MONEY)', 'money:922337203685477.5807'],
  // 8,000 characters, which NVARCHAR(4000) would cut in half.
  ["CAST(REPLICATE('v', 8000) AS VARCHAR(8000))", `varchar:${'v'.repeat(8000)}`],
  ["CAST(REPLICATE(N'ж', 4000) AS NVARCHAR(4000))", `nvarchar:${'ж'.repeat(4000)}`],
  ["CAST(N'😀' AS NVARCHAR(10))", 'nvarchar:😀'],
  ["CAST('ab' AS CHAR(4))", 'char:ab  '],
  ['CAST(12.50 AS DECIMAL(12,2))', 'decimal:12.50'],
  ['CAST(-1.5 AS NUMERIC(38,10))', 'numeric:-1.5000000000'],
  ['CAST(42 AS INT)', 'int:42'],
  ['CAST(-9223372036854775808 AS BIGINT)', 'bigint:-9223372036854775808'],
  ['CAST(1 AS BIT)', 'bit:true'],
  ['CAST(1.23456789 AS REAL)', 'real:1.2345679e+000'],
  ["CAST('2024-01-02T03:04:05.123' AS DATETIME2(3))", 'datetime2:2024-01-02 03:04:05.1230000'],
  ["CAST('2024-01-02T03:04:05.1234567+05:30' AS DATETIMEOFFSET(7))", 'datetimeoffset:2024-01-01 21:34:05.1234567'],
  ["CAST('2024-01-02T03:04:29' AS SMALLDATETIME)", 'smalldatetime:2024-01-02 03:04:00'],
  ["CAST('2024-02-29' AS DATE)", 'date:2024-02-29'],
  ["CAST('12:34:56' AS TIME(0))", 'time:12:34:56.0000000'],
  ['CAST(0x00FF AS VARBINARY(2))', 'varbinary:00ff'],
  ["CAST('0F8FAD5B-D9CB-469F-A165-70867728950E' AS UNIQUEIDENTIFIER)", 'uniqueidentifier:0f8fad5b-d9cb-469f-a165-70867728950e'],
];

describe.skipIf(target.skip !== undefined)('SQL Server text forms at the edges of each type', () => {
  let db: Knex;
  let server: MssqlServer | undefined;
  const installed: TableInfo[] = [];
  const schema = freshName('banyan_mssql_types');
  const q = (table: string): string => `${dialect.quoteIdentifier(schema)}.${dialect.quoteIdentifier(table)}`;

  beforeAll(async () => {
    server = await target.start();
    db = createKnex(databaseConfig(server.url));
    await db.raw(`CREATE SCHEMA ${dialect.quoteIdentifier(schema)} AUTHORIZATION [dbo]`);
  }, 900_000);

  afterAll(async () => {
    if (db) {
      // Banyan's objects (the changelogs in the banyan schema, the records), then the tables.
      for (const info of installed) for (const statement of dialect.uninstallChangelog(info)) await db.raw(statement);
      const objects = (await db.raw(`SELECT [name] FROM sys.tables WHERE SCHEMA_NAME([schema_id]) = ?`, [schema])) as Array<{ name: string }>;
      for (const { name } of objects) await db.raw(`DROP TABLE ${q(name)}`);
      await db.raw(`DROP SCHEMA ${dialect.quoteIdentifier(schema)}`);
      await db.destroy();
    }
    await server?.stop();
  }, 120_000);

  /** Reads changes from the beginning until `count` arrived. */
  async function readChanges(info: TableInfo, count: number): Promise<ChangeRow[]> {
    const rows: ChangeRow[] = [];
    let position: Position | undefined;
    await waitFor(async () => {
      const batch = await dialect.readChanges(db, info, position, 1000, Date.now());
      rows.push(...batch.rows);
      position = batch.position;
      return rows.length >= count;
    }, () => `${count} changes of ${info.name} (have ${rows.length})`);
    return rows;
  }

  async function snapshotRows(info: TableInfo): Promise<Array<Record<string, string | null>>> {
    const snapshot = await dialect.openSnapshot(db, info, Date.now());
    try {
      const rows: Array<Record<string, string | null>> = [];
      for (let page = await snapshot.nextPage(7); page.length > 0; page = await snapshot.nextPage(7)) rows.push(...page);
      return rows;
    } finally {
      await snapshot.close();
    }
  }

  it('prints each type exactly, the same in the trigger’s images, in the snapshot and in before images', async () => {
    const name = freshName('types');
    const definitions = EDGES.map(([column, type]) => `${dialect.quoteIdentifier(column)} ${type} NULL`);
    await db.raw(`CREATE TABLE ${q(name)} (id INT NOT NULL PRIMARY KEY, sv SQL_VARIANT NULL, ${definitions.join(', ')})`);
    const info = await dialect.describeTable(db, { schema, name });
    installed.push(info);
    for (const statement of dialect.installChangelog(info)) await db.raw(statement);

    const columns = EDGES.map(([column]) => dialect.quoteIdentifier(column)).join(', ');
    await db.raw(`INSERT INTO ${q(name)} (id, ${columns}) VALUES (1, ${EDGES.map(([, , literal]) => literal).join(', ')})`, [long, longAscii, nonBmp, xml]);
    for (const [i, [literal]] of VARIANTS.entries()) await db.raw(`INSERT INTO ${q(name)} (id, sv) VALUES (${i + 2}, ${literal})`);
    await db.raw(`UPDATE ${q(name)} SET nvs = nvs WHERE id = 1`);

    const nulls: Record<string, string | null> = Object.fromEntries(info.columns.map((c) => [c.name, null]));
    const expected: Array<Record<string, string | null>> = [
      { ...nulls, id: '1', ...Object.fromEntries(EDGES.map(([column, , , text]) => [column, text])) },
      ...VARIANTS.map(([, text], i) => ({ ...nulls, id: String(i + 2), sv: text })),
    ];

    const changes = await readChanges(info, expected.length + 1);
    expect(changes.map((c) => c.op)).toEqual([...expected.map(() => 'I'), 'U']);
    const inserted = changes.filter((c) => c.op === 'I').map((c) => c.after);
    for (const row of expected) expect(inserted.find((image) => image?.id === row.id)).toEqual(row);
    // The before image comes from `deleted` through the same expressions.
    expect(changes.at(-1)).toMatchObject({ before: expected[0], after: expected[0] });
    expect(inserted[0]?.nvs).toHaveLength(4);

    const snapshot = await snapshotRows(info);
    expect(snapshot).toEqual([...expected].sort((a, b) => Number(a.id) - Number(b.id)));

    // Whatever the server printed, the importer reads it back (avro.ts); reals to the same 32-bit float.
    for (const c of info.columns) {
      const value = expected[0]![c.name];
      if (value !== null && value !== undefined) expect(() => converterFor(c.type)(value), c.name).not.toThrow();
    }
    const real = converterFor(info.columns.find((c) => c.name === 'r9')!.type);
    expect(Math.fround(real(expected[0]!.r9!) as number)).toBe(Math.fround(1001.2850341796875));
  });

  it('prints the largest real in a form that reads back, without failing the write', async () => {
    const info = await (async () => {
      const name = freshName('reals');
      await db.raw(`CREATE TABLE ${q(name)} (id INT NOT NULL PRIMARY KEY, r REAL NULL)`);
      const described = await dialect.describeTable(db, { schema, name });
      installed.push(described);
      for (const statement of dialect.installChangelog(described)) await db.raw(statement);
      return described;
    })();
    // Style 1 prints 3.4028235e+038, just above the largest real: TRY_CONVERT keeps a server that
    // refuses to round it from failing the legacy write; the text is then style 3's.
    await db.raw(`INSERT INTO ${q(info.name)} VALUES (1, CAST(3.4028234663852886e38 AS REAL)), (2, CAST(-3.4028234663852886e38 AS REAL))`);
    const changes = await readChanges(info, 2);
    const texts = Object.fromEntries(changes.map((c) => [c.after!.id!, c.after!.r!]));
    expect(['3.4028235e+038', '3.4028234663852886e+038']).toContain(texts['1']);
    expect(['-3.4028235e+038', '-3.4028234663852886e+038']).toContain(texts['2']);
    expect(Math.fround(Number(texts['1']))).toBe(Math.fround(3.4028234663852886e38));
  });
});
