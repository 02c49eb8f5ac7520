import { describe, expect, it } from 'vitest';
import { BadRecordError, ConfigError } from '../core';
import { BUILTIN_EVENTS, builtinCatalog } from './catalog';
import { fromAvroValue } from './codec';
import { buildCatalog, eventsSectionSchema } from './config';
import type { DomainEvent } from './event';
import { entityIdOf, entityKeyOf } from './keys';
import { correlationId, eventId, eventRecords } from './records';
import type { AddressChangedData, UserChangedData } from './types';
import { dateToDays, daysToDate } from './values';

const causation = { topic: 'legacy.pg.users', partition: 2, offset: '41' };

function userChanged(over: Partial<DomainEvent> = {}): DomainEvent {
  return {
    eventId: eventId(causation, 'UserChanged', 0),
    type: 'UserChanged',
    entity: 'user',
    entityId: '7',
    entityKey: { id: '7' },
    sourceCommitTime: Date.UTC(2024, 4, 1, 12),
    origin: 'legacy',
    causation,
    correlationId: correlationId(causation),
    changedFields: ['email'],
    knownFields: ['firstName', 'email'],
    schemaVersion: 1,
    data: { firstName: 'Ada', email: 'ada@example.org' },
    ...over,
  };
}

/** A catalog with an order entity: composite key, decimals, dates, timestamps and longs. */
const orders = buildCatalog(
  eventsSectionSchema.parse([
    {
      name: 'OrderLineChanged',
      entity: 'order_line',
      key: ['orderId', 'lineNo'],
      fields: { price: 'decimal(6,2)', shipOn: 'date', at: 'timestamp', units: 'long', qty: 'int', ok: 'boolean', rate: { type: 'double', doc: 'a rate' } },
    },
    { name: 'OrderLineDeleted', entity: 'order_line', kind: 'deleted', key: ['orderId', 'lineNo'] },
  ]),
);

function orderLine(data: Record<string, unknown>): DomainEvent {
  return {
    ...userChanged(),
    type: 'OrderLineChanged',
    entity: 'order_line',
    entityId: 'A/7%2F1',
    entityKey: { orderId: 'A', lineNo: '7/1' },
    changedFields: Object.keys(data),
    knownFields: Object.keys(data),
    data,
  };
}

/** Encodes through eventRecords and reads the body back with the topic's own type. */
function roundTrip(event: DomainEvent, catalog = orders): DomainEvent {
  const [record] = eventRecords(event, catalog);
  return fromAvroValue(catalog.types(record!.topic).value.fromBuffer(Buffer.from(record!.encoded!.value!)) as Record<string, unknown>);
}

describe('values', () => {
  it('maps dates both ways exactly, years before 1970 and below 100 too, and refuses non-dates', () => {
    for (const date of ['1970-01-01', '2024-02-29', '1815-06-18', '0050-03-01', '9999-12-31']) expect(daysToDate(dateToDays(date))).toBe(date);
    expect(dateToDays('1970-01-02')).toBe(1);
    expect(dateToDays('1969-12-31')).toBe(-1);
    // The runtime's reader writes years outside 0000–9999 as ISO 8601's expanded, signed years.
    expect(dateToDays('-000043-03-15')).toBe(dateToDays('-0043-03-15'));
    expect(daysToDate(dateToDays('+010000-01-01'))).toBe('10000-01-01');
    expect(() => dateToDays('2023-02-29')).toThrow('"2023-02-29" is not a calendar date');
    expect(() => dateToDays('2023-2-1')).toThrow('is not a date (YYYY-MM-DD)');
  });
});

describe('keys', () => {
  it('makes a simple key’s id its value and a composite key’s id reversibly', () => {
    expect(entityIdOf(['id'], { id: 'a/b%' })).toBe('a/b%');
    expect(entityKeyOf(['id'], 'a/b%')).toEqual({ id: 'a/b%' });
    const key = { orderId: '7%/x', lineNo: '2' };
    const id = entityIdOf(['orderId', 'lineNo'], key);
    expect(id).toBe('7%25%2Fx/2');
    expect(entityKeyOf(['orderId', 'lineNo'], id)).toEqual(key);
    expect(() => entityKeyOf(['orderId', 'lineNo'], '7')).toThrow('has 1 part(s), the key (orderId, lineNo) has 2');
  });
});

