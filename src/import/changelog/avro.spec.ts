import { describe, expect, it } from 'vitest';
import type { TableInfo } from '../../dialects/dialect';
import { AvroOutput } from '../../runtime/avro-output';
import { avroType } from '../../runtime/avro';
import { bytesToDecimal, changeEncoder, converterFor, decimalToBytes, tableSchemas } from './avro';

/** Days since the epoch through Date's setUTCFullYear, which takes years below 100 as written. */
function utcDays(year: number, month: number, day: number): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return date.getTime() / 86_400_000;
}

describe('text image → Avro values', () => {
  it('turns timestamps into units since the epoch at their precision, before 1970 and in years 1–99 too', () => {
    const millis = converterFor({ kind: 'timestamp', precision: 3 });
    const micros = converterFor({ kind: 'timestamptz', precision: 6 });
    const nanos = converterFor({ kind: 'timestamp', precision: 7 });
    expect(millis('2024-02-29T13:14:15.123')).toBe(BigInt(Date.UTC(2024, 1, 29, 13, 14, 15, 123)));
    expect(millis('1969-12-31 23:59:59.5')).toBe(-500n);
    expect(micros('2024-02-29T13:14:15.000001Z')).toBe(BigInt(Date.UTC(2024, 1, 29, 13, 14, 15)) * 1000n + 1n);
    expect(micros('1600-01-01T00:00:00.000001')).toBe(-11_676_096_000n * 1_000_000n + 1n);
    expect(nanos('2262-04-11T23:47:16.8547758')).toBe(9_223_372_036_854_775_800n);
    // SQL Server's datetime2 minimum, 0001-01-01: Date.UTC would have read year 1 as 1901.
    expect(millis('0001-01-01 00:00:00')).toBe(-62_135_596_800_000n);
    expect(converterFor({ kind: 'date' })('0050-03-01')).toBe(utcDays(50, 3, 1));
    expect(converterFor({ kind: 'date' })('1815-06-18')).toBe(utcDays(1815, 6, 18));
    expect(converterFor({ kind: 'date' })('2000-02-29')).toBe(utcDays(2000, 2, 29));
    expect(() => millis('2024-01-01 00:00:00.1234')).toThrow('fraction .1234 has more than 3 digits');
    expect(millis('2024-01-01 00:00:00.1230000')).toBe(BigInt(Date.UTC(2024, 0, 1)) + 123n);
    expect(() => millis('yesterday')).toThrow('"yesterday" is not a timestamp');
  });

  it('refuses dates that do not exist instead of rolling them over (MySQL zero dates, ALLOW_INVALID_DATES, PostgreSQL infinity)', () => {
    const date = converterFor({ kind: 'date' });
    const micros = converterFor({ kind: 'timestamp', precision: 6 });
    expect(() => date('2024-02-30')).toThrow('"2024-02-30" is not a calendar date (month 2 of 2024 has 29 days)');
    expect(() => date('2023-02-29')).toThrow('month 2 of 2023 has 28 days');
    expect(() => date('2024-04-31')).toThrow('has 30 days');
    expect(() => date('0000-00-00')).toThrow('"0000-00-00" is not a calendar date (a zero date');
    expect(() => date('2024-13-01')).toThrow('is not a calendar date');
    expect(() => micros('0000-00-00 00:00:00')).toThrow('"0000-00-00 00:00:00" is not a calendar date');
    expect(() => micros('2024-02-30 10:00:00.000001')).toThrow('month 2 of 2024 has 29 days');
    expect(() => micros('2024-01-01 24:00:00')).toThrow('is not a valid time of day');
    expect(() => micros('infinity')).toThrow('"infinity" is not a timestamp');
    expect(() => date('-infinity')).toThrow('"-infinity" is not a date');
    expect(date('1900-02-28')).toBe(utcDays(1900, 2, 28));
    expect(() => date('1900-02-29')).toThrow('has 28 days');
    expect(date('0000-02-29')).toBe(utcDays(0, 2, 29));
  });

  it('writes decimals as two’s complement bytes, small and beyond 15 digits alike', () => {
    for (const [text, scale, back] of [
      ['0', 2, '0.00'],
      ['-0.01', 2, '-0.01'],
      ['127', 0, '127'],
      ['128', 0, '128'],
      ['-128', 0, '-128'],
      ['-129', 0, '-129'],
      ['1234567890.1', 2, '1234567890.10'],
      ['-99999999999999.99', 2, '-99999999999999.99'],
      ['123456789012345678901234.5678', 4, '123456789012345678901234.5678'],
      ['-123456789012345678901234.5678', 4, '-123456789012345678901234.5678'],
    ] as const) {
      expect(bytesToDecimal(decimalToBytes(text, scale), scale)).toBe(back);
    }
    expect(decimalToBytes('128', 0)).toEqual(Buffer.from([0x00, 0x80]));
    expect(decimalToBytes('-129', 0)).toEqual(Buffer.from([0xff, 0x7f]));
    expect(() => decimalToBytes('1.234', 2)).toThrow('more than 2 decimal places');
  });

  const table: TableInfo = {
    schema: 'public',
    name: 'Orders',
    primaryKey: ['order id', 'line'],
    columns: [
      { name: 'order id', sqlType: 'bigint', nullable: false, type: { kind: 'long' } },
      { name: 'line', sqlType: 'integer', nullable: false, type: { kind: 'int' } },
      { name: 'amount', sqlType: 'numeric(10,2)', nullable: true, type: { kind: 'decimal', precision: 10, scale: 2 } },
      { name: 'at', sqlType: 'timestamp(3)', nullable: true, type: { kind: 'timestamp', precision: 3 } },
      { name: 'at_ns', sqlType: 'datetime2(7)', nullable: true, type: { kind: 'timestamp', precision: 7 } },
      { name: 'ok', sqlType: 'boolean', nullable: true, type: { kind: 'boolean' } },
      { name: 'ratio', sqlType: 'real', nullable: true, type: { kind: 'float' } },
      { name: 'score', sqlType: 'double precision', nullable: true, type: { kind: 'double' } },
      { name: 'id', sqlType: 'uuid', nullable: true, type: { kind: 'uuid' } },
      { name: 'blob', sqlType: 'bytea', nullable: true, type: { kind: 'bytes' } },
      { name: 'born', sqlType: 'date', nullable: true, type: { kind: 'date' } },
      { name: 'alarm', sqlType: 'time(6)', nullable: true, type: { kind: 'time', precision: 6 } },
      { name: 'name', sqlType: 'text', nullable: true, type: { kind: 'string', unicode: true } },
      { name: 'doc', sqlType: 'jsonb', nullable: true, type: { kind: 'json' } },
    ],
  };
  const schemas = tableSchemas(table, 'legacy');
  const encoder = changeEncoder(table, 'legacy', 'public.Orders');

  const before = {
    'order id': '9007199254740993', line: '2', amount: '-12.30', at: '1969-12-31 23:59:59.999', at_ns: '2024-01-01T00:00:00.0000001',
    ok: 't', ratio: '0.5', score: '-Infinity', id: 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', blob: '\\xdeadbeef', born: '0001-01-01',
    alarm: '23:59:59.999999', name: 'Zoë 🌳 ' + 'x'.repeat(100), doc: '{"a": [1, 2]}',
  };
  const after = { ...before, 'order id': '42', amount: null, at: null, name: 'short', ok: 'f' };

  it('writes a change straight from text images in the bytes of the registered schema, values as the converters give them', () => {
    const out = new AvroOutput(64); // small, so the buffer grows while writing
    const value = encoder.value(out, 'update', { before, after, position: '00000000000000000007', changedAt: 1_700_000_000_123, origin: 'banyan' }, 'here');
    const key = encoder.key(out, after, 'here');
    // avsc decodes the whole buffer or throws: every byte is where the schema says.
    const decoded = avroType(schemas.value).fromBuffer(Buffer.from(value)) as Record<string, Record<string, unknown>>;
    const expected = (image: Record<string, string | null>) =>
      Object.fromEntries(table.columns.map((c) => [c.name.replace(' ', '_'), image[c.name] === null ? null : converterFor(c.type)(image[c.name]!)]));
    expect(decoded.op).toBe('update');
    expect(decoded.before).toEqual(expected(before));
    expect(decoded.after).toEqual(expected(after));
    expect(decoded.source).toEqual({ database: 'legacy', table: 'public.Orders', position: '00000000000000000007', changedAt: 1_700_000_000_123n, origin: 'banyan' });
    expect(avroType(schemas.key).fromBuffer(Buffer.from(key))).toEqual({ order_id: 42n, line: 2 });
    // The same bytes avsc writes for those values.
    expect(Buffer.from(value)).toEqual(avroType(schemas.value).toBuffer(decoded));
  });

  it('writes an insert (no before) and a delete (no after), and an origin of null', () => {
    const out = new AvroOutput();
    const insert = encoder.value(out, 'insert', { before: null, after, position: '1', changedAt: 0, origin: null }, 'here');
    const remove = encoder.value(out, 'delete', { before, after: null, position: '2', changedAt: 0, origin: null }, 'here');
    expect(avroType(schemas.value).fromBuffer(Buffer.from(insert))).toMatchObject({ op: 'insert', before: null, source: { origin: null } });
    expect(avroType(schemas.value).fromBuffer(Buffer.from(remove))).toMatchObject({ op: 'delete', after: null });
  });

  it('refuses a null key field, and names the column, the place and the value that cannot be converted; nothing half-written stays', () => {
    const out = new AvroOutput();
    expect(() => encoder.key(out, { ...after, 'order id': null }, 'Orders at 7')).toThrow('primary-key field "order_id" of Orders at 7 is null');
    const mark = out.mark();
    expect(() => encoder.value(out, 'insert', { before: null, after: { ...after, born: 'soon' }, position: '7', changedAt: 0, origin: null }, 'Orders at 00000000000000000007')).toThrow(
      'column "born" of Orders at 00000000000000000007: "soon" is not a date (YYYY-MM-DD)',
    );
    expect(out.mark()).toBe(mark);
    // A bad non-key value does not matter to the key.
    expect(avroType(schemas.key).fromBuffer(Buffer.from(encoder.key(out, { ...after, amount: 'oops' }, 'x')))).toEqual({ order_id: 42n, line: 2 });
  });

  it('with invalidDates: null writes a non-calendar date of a nullable column as null and names it; NOT NULL and malformed values still fail', () => {
    const strictTable: TableInfo = {
      ...table,
      columns: [...table.columns, { name: 'due', sqlType: 'date', nullable: false, type: { kind: 'date' } }],
    };
    const lax = changeEncoder(strictTable, 'legacy', 'public.Orders', 'null');
    const type = avroType(tableSchemas(strictTable, 'legacy').value);
    const out = new AvroOutput();
    const change = (image: Record<string, string | null>) => ({ before: null, after: { ...after, due: '2024-01-01', ...image }, position: '7', changedAt: 0, origin: null });
    const written = lax.value(out, 'insert', change({ born: '0000-00-00', at: '2024-02-30 10:00:00', at_ns: 'infinity' }), 'here');
    expect(lax.nulled()).toEqual(['at', 'at_ns', 'born']); // in column order
    expect(type.fromBuffer(Buffer.from(written))).toMatchObject({ after: { born: null, at: null, at_ns: null, due: 19_723 } });
    lax.value(out, 'insert', change({ born: '2024-02-29' }), 'here');
    expect(lax.nulled()).toEqual([]);
    expect(() => lax.value(out, 'insert', change({ due: '0000-00-00' }), 'here')).toThrow('column "due" of here: "0000-00-00" is not a calendar date');
    expect(() => lax.value(out, 'insert', change({ born: 'soon' }), 'here')).toThrow('"soon" is not a date');
    // The default stays the safe one.
    expect(() => encoder.value(out, 'insert', change({ born: '0000-00-00' }), 'here')).toThrow('column "born" of here: "0000-00-00" is not a calendar date');
  });
});
