import { describe, expect, it } from 'vitest';
import { fixture, legacyInput, ORDER_LINES, ORDERS, parseMappingConfig } from '../../../test/fixtures/mappings/inputs';
import { tableSchemas } from '../../import/changelog/avro';
import { buildMapping, legacyColumnsFromSchema, validateTransforms, type MappingResult } from './index';

/**
 * A second legacy example declared in config alone (test/fixtures/mappings/orders.yaml, also in
 * docs/mappings.md): two tables with composite keys, their own events, conversions and a filter.
 */
const { config, catalog } = parseMappingConfig(fixture('orders.yaml'), 'orders.yaml');
const orders = buildMapping(config.transforms[0]!, catalog);
const lines = buildMapping(config.transforms[1]!, catalog);

const ORDER = { region: 'eu', order_no: 1001, customer_id: 9_007_199_254_740_993n, status: ' P ', total_cents: 12345n, placed_at: '2024-05-06T07:08:09.123000Z' };
const LINE = { region: 'eu', order_no: 1001, line_no: 2, sku: ' ab-12 ', quantity: 3, unit_price: '1000.00' };

const brief = (r: MappingResult) => ({
  events: r.events.map((e) => ({ type: e.type, entityId: e.entityId, entityKey: e.entityKey, changedFields: e.changedFields, data: e.data })),
  dropped: r.dropped,
  deadLetters: r.deadLetters.map((d) => d.code),
});

