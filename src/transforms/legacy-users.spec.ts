import { describe, expect, it } from 'vitest';
import { fixture, legacyInput, parseMappingConfig, USERS, type LegacyChange } from '../../test/fixtures/mappings/inputs';
import { Headers } from '../core';
import { deadLetterMessage } from '../runtime/dead-letters';
import type { DomainEvent } from '../domain/event';
import { correlationId, eventId } from '../domain/records';
import { buildMapping, type MappingResult } from './mappings';

const { config, catalog } = parseMappingConfig(fixture('users.yaml'));
const declarative = buildMapping(config.transforms[0]!, catalog);
// The code mapping says the same as the declarative block: the spec runs every case through both.
const code = buildMapping({ ...config.transforms[0]!, events: undefined, mapping: 'legacy-users' }, catalog);

const ADA = {
  id: 7n,
  first_name: 'Ada',
  last_name: 'Lovelace',
  email: 'ada@example.com',
  street: '1 Main St',
  city: 'London',
  postal_code: 'N1 9GU',
  state: 'Greater London',
  country: 'UK',
  credit_limit: '1500.00',
  updated_at: '2024-05-06T07:08:09.123456Z',
};
const USER_DATA = { firstName: 'Ada', lastName: 'Lovelace', email: 'ada@example.com' };
const ADDRESS_DATA = { street: '1 Main St', city: 'London', postalCode: 'N1 9GU', state: 'Greater London', country: 'UK' };
const USER_FIELDS = Object.keys(USER_DATA);
const ADDRESS_FIELDS = Object.keys(ADDRESS_DATA);

/** What a case expects of each event: the rest of the envelope is checked once, below. */
type Expected = Pick<DomainEvent, 'type' | 'entityId' | 'changedFields' | 'knownFields' | 'data'>;
const summary = (r: MappingResult) => ({
  events: r.events.map((e): Expected => ({ type: e.type, entityId: e.entityId, changedFields: e.changedFields, knownFields: e.knownFields, data: e.data })),
  dropped: r.dropped,
  deadLetters: r.deadLetters.map((d) => d.code),
});
const userChanged = (changedFields: string[], data: Record<string, unknown> = USER_DATA, knownFields = USER_FIELDS, entityId = '7'): Expected => ({
  type: 'UserChanged',
  entityId,
  changedFields,
  knownFields,
  data,
});
const addressChanged = (changedFields: string[], data: Record<string, unknown> = ADDRESS_DATA, knownFields = ADDRESS_FIELDS, entityId = '7'): Expected => ({
  type: 'AddressChanged',
  entityId,
  changedFields,
  knownFields,
  data,
});
const deleted = (type: string, entityId = '7'): Expected => ({ type, entityId, changedFields: [], knownFields: [], data: {} });

const cases: Array<{ name: string; change: LegacyChange; events: Expected[]; dropped?: Record<string, number> }> = [
  {
    name: 'user columns only',
    change: { op: 'update', before: ADA, after: { ...ADA, email: 'ada@lovelace.org' } },
    events: [userChanged(['email'], { ...USER_DATA, email: 'ada@lovelace.org' })],
  },
  {
    name: 'address columns only',
    change: { op: 'update', before: ADA, after: { ...ADA, city: 'Cambridge', postal_code: 'CB2 1TN' } },
    events: [addressChanged(['city', 'postalCode'], { ...ADDRESS_DATA, city: 'Cambridge', postalCode: 'CB2 1TN' })],
  },
  {
    name: 'both groups',
    change: { op: 'update', before: ADA, after: { ...ADA, last_name: 'King', street: '12 St James Sq' } },
    events: [userChanged(['lastName'], { ...USER_DATA, lastName: 'King' }), addressChanged(['street'], { ...ADDRESS_DATA, street: '12 St James Sq' })],
  },
  {
    name: 'a NULL set (a known null, changed)',
    change: { op: 'update', before: ADA, after: { ...ADA, state: null } },
    events: [addressChanged(['state'], { ...ADDRESS_DATA, state: null })],
  },
  {
    name: 'a NULL unset',
    change: { op: 'update', before: { ...ADA, state: null }, after: ADA },
    events: [addressChanged(['state'])],
  },
  {
    name: 'a change touching neither group',
    change: { op: 'update', before: ADA, after: { ...ADA, credit_limit: '2000.00', updated_at: '2024-05-07T00:00:00.000000Z' } },
    events: [],
    dropped: { unchanged: 1 },
  },
  {
    name: 'a delete: the user, then its address',
    change: { op: 'delete', before: ADA, after: null },
    events: [deleted('UserDeleted'), deleted('AddressDeleted')],
  },
  {
    name: 'a snapshot row: both events, every field changed and known',
    change: { op: 'snapshot', before: null, after: ADA },
    events: [userChanged(USER_FIELDS), addressChanged(ADDRESS_FIELDS)],
  },
  {
    name: 'an insert with NULL columns: known nulls',
    change: { op: 'insert', before: null, after: { ...ADA, street: null, state: null } },
    events: [userChanged(USER_FIELDS), addressChanged(ADDRESS_FIELDS, { ...ADDRESS_DATA, street: null, state: null })],
  },
  {
    name: 'a key change, first record: the delete of the old key',
    change: { op: 'delete', before: ADA, after: null, headers: { [Headers.newKey]: '{"id":"8"}' } },
    events: [deleted('UserDeleted'), deleted('AddressDeleted')],
  },
  {
    name: 'a key change, last record: the insert of the new key, every field',
    change: { op: 'insert', before: null, after: { ...ADA, id: 8n }, headers: { [Headers.oldKey]: '{"id":"7"}' } },
    events: [userChanged(USER_FIELDS, USER_DATA, USER_FIELDS, '8'), addressChanged(ADDRESS_FIELDS, ADDRESS_DATA, ADDRESS_FIELDS, '8')],
  },
  {
    name: 'missing columns are unknown, not NULL: neither changed nor known',
    change: {
      op: 'update',
      before: { ...ADA, email: null, country: null },
      after: { ...ADA, first_name: 'Augusta', email: null, country: null },
      headers: { [Headers.missingColumns]: 'email,country' },
    },
    events: [userChanged(['firstName'], { ...USER_DATA, firstName: 'Augusta', email: null }, ['firstName', 'lastName'])],
  },
  {
    name: 'an insert recorded without a column: that field is not known',
    change: { op: 'insert', before: null, after: { ...ADA, postal_code: null }, headers: { [Headers.missingColumns]: 'postal_code' } },
    events: [userChanged(USER_FIELDS), addressChanged(['street', 'city', 'state', 'country'], { ...ADDRESS_DATA, postalCode: null }, ['street', 'city', 'state', 'country'])],
  },
  {
    name: 'an update whose only change is to a column recorded as missing: nothing',
    change: { op: 'update', before: { ...ADA, city: null }, after: { ...ADA, city: null }, headers: { [Headers.missingColumns]: 'city' } },
    events: [],
    dropped: { unchanged: 1 },
  },
  {
    name: 'an echo (banyan.echo=true): nothing, counted',
    change: { op: 'update', before: ADA, after: { ...ADA, email: 'x@example.com' }, headers: { [Headers.echo]: 'true' }, origin: 'banyan' },
    events: [],
    dropped: { echo: 1 },
  },
];

