import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { avroType } from './avro';

describe('Avro longs as BigInt', () => {
  const values = [0n, 1n, -1n, 63n, -64n, 64n, 2n ** 31n, -(2n ** 31n) - 1n, 2n ** 52n, -(2n ** 52n), 2n ** 52n + 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 47n, -(2n ** 47n), 2n ** 48n - 1n, -(2n ** 48n), 2n ** 48n, -(2n ** 48n) - 1n, 2n ** 49n];

  it('writes the zigzag varint Avro specifies, inside and beyond ±2^52, and reads every digit back', () => {
    const ours = avroType({ type: 'record', name: 'R', fields: [{ name: 'n', type: 'long' }, { name: 't', type: { type: 'long', logicalType: 'timestamp-micros' } }] });
    // Reference: avsc's own long type on numbers, where numbers are exact.
    const reference = avro.Type.forSchema('long');
    for (const n of values) {
      const bytes = ours.toBuffer({ n, t: n });
      expect(ours.fromBuffer(bytes)).toEqual({ n, t: n });
      if (n <= 2n ** 52n && n >= -(2n ** 52n)) {
        const single = reference.toBuffer(Number(n));
        expect(bytes.subarray(0, single.length)).toEqual(single);
      }
    }
    // 2^63-1 is the ten-byte varint ff…ff 01 (zigzag 2^64-2).
    expect(ours.toBuffer({ n: 2n ** 63n - 1n, t: 0n }).subarray(0, 10)).toEqual(Buffer.from('feffffffffffffffff01', 'hex'));
  });

  it('refuses a number where a BigInt long belongs, naming the value', () => {
    const ours = avroType({ type: 'record', name: 'R', fields: [{ name: 'n', type: 'long' }] });
    expect(() => ours.toBuffer({ n: 5 })).toThrow(/invalid "long": 5/);
  });
});