describe('eventId', () => {
  it('is UUID-shaped and the same for the same input, different for another type, index or offset', () => {
    const id = eventId(causation, 'UserChanged', 0);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(eventId({ ...causation }, 'UserChanged', 0)).toBe(id);
    expect(new Set([id, eventId(causation, 'AddressChanged', 0), eventId(causation, 'UserChanged', 1), eventId({ ...causation, offset: '42' }, 'UserChanged', 0)]).size).toBe(4);
  });
});

describe('eventRecords', () => {
  it('makes one record of a changed event: key, headers, timestamp, the topic’s schema objects, and bodies that decode to the event', () => {
    const event = userChanged();
    const records = eventRecords(event, builtinCatalog());
    expect(records).toHaveLength(1);
    const [record] = records;
    expect(record!.topic).toBe('domain.user');
    expect(record!.key).toEqual({ id: '7' });
    expect(record!.headers).toEqual({
      'banyan.origin': 'legacy',
      'banyan.change.time': '2024-05-01T12:00:00.000Z',
      'banyan.event.type': 'UserChanged',
      'banyan.entity': 'user',
    });
    expect(record!.timestamp).toBe(event.sourceCommitTime);
    expect(record!.group).toBeUndefined();
    // The same schema objects for every record of a topic: the runtime caches encoders by them.
    const other = eventRecords(userChanged({ entityId: '8', entityKey: { id: '8' } }), builtinCatalog())[0]!;
    expect(other.schema.key).toBe(record!.schema.key);
    expect(other.schema.value).toBe(record!.schema.value);
    const types = builtinCatalog().types('domain.user');
    expect(types.key.fromBuffer(Buffer.from(record!.encoded!.key))).toEqual({ id: '7' });
    expect(roundTrip(event, builtinCatalog())).toEqual({ ...event, data: { firstName: 'Ada', lastName: null, email: 'ada@example.org' } });
  });

  it('follows a deleted event with a tombstone of the same key, both in one group', () => {
    const deleted: DomainEvent = { ...userChanged(), type: 'UserDeleted', eventId: eventId(causation, 'UserDeleted', 0), changedFields: [], knownFields: [], data: {} };
    const records = eventRecords(deleted, builtinCatalog());
    expect(records.map((r) => [r.topic, r.key, r.value === null, r.encoded!.value === null])).toEqual([
      ['domain.user', { id: '7' }, false, false],
      ['domain.user', { id: '7' }, true, true],
    ]);
    expect(records[0]!.group).toBeDefined();
    expect(records[1]!.group).toBe(records[0]!.group);
    expect(records[1]!.encoded!.key).toEqual(records[0]!.encoded!.key);
    expect(records[1]!.headers['banyan.event.type']).toBe('UserDeleted');
    expect(roundTrip(deleted, builtinCatalog())).toEqual(deleted);
  });

  it('keeps decimals, dates, timestamps, longs and a composite key exact through Avro', () => {
    const data = { price: '-1234.50', shipOn: '1969-07-20', at: -1_000, units: 2n ** 62n + 1n, qty: -5, ok: false, rate: 0.1 };
    const event = orderLine(data);
    const [record] = eventRecords(event, orders);
    expect(record!.topic).toBe('domain.order_line');
    expect(record!.key).toEqual({ orderId: 'A', lineNo: '7/1' });
    expect(roundTrip(event).data).toEqual(data);
    // Trailing zeros past the scale are exact; fewer places are padded to the scale.
    expect(roundTrip(orderLine({ price: '12.500' })).data.price).toBe('12.50');
    expect(roundTrip(orderLine({ price: '3' })).data.price).toBe('3.00');
    expect(roundTrip(orderLine({ price: '0.01' })).data.price).toBe('0.01');
  });

  it.each([
    [{ price: '12.345' }, 'event OrderLineChanged of order_line "A/7%2F1": data.price: "12.345" has more than 2 decimal places (decimal(6,2))'],
    [{ price: '12345.6' }, 'data.price: "12345.6" has more than 6 digits (decimal(6,2))'],
    [{ price: 12.5 }, 'data.price: 12.5 is not a decimal string'],
    [{ shipOn: '2023-02-30' }, 'data.shipOn: "2023-02-30" is not a calendar date'],
    [{ units: 5 }, 'data.units: 5 is not a BigInt'],
    [{ units: 2n ** 63n }, 'data.units: 9223372036854775808 does not fit a 64-bit long'],
    [{ qty: 2 ** 31 }, 'data.qty: 2147483648 is not a 32-bit integer'],
    [{ at: 1.5 }, 'data.at: 1.5 is not a timestamp'],
    [{ nope: 'x' }, 'data.nope is not a field of OrderLineChanged'],
  ])('refuses a bad value naming the event, the field and the value: %#', (data, message) => {
    const error = (() => {
      try {
        eventRecords(orderLine(data), orders);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(BadRecordError);
    expect((error as Error).message).toContain(message);
  });

  it('refuses an envelope that does not fit: unknown type, wrong entity id, unknown changed field, bad origin', () => {
    const bad: [Partial<DomainEvent>, string][] = [
      [{ type: 'UserMoved' }, 'unknown event type'],
      [{ entityId: '8' }, 'entityId does not match entityKey (which makes "7")'],
      [{ entityKey: { id: '7', x: '1' } }, 'entityKey has x, not key fields of user (id)'],
      [{ changedFields: ['phone'] }, 'changedFields names "phone", not a field of UserChanged'],
      [{ origin: 'mainframe' as DomainEvent['origin'] }, 'origin "mainframe" is not one of'],
      [{ schemaVersion: 2 }, 'schemaVersion 2 is not a version of its definition (1 to 1)'],
      [{ eventId: 'x' }, 'eventId "x" is not a lower-case UUID'],
      [{ type: 'UserDeleted', changedFields: [], knownFields: [], data: { email: 'x' } }, 'data.email is not a field of UserDeleted (it has none)'],
    ];
    for (const [over, message] of bad) expect(() => eventRecords(userChanged(over), builtinCatalog()), message).toThrow(message);
  });
});

describe('the catalog', () => {
  it('answers topics, events of a topic and definitions', () => {
    const catalog = builtinCatalog();
    expect(catalog.topics()).toEqual(['domain.user', 'domain.address']);
    expect(catalog.eventsOf('domain.address').map((e) => e.name)).toEqual(['AddressChanged', 'AddressDeleted']);
    expect(catalog.definition('UserDeleted')?.kind).toBe('deleted');
    expect(catalog.definition('Nope')).toBeUndefined();
    expect(catalog.keyFields('user')).toEqual(['id']);
    expect(orders.topics()).toEqual(['domain.user', 'domain.address', 'domain.order_line']);
  });

  it('has TypeScript types that match the built-in definitions', () => {
    // Object literals of the types: the compiler refuses a missing or extra field.
    const user: UserChangedData = { firstName: null, lastName: null, email: null };
    const address: AddressChangedData = { street: null, city: null, postalCode: null, state: null, country: null };
    expect(Object.keys(user)).toEqual(Object.keys(BUILTIN_EVENTS.find((e) => e.name === 'UserChanged')!.fields));
    expect(Object.keys(address)).toEqual(Object.keys(BUILTIN_EVENTS.find((e) => e.name === 'AddressChanged')!.fields));
  });

  it('refuses a bad events section naming each entry, the event and the field', () => {
    const issues = (entries: unknown[]) => {
      try {
        buildCatalog(eventsSectionSchema.parse(entries));
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
      }
      throw new Error('no error');
    };
    expect(
      issues([
        { name: 'UserChanged', entity: 'user' },
        { name: 'Order-Changed', entity: 'order' },
        { name: 'OrderMoved', entity: 'order', topic: 'domain.user' },
        { name: 'OrderX', entity: 'order', key: ['orderId'], fields: { 'bad name': 'string', total: 'decimal(2,3)' } },
        { name: 'UserGone', entity: 'user', kind: 'deleted' },
      ]),
    ).toEqual([
      'events[0].name: event UserChanged: the name is taken by built-in UserChanged',
      'events[1].name: event Order-Changed: "Order-Changed" is not an Avro name (letters, digits and _, not starting with a digit)',
      'events[2].topic: event OrderMoved: topic domain.user carries entity user; one topic carries the events of one entity (its key)',
      'events[2].topic: event OrderMoved: entity order is on topic domain.order; all of an entity\'s events go to one topic, so they stay in order',
      'events[3].key: event OrderX: key (orderId) differs from (id) of Order-Changed, another event of entity order',
      'events[3].fields.bad name: event OrderX: field "bad name" is not an Avro name',
      'events[3].fields.total: event OrderX: field total: decimal(2,3) needs a precision from 1 and a scale from 0 to the precision',
      'events[4].kind: event UserGone: topic domain.user already has a deleted-kind event, UserDeleted: a sink must know what a delete of the entity is',
    ]);
    const parsed = eventsSectionSchema.safeParse([{ name: 'A', entity: 'a', fields: { x: 'money' } }]);
    expect(parsed.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['0.fields.x.type', 'unknown field type "money": use string, int, long, double, boolean, date, timestamp or decimal(precision,scale)'],
    ]);
  });
});