describe.each([
  ['declarative (users.yaml)', declarative],
  ['code mapping legacy-users', code],
])('legacy users → UserChanged / AddressChanged, %s', (_label, mapping) => {
  it.each(cases)('$name', ({ change, events, dropped }) => {
    expect(summary(mapping(legacyInput(USERS, change)))).toEqual({ events, dropped: dropped ?? {}, deadLetters: [] });
  });

  it('gives each event its envelope: deterministic ids, one correlation per record, the source’s commit time and origin', () => {
    const input = legacyInput(USERS, { op: 'update', before: ADA, after: { ...ADA, email: 'a@b.c', city: 'Bath' }, changedAt: '2024-05-06T07:08:09.123Z', offset: '99' });
    const { events } = mapping(input);
    const causation = { topic: 'legacy.app.users', partition: 1, offset: '99' };
    expect(events.map((e) => [e.eventId, e.entity, e.entityKey, e.sourceCommitTime, e.origin, e.causation, e.correlationId, e.schemaVersion])).toEqual([
      [eventId(causation, 'UserChanged', 0), 'user', { id: '7' }, Date.parse('2024-05-06T07:08:09.123Z'), 'legacy', causation, correlationId(causation), 1],
      [eventId(causation, 'AddressChanged', 1), 'address', { id: '7' }, Date.parse('2024-05-06T07:08:09.123Z'), 'legacy', causation, correlationId(causation), 1],
    ]);
    // Pure: the same input, the same events.
    expect(mapping(input)).toEqual(mapping(input));
    expect(events[0]!.eventId).not.toBe(events[1]!.eventId);
  });

  it('counts a tombstone as nothing to map', () => {
    const input = { ...legacyInput(USERS, { op: 'delete', before: ADA }), value: null };
    expect(mapping(input)).toEqual({ events: [], deadLetters: [], dropped: { tombstone: 1 } });
  });

  it('dead-letters a record it cannot read, naming it, and maps the next', () => {
    const input = legacyInput(USERS, { op: 'update', before: ADA, after: ADA });
    const broken = { ...input, value: { ...input.value!, op: 'merge' } };
    const result = mapping(broken);
    expect(result.events).toEqual([]);
    expect(result.deadLetters).toEqual([
      expect.objectContaining({ code: 'BAD_INPUT', stage: 'processing', topic: 'legacy.app.users', reason: expect.stringMatching(/^transform legacy-users: legacy\.app\.users\/1@42.*unknown op "merge"/) }),
    ]);
    expect(mapping(legacyInput(USERS, { op: 'delete', before: ADA })).events).toHaveLength(2);
    // Written as every dead letter is: the BigInt id as text.
    expect(JSON.parse(deadLetterMessage(result.deadLetters[0]!).value).payload.value.after.id).toBe('7');
  });
});
