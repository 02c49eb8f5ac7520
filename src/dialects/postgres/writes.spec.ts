import knex from 'knex';
import { describe, expect, it } from 'vitest';
import type { Column, GuardRow, SqlStatement, TableInfo } from '../dialect';
import { postgresWrites as writes } from './writes';

// knex compiles PostgreSQL SQL without a connection: `?` becomes `$n`, and a count that does not
// match the bindings throws.
const compiler = knex({ client: 'pg' });
const native = (s: SqlStatement) => compiler.raw(s.sql, s.bindings as never[]).toSQL().toNative();
const parameterCount = (s: SqlStatement): number => new Set(native(s).sql.match(/\$\d+/g) ?? []).size;

const col = (name: string, sqlType: string, type: Column['type'], nullable = true): Column => ({ name, sqlType, type, nullable });

const users: TableInfo = {
  schema: 'public',
  name: 'users',
  primaryKey: ['id'],
  columns: [
    col('id', 'integer', { kind: 'int' }, false),
    col('name', 'character varying(200)', { kind: 'string', maxLength: 200 }),
    col('price', 'numeric(12,2)', { kind: 'decimal', precision: 12, scale: 2 }),
    col('seen_at', 'timestamp with time zone', { kind: 'timestamptz', precision: 6 }),
    col('born_at', 'timestamp without time zone', { kind: 'timestamp', precision: 6 }),
  ],
};

const lines: TableInfo = {
  name: 'order_lines',
  primaryKey: ['order_no', 'line_no'],
  columns: [
    col('order_no', 'character varying(20)', { kind: 'string', maxLength: 20 }, false),
    col('line_no', 'integer', { kind: 'int' }, false),
    col('qty', 'integer', { kind: 'int' }),
  ],
};

describe('postgresWrites.updateRows', () => {
  const rows = [
    [1, 'Ann', '10.50'],
    [2, null, '3.00'],
  ];
  const s = writes.updateRows(users, ['name', 'price'], rows);

  it('is one UPDATE … FROM unnest of typed arrays (strings without their length) joined on the key', () => {
    expect(s.sql).toMatch(/^UPDATE "public"\."users" AS t SET "name" = v\.c1, "price" = v\.c2\s/);
    expect(s.sql).toContain('FROM unnest(CAST(? AS integer[]), CAST(? AS text[]), CAST(? AS numeric(12,2)[])) AS v(c0, c1, c2)');
    expect(s.sql).toContain('WHERE t."id" = v.c0 AND ');
  });

  it('updates only rows where a value differs, NULL-safely (IS DISTINCT FROM)', () => {
    expect(s.sql).toContain('ROW(t."name", t."price") IS DISTINCT FROM ROW(v.c1, v.c2)');
  });

  it('binds one array per column, the rows in order: a statement of the same size for any number of rows', () => {
    expect(s.bindings).toEqual([[1, 2], ['Ann', null], ['10.50', '3.00']]);
    expect(parameterCount(s)).toBe(3);
    expect(native(s).bindings).toEqual(s.bindings);
    expect(writes.updateRows(users, ['name', 'price'], [...rows, ...rows, ...rows]).sql).toBe(s.sql);
  });
});

describe('postgresWrites.insertRows', () => {
  it('is INSERT … ON CONFLICT (key) DO UPDATE of the other columns, where one differs', () => {
    const s = writes.insertRows(users, ['id', 'name', 'price'], [[7, 'Eve', '1.00']]);
    expect(s.sql).toMatch(/^INSERT INTO "public"\."users" AS t \("id", "name", "price"\)\s+SELECT \* FROM unnest\(CAST\(\? AS integer\[\]\), CAST\(\? AS text\[\]\), CAST\(\? AS numeric\(12,2\)\[\]\)\) AS v/);
    expect(s.sql).toContain('ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name", "price" = EXCLUDED."price"');
    expect(s.sql).toContain('WHERE ROW(t."name", t."price") IS DISTINCT FROM ROW(EXCLUDED."name", EXCLUDED."price")');
    expect(s.bindings).toEqual([[7], ['Eve'], ['1.00']]);
    expect(parameterCount(s)).toBe(3);
  });

  it('names every key column of a composite key, and does nothing when only keys are written', () => {
    const s = writes.insertRows(lines, ['order_no', 'line_no', 'qty'], [
      ['A-1', 1, 5],
      ['A-1', 2, 6],
    ]);
    expect(s.sql).toMatch(/^INSERT INTO "order_lines" AS t/);
    expect(s.sql).toContain('ON CONFLICT ("order_no", "line_no") DO UPDATE SET "qty" = EXCLUDED."qty"');
    expect(s.bindings).toEqual([['A-1', 'A-1'], [1, 2], [5, 6]]);
    expect(parameterCount(s)).toBe(3);
    expect(writes.insertRows(lines, ['order_no', 'line_no'], [['A-1', 1]]).sql).toMatch(/ON CONFLICT \("order_no", "line_no"\) DO NOTHING$/);
  });
});

