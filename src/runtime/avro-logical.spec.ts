import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { avroType } from './avro';
import { readerType } from './avro-logical';

const field = (type: unknown) => readerType({ type: 'record', name: 'R', fields: [{ name: 'v', type: ['null', type] }] });

describe('readerType: logical types as exact text', () => {
  // [Avro type, the text read, the raw value the plain (BigInt long) type writes]
  const cases: Array<[string, unknown, string, unknown]> = [
    ['decimal(12,2)', { type: 'bytes', logicalType: 'decimal', precision: 12, scale: 2 }, '1234.50', Buffer.from([0x01, 0xe2, 0x3a])],
    ['decimal(12,2) negative', { type: 'bytes', logicalType: 'decimal', precision: 12, scale: 2 }, '-0.05', Buffer.from([0xfb])],
    ['decimal(38,0) beyond 2^64', { type: 'bytes', logicalType: 'decimal', precision: 38, scale: 0 }, '123456789012345678901234567890', undefined],
    ['decimal fixed', { type: 'fixed', name: 'F', size: 4, logicalType: 'decimal', precision: 9, scale: 3 }, '-1.000', Buffer.from([0xff, 0xff, 0xfc, 0x18])],
    ['date', { type: 'int', logicalType: 'date' }, '2024-02-29', 19782],
    ['date before the epoch', { type: 'int', logicalType: 'date' }, '1969-12-31', -1],
    ['date, year 1', { type: 'int', logicalType: 'date' }, '0001-01-01', -719162],
    ['date, 44 BC', { type: 'int', logicalType: 'date' }, '-000043-03-15', undefined],
    ['timestamp-millis', { type: 'long', logicalType: 'timestamp-millis' }, '2024-05-06T07:08:09.123Z', 1714979289123n],
    ['timestamp-millis before the epoch', { type: 'long', logicalType: 'timestamp-millis' }, '1969-12-31T23:59:59.999Z', -1n],
    ['timestamp-micros', { type: 'long', logicalType: 'timestamp-micros' }, '2024-05-06T07:08:09.123456Z', 1714979289123456n],
    ['timestamp-nanos beyond 2^53', { type: 'long', logicalType: 'timestamp-nanos' }, '2024-05-06T07:08:09.123456789Z', 1714979289123456789n],
    ['local-timestamp-micros', { type: 'long', logicalType: 'local-timestamp-micros' }, '2024-05-06T07:08:09.000001', 1714979289000001n],
    ['local-timestamp-micros, year 10000', { type: 'long', logicalType: 'local-timestamp-micros' }, '+010000-01-01T00:00:00.000000', undefined],
    ['time-millis', { type: 'int', logicalType: 'time-millis' }, '23:59:59.999', 86399999],
    ['time-micros', { type: 'long', logicalType: 'time-micros' }, '12:34:56.000789', 45296000789n],
    ['time-nanos', { type: 'long', logicalType: 'time-nanos' }, '00:00:00.000000001', 1n],
    ['uuid', { type: 'string', logicalType: 'uuid' }, '3f1c2b9e-0a4d-4c1e-9d2b-7e6f5a4b3c2d', '3f1c2b9e-0a4d-4c1e-9d2b-7e6f5a4b3c2d'],
  ];

  it.each(cases)('%s reads as %s… and writes back the same bytes', (_label, type, text, raw) => {
    const ours = field(type);
    const bytes = ours.toBuffer({ v: text });
    expect(ours.fromBuffer(bytes)).toEqual({ v: text });
    // The bytes are the ones the plain type writes for the raw value, so a producer that never
    // heard of this reader is read right.
    if (raw !== undefined) {
      const plain = avroType({ type: 'record', name: 'R', fields: [{ name: 'v', type: ['null', { ...(type as object), logicalType: undefined }] }] });
      expect(plain.toBuffer({ v: raw })).toEqual(bytes);
    }
  });

  it('agrees with JavaScript dates on ISO text for millisecond timestamps, over the whole range', () => {
    const ours = field({ type: 'long', logicalType: 'timestamp-millis' });
    for (const ms of [0, 1, -1, 951_782_400_000, -62_135_596_800_000, 253_402_300_799_999, -8_640_000_000_000_000, 8_640_000_000_000_000]) {
      const read = ours.fromBuffer(ours.toBuffer({ v: new Date(ms).toISOString() })) as { v: string };
      expect(read.v).toBe(new Date(ms).toISOString());
      expect(Date.parse(read.v)).toBe(ms);
    }
  });

  it('reads timestamps of every unit and zone the same inside and outside the range of a JavaScript Date, and back to the same units', () => {
    // Inside ±8.64e15 ms the text comes from Date, outside from BigInt arithmetic: both must be the
    // canonical ISO form (all fraction digits) of exactly the units written.
    const units = [0n, 1n, -1n, 999n, -999n, 1000n, -1001n, 1714979289123456789n, -1714979289123456789n, 2n ** 63n - 1n, -(2n ** 63n)];
    for (let i = 0; i < 200; i++) units.push(BigInt(Math.floor((Math.random() - 0.5) * 2 ** 53)) * BigInt(1 + Math.floor(Math.random() * 1024)));
    for (const [unit, digits] of [['millis', 3], ['micros', 6], ['nanos', 9]] as const) {
      for (const local of [false, true]) {
        const logicalType = `${local ? 'local-' : ''}timestamp-${unit}`;
        const ours = field({ type: 'long', logicalType });
        const plain = avroType({ type: 'record', name: 'R', fields: [{ name: 'v', type: ['null', 'long'] }] });
        const shape = new RegExp(`^([+-]\\d{6,}|\\d{4})-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{${digits}}${local ? '' : 'Z'}$`);
        for (const n of units) {
          const bytes = plain.toBuffer({ v: n });
          const { v } = ours.fromBuffer(bytes) as { v: string };
          expect(v, `${logicalType} ${n}`).toMatch(shape);
          // The writer takes years of up to six digits (beyond ±1,000,000 years the text has more).
          if (/^([+-]\d{6}|\d{4})-/.test(v)) expect(ours.toBuffer({ v }), `${logicalType} ${n} read as ${v}`).toEqual(bytes);
        }
      }
    }
  });

  it('reads longs as BigInt, plain and with a logical type it does not know, and bytes as a Buffer', () => {
    const type = readerType({
      type: 'record',
      name: 'R',
      fields: [
        { name: 'n', type: 'long' },
        { name: 'odd', type: { type: 'long', logicalType: 'something-else' } },
        { name: 'b', type: 'bytes' },
      ],
    });
    const value = { n: 2n ** 63n - 1n, odd: -(2n ** 60n), b: Buffer.from('00ff', 'hex') };
    expect(type.fromBuffer(type.toBuffer(value))).toEqual(value);
  });

  it('refuses to write text that is no value of the type, rather than rounding it', () => {
    expect(field({ type: 'bytes', logicalType: 'decimal', precision: 5, scale: 2 }).isValid({ v: '1.005' })).toBe(false);
    expect(field({ type: 'bytes', logicalType: 'decimal', precision: 5, scale: 2 }).isValid({ v: '1234.5' })).toBe(false);
    expect(field({ type: 'int', logicalType: 'date' }).isValid({ v: '2023-02-29' })).toBe(false);
    expect(field({ type: 'long', logicalType: 'timestamp-millis' }).isValid({ v: '2024-05-06T07:08:09.1234Z' })).toBe(false);
    expect(field({ type: 'long', logicalType: 'timestamp-millis' }).isValid({ v: '2024-05-06T07:08:09.123' })).toBe(false);
    expect(field({ type: 'long', logicalType: 'local-timestamp-millis' }).isValid({ v: '2024-05-06T07:08:09.123Z' })).toBe(false);
    // Nanoseconds since the epoch fit a long until 2262.
    expect(field({ type: 'long', logicalType: 'timestamp-nanos' }).isValid({ v: '2263-01-01T00:00:00.000000000Z' })).toBe(false);
  });

  it('reads data written with the plain schema through a resolver (a writer that did not know the logical type)', () => {
    const plain = avro.Type.forSchema({ type: 'record', name: 'R', fields: [{ name: 'v', type: 'int' }] });
    const ours = readerType({ type: 'record', name: 'R', fields: [{ name: 'v', type: { type: 'int', logicalType: 'date' } }] });
    const resolver = ours.createResolver(plain);
    expect(ours.fromBuffer(plain.toBuffer({ v: 0 }), resolver)).toEqual({ v: '1970-01-01' });
  });
});
