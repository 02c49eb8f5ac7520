import { describe, expect, it } from 'vitest';
import type { TableInfo } from '../../dialects/dialect';
import { bytesToDecimal, converterFor, decimalToBytes, keyConverter, rowConverter } from './avro';

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
    ],
  };

  it('converts a key from the key columns only, and refuses a null key field', () => {
    const toKey = keyConverter(table);
    // A bad non-key value does not matter to the key.
    expect(toKey({ 'order id': '9007199254740993', line: '2', amount: 'oops', at: null }, 'Orders at 7')).toEqual({
      order_id: 9_007_199_254_740_993n,
      line: 2,
    });
    expect(() => toKey({ 'order id': null, line: '1' }, 'Orders at 7')).toThrow('primary-key field "order_id" of Orders at 7 is null');
  });

  it('names the column, the place and the value that cannot be converted', () => {
    const toRow = rowConverter(table);
    expect(() => toRow({ 'order id': '1', line: '1', amount: 'oops', at: null }, 'Orders at 00000000000000000007')).toThrow(
      'column "amount" of Orders at 00000000000000000007: "oops" is not a decimal number',
    );
    expect(toRow({ 'order id': '1', line: '1', amount: null, at: '2024-01-01 00:00:00' }, 'x')).toEqual({
      order_id: 1n,
      line: 1,
      amount: null,
      at: BigInt(Date.UTC(2024, 0, 1)),
    });
  });
});