describe('postgresWrites lockRows and deleteRows', () => {
  const keys = [
    ['A-1', 2],
    ['A-1', 1],
  ];

  it('locks the existing rows FOR UPDATE in key order and returns their keys as text', () => {
    const s = writes.lockRows(lines, keys);
    expect(s.sql).toContain('SELECT t."order_no"::text AS k0, t."line_no"::text AS k1');
    expect(s.sql).toContain('WHERE (t."order_no", t."line_no") IN (SELECT * FROM unnest(CAST(? AS text[]), CAST(? AS integer[])) AS v(c0, c1))');
    expect(s.sql).toMatch(/ORDER BY t\."order_no", t\."line_no" FOR UPDATE$/);
    expect(s.bindings).toEqual([['A-1', 'A-1'], [2, 1]]);
    expect(parameterCount(s)).toBe(2);
  });

  it('deletes by row-value IN over the unnest of the keys', () => {
    const s = writes.deleteRows(lines, keys);
    expect(s.sql).toMatch(/^DELETE FROM "order_lines" WHERE \("order_no", "line_no"\) IN \(SELECT \* FROM unnest\(/);
    expect(s.bindings).toEqual([['A-1', 'A-1'], [2, 1]]);
    expect(parameterCount(s)).toBe(2);
  });
});

describe('postgresWrites identifiers', () => {
  it('quotes every name, doubling "', () => {
    const table: TableInfo = {
      schema: 'we"s',
      name: 'x"y',
      primaryKey: ['a"b'],
      columns: [col('a"b', 'integer', { kind: 'int' }, false), col('c', 'text', { kind: 'string' })],
    };
    const s = writes.updateRows(table, ['c'], [[1, 'v']]);
    expect(s.sql).toMatch(/^UPDATE "we""s"\."x""y" AS t SET "c" = v\.c1/);
    expect(s.sql).toContain('WHERE t."a""b" = v.c0');
    expect(parameterCount(s)).toBe(2);
  });

  // Known defect (reported, not fixed here): quote() leaves a `?` in a name bare, and knex takes it
  // for a parameter (`Expected 2 bindings, saw 3`). Passes, as a failure, until that is fixed.
  it('keeps a ? in a name away from knex', () => {
    const table: TableInfo = { name: 'users', primaryKey: ['id'], columns: [col('id', 'integer', { kind: 'int' }, false), col('we?ird', 'text', { kind: 'string' })] };
    const s = writes.updateRows(table, ['we?ird'], [[1, 'v']]);
    expect(native(s).sql).toContain('"we?ird"');
  });
});

describe('postgresWrites sink tables', () => {
  const guardRows: GuardRow[] = [
    { entity: 'user', entityId: '1', field: 'email', versionMs: 1_700_000_000_000, origin: 'salesforce', eventId: 'e1', written: true },
    { entity: 'user', entityId: '2', field: 'name', versionMs: 1_700_000_000_001, origin: 'legacy', eventId: 'e2', written: false },
  ];

  it('creates the guard and offsets tables if missing', () => {
    const [guard, offsets] = writes.sinkTables('app');
    expect(guard).toMatch(/^CREATE TABLE IF NOT EXISTS "app"\."banyan_guard" \(/);
    expect(guard).toContain('PRIMARY KEY (entity, entity_id, field)');
    expect(offsets).toMatch(/^CREATE TABLE IF NOT EXISTS "app"\."banyan_sink_offsets" \(/);
    expect(offsets).toContain('PRIMARY KEY (sink, topic, kafka_partition)');
    expect(writes.sinkTables(undefined)[0]).toMatch(/^CREATE TABLE IF NOT EXISTS "banyan_guard" \(/);
  });

  it('reads and writes guard rows', () => {
    const read = writes.readGuard(undefined, [
      ['user', '1'],
      ['user', '2'],
    ]);
    expect(read.sql).toContain('JOIN unnest(CAST(? AS text[]), CAST(? AS text[])) AS v(c0, c1) ON g.entity = v.c0 AND g.entity_id = v.c1');
    expect(read.bindings).toEqual([['user', 'user'], ['1', '2']]);
    const write = writes.writeGuard(undefined, guardRows);
    expect(write.sql).toContain('ON CONFLICT (entity, entity_id, field) DO UPDATE SET version_ms = EXCLUDED.version_ms');
    expect(write.bindings).toEqual([['user', 'user'], ['1', '2'], ['email', 'name'], [1_700_000_000_000, 1_700_000_000_001], ['salesforce', 'legacy'], ['e1', 'e2'], [true, false]]);
    expect(parameterCount(write)).toBe(7);
  });

  it('never moves an offset back', () => {
    const s = writes.writeOffsets(undefined, 'legacy', [{ topic: 'domain.user', partition: 0, next: '10' }]);
    expect(s.sql).toContain('next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset)');
    expect(s.bindings).toEqual(['legacy', 'domain.user', 0, '10']);
    expect(writes.readOffsets(undefined, 'legacy').sql).toContain('next_offset::text AS next_offset');
  });
});

describe('postgresWrites results and parameters', () => {
  it('reads node-postgres results', () => {
    expect(writes.changedRows({ rowCount: 3, rows: [] })).toBe(3);
    expect(writes.changedRows({ rowCount: null, rows: [] })).toBe(0);
    const rows = [{ k0: '1' }];
    expect(writes.resultRows({ rows })).toBe(rows);
  });

  it('writes timestamps as ISO text in UTC and bigint as text', () => {
    const column = (name: string) => users.columns.find((c) => c.name === name)!;
    const ms = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
    expect(writes.parameter(column('seen_at'), ms)).toBe('2024-01-02T03:04:05.678Z');
    expect(writes.parameter(column('born_at'), new Date(ms))).toBe('2024-01-02T03:04:05.678Z');
    expect(writes.parameter(column('id'), 2n ** 60n)).toBe('1152921504606846976');
    expect(writes.parameter(column('price'), '12.50')).toBe('12.50');
    expect(writes.parameter(column('name'), undefined)).toBeNull();
  });

  it('takes many rows a statement, whose parameters are one array per column (never near the protocol’s 65,535)', () => {
    for (const width of [1, 3, 7, 40, 1600]) expect(writes.maxRows(width)).toBeGreaterThanOrEqual(10_000);
    const rows = Array.from({ length: 20_000 }, (_, i) => [i, `n${i}`, '1.00']);
    expect(parameterCount(writes.updateRows(users, ['name', 'price'], rows))).toBe(3);
  });
});

describe('postgresWrites.isRowRefusal', () => {
  // not_null_violation, foreign_key, unique, check, string too long, numeric out of range, bad text representation, bad datetime
  it.each(['23502', '23503', '23505', '23514', '22001', '22003', '22P02', '22007', '22008'])('is true for SQLSTATE %s', (code) => {
    expect(writes.isRowRefusal(Object.assign(new Error('refused'), { code }))).toBe(true);
  });

  it.each(['40P01', '40001', '55P03', '57P01', '08006', 'ECONNRESET'])('is false for %s (deadlock, serialization, lock, shutdown, connection)', (code) => {
    expect(writes.isRowRefusal(Object.assign(new Error('x'), { code }))).toBe(false);
  });
});