describe('orders and order_lines, declared in config alone', () => {
  it('passes validation against the tables’ real topic schemas', () => {
    expect(() =>
      validateTransforms(config, catalog, {
        'legacy.shop.orders': legacyColumnsFromSchema(tableSchemas(ORDERS, 'shop').value),
        'legacy.shop.order_lines': legacyColumnsFromSchema(tableSchemas(ORDER_LINES, 'shop').value),
      }),
    ).not.toThrow();
  });

  it('maps an order: composite key, enum map after trim, cents to an exact decimal, a BigInt beyond 2^53, a timestamp', () => {
    expect(brief(orders(legacyInput(ORDERS, { op: 'insert', after: ORDER }, 'shop')))).toEqual({
      events: [
        {
          type: 'OrderChanged',
          entityId: 'eu/1001',
          entityKey: { region: 'eu', orderNo: '1001' },
          changedFields: ['customerId', 'status', 'total', 'placedAt'],
          data: { customerId: 9_007_199_254_740_993n, status: 'paid', total: '123.45', placedAt: Date.parse('2024-05-06T07:08:09.123Z') },
        },
      ],
      dropped: {},
      deadLetters: [],
    });
  });

  const lineCases: Array<{ name: string; before: typeof LINE; after: typeof LINE; changed?: string[]; dropped?: Record<string, number> }> = [
    { name: 'a price change below 0.01 % is dropped (filtered)', before: LINE, after: { ...LINE, unit_price: '1000.09' }, dropped: { filtered: 1 } },
    { name: 'a price change of 0.01 % exactly is a change', before: LINE, after: { ...LINE, unit_price: '1000.10' }, changed: ['unitPrice'] },
    { name: 'a price change above 0.01 % is a change', before: LINE, after: { ...LINE, unit_price: '1000.20' }, changed: ['unitPrice'] },
    { name: 'a small price change beside a real one: only the real one counts as changed', before: LINE, after: { ...LINE, unit_price: '1000.01', quantity: 4 }, changed: ['quantity'] },
    { name: 'a price set from zero is always a change', before: { ...LINE, unit_price: '0.00' }, after: { ...LINE, unit_price: '0.01' }, changed: ['unitPrice'] },
  ];
  it.each(lineCases)('$name', ({ before, after, changed, dropped }) => {
    const result = lines(legacyInput(ORDER_LINES, { op: 'update', before, after }, 'shop'));
    expect(result.events.map((e) => e.changedFields)).toEqual(changed ? [changed] : []);
    expect(result.dropped).toEqual(dropped ?? {});
    if (changed) {
      expect(result.events[0]!.data).toEqual({ sku: 'AB-12', quantity: after.quantity, unitPrice: after.unit_price });
      expect(result.events[0]!.entityId).toBe('eu/1001/2');
    }
  });

  it('an enum map hit and a miss: the miss is dead-lettered with the value and the map, never passed on', () => {
    expect(orders(legacyInput(ORDERS, { op: 'update', before: ORDER, after: { ...ORDER, status: 'S' } }, 'shop')).events[0]!.data.status).toBe('shipped');
    const miss = orders(legacyInput(ORDERS, { op: 'update', before: ORDER, after: { ...ORDER, status: 'Z' } }, 'shop'));
    expect(miss.events).toEqual([]);
    expect(miss.deadLetters.map((d) => [d.code, d.reason])).toEqual([
      ['UNMAPPED_VALUE', expect.stringContaining('status → OrderChanged.status: "Z" is not in the enum map ("N", "P", "S", "X")')],
    ]);
  });

  it('a unit change stays exact at any size, and a value too large for the event field is dead-lettered, not rounded', () => {
    const big = orders(legacyInput(ORDERS, { op: 'update', before: ORDER, after: { ...ORDER, total_cents: 99_999_999_999_999n } }, 'shop'));
    expect(big.events[0]!.data.total).toBe('999999999999.99');
    const tooBig = orders(legacyInput(ORDERS, { op: 'update', before: ORDER, after: { ...ORDER, total_cents: 100_000_000_000_000n } }, 'shop'));
    expect(tooBig.deadLetters.map((d) => d.code)).toEqual(['OUT_OF_RANGE']);
    const negative = orders(legacyInput(ORDERS, { op: 'update', before: ORDER, after: { ...ORDER, total_cents: -5n } }, 'shop'));
    expect(negative.events[0]!.data.total).toBe('-0.05');
  });

  it('a timestamp with digits below the millisecond is dead-lettered rather than cut', () => {
    const result = orders(legacyInput(ORDERS, { op: 'update', before: ORDER, after: { ...ORDER, placed_at: '2024-05-06T07:08:09.123456Z' } }, 'shop'));
    expect(result.deadLetters.map((d) => d.code)).toEqual(['LOSSY_VALUE']);
  });

  it('deletes emit the entity’s deleted event, by composite key', () => {
    expect(brief(lines(legacyInput(ORDER_LINES, { op: 'delete', before: { ...LINE, region: 'e/u' } }, 'shop')))).toEqual({
      events: [{ type: 'OrderLineDeleted', entityId: 'e%2Fu/1001/2', entityKey: { region: 'e/u', orderNo: '1001', lineNo: '2' }, changedFields: [], data: {} }],
      dropped: {},
      deadLetters: [],
    });
  });

  it('a new table is one block of config: a third table mapped by adding one transform', () => {
    const text = `${fixture('orders.yaml')}
  - name: legacy-order-notes
    from: legacy.shop.order_notes
    format: legacy-changelog
    events:
      - event: OrderChanged
        key: { region: region, orderNo: order_no }
        fields: { status: { column: note_status, convert: [lower] } }
        onDelete: none
`;
    const parsed = parseMappingConfig(text);
    validateTransforms(parsed.config, parsed.catalog);
    const notes = buildMapping(parsed.config.transforms[2]!, parsed.catalog);
    const input = { ...legacyInput(ORDERS, { op: 'update', before: ORDER, after: ORDER }, 'shop'), topic: 'legacy.shop.order_notes' };
    input.value = { ...input.value!, before: { region: 'eu', order_no: 1001, note_status: 'OPEN' }, after: { region: 'eu', order_no: 1001, note_status: 'CLOSED' } };
    expect(notes(input).events.map((e) => [e.type, e.entityId, e.changedFields, e.data.status])).toEqual([['OrderChanged', 'eu/1001', ['status'], 'closed']]);
    // onDelete: none: a delete makes nothing, counted as unchanged.
    const deleted = { ...input, value: { ...input.value, op: 'delete', after: null } };
    expect(notes(deleted)).toEqual({ events: [], deadLetters: [], dropped: { unchanged: 1 } });
  });
});
