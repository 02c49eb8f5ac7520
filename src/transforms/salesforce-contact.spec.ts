import { describe, expect, it } from 'vitest';
import { fixture, parseMappingConfig, salesforceInput, type SalesforceChange } from '../../test/fixtures/mappings/inputs';
import type { DomainEvent } from '../domain/event';
import { buildMapping, type MappingResult } from './mappings';

const { config, catalog } = parseMappingConfig(fixture('users.yaml'));
const code = buildMapping(config.transforms[1]!, catalog);

// The same mapping written declaratively: the spec runs every case through both.
const declarative = buildMapping(
  parseMappingConfig(`
transforms:
  - name: salesforce-contacts
    from: salesforce.Contact
    format: salesforce-cdc
    events:
      - event: UserChanged
        key: { id: Banyan_Id__c }
        fields: { firstName: Name.FirstName, lastName: Name.LastName, email: Email }
      - event: AddressChanged
        key: { id: Banyan_Id__c }
        fields:
          street: MailingAddress.Street
          city: MailingAddress.City
          postalCode: MailingAddress.PostalCode
          state: MailingAddress.State
          country: MailingAddress.Country
`).config.transforms[0]!,
  catalog,
);

/** Every field a CometD create carries for these mappings (empty ones as null, docs/salesforce-cdc.md). */
const FULL = {
  Banyan_Id__c: '7',
  'Name.FirstName': 'Ada',
  'Name.LastName': 'Lovelace',
  'Name.Salutation': null,
  Email: 'ada@example.com',
  Phone: '+44 20 7946 0000',
  'MailingAddress.Street': '1 Main St',
  'MailingAddress.City': 'London',
  'MailingAddress.PostalCode': 'N1 9GU',
  'MailingAddress.State': null,
  'MailingAddress.Country': 'UK',
  LastModifiedDate: '2024-05-06T07:08:09.000Z',
};
const USER_DATA = { firstName: 'Ada', lastName: 'Lovelace', email: 'ada@example.com' };
const ADDRESS_DATA = { street: '1 Main St', city: 'London', postalCode: 'N1 9GU', state: null, country: 'UK' };
const NO_USER = { firstName: null, lastName: null, email: null };
const NO_ADDRESS = { street: null, city: null, postalCode: null, state: null, country: null };

type Expected = Pick<DomainEvent, 'type' | 'entityId' | 'changedFields' | 'knownFields' | 'data'>;
const summary = (r: MappingResult) => ({
  events: r.events.map((e): Expected => ({ type: e.type, entityId: e.entityId, changedFields: e.changedFields, knownFields: e.knownFields, data: e.data })),
  dropped: r.dropped,
  deadLetters: r.deadLetters.map((d) => `${d.code}: ${d.reason}`),
});
const event = (type: string, changedFields: string[], knownFields: string[], data: Record<string, unknown>): Expected => ({ type, entityId: '7', changedFields, knownFields, data });
const ALL_USER = ['firstName', 'lastName', 'email'];
const ALL_ADDRESS = ['street', 'city', 'postalCode', 'state', 'country'];

const cases: Array<{ name: string; change: SalesforceChange; events?: Expected[]; dropped?: Record<string, number>; deadLetters?: string[] }> = [
  {
    name: 'compound address partly changed: only its changed components, and no UserChanged for the enriched id',
    change: {
      op: 'update',
      fields: { Banyan_Id__c: '7', 'MailingAddress.City': 'Paris', 'MailingAddress.PostalCode': '75001', LastModifiedDate: '2024-05-06T07:08:09.000Z' },
      changedFields: ['MailingAddress.City', 'MailingAddress.PostalCode', 'LastModifiedDate'],
    },
    events: [event('AddressChanged', ['city', 'postalCode'], ['city', 'postalCode'], { ...NO_ADDRESS, city: 'Paris', postalCode: '75001' })],
  },
  {
    name: 'a nulled field: present as null and named in changedFields, a known null',
    change: { op: 'update', fields: { Banyan_Id__c: '7', Email: null }, changedFields: ['Email'], nulledFields: ['Email'] },
    events: [event('UserChanged', ['email'], ['email'], { ...NO_USER, email: null })],
  },
  {
    name: 'a compound name component',
    change: { op: 'update', fields: { Banyan_Id__c: '7', 'Name.LastName': 'King' }, changedFields: ['Name.LastName'] },
    events: [event('UserChanged', ['lastName'], ['lastName'], { ...NO_USER, lastName: 'King' })],
  },
  {
    name: 'a whole compound named in changedFields: each of its components changed',
    change: {
      op: 'update',
      fields: { Banyan_Id__c: '7', 'MailingAddress.Street': null, 'MailingAddress.City': null, 'MailingAddress.PostalCode': null, 'MailingAddress.State': null, 'MailingAddress.Country': null },
      changedFields: ['MailingAddress'],
    },
    events: [event('AddressChanged', ALL_ADDRESS, ALL_ADDRESS, NO_ADDRESS)],
  },
  {
    name: 'a create: both events, every field changed and known',
    change: { op: 'create', fields: FULL },
    events: [event('UserChanged', ALL_USER, ALL_USER, USER_DATA), event('AddressChanged', ALL_ADDRESS, ALL_ADDRESS, ADDRESS_DATA)],
  },
  {
    name: 'an undelete: the full record again',
    change: { op: 'undelete', fields: FULL },
    events: [event('UserChanged', ALL_USER, ALL_USER, USER_DATA), event('AddressChanged', ALL_ADDRESS, ALL_ADDRESS, ADDRESS_DATA)],
  },
  {
    name: 'a gap-reconciled record: full current values',
    change: { op: 'reconciled', changeType: 'GAP_UPDATE', fields: { ...FULL, 'Name.FirstName': 'Augusta' } },
    events: [event('UserChanged', ALL_USER, ALL_USER, { ...USER_DATA, firstName: 'Augusta' }), event('AddressChanged', ALL_ADDRESS, ALL_ADDRESS, ADDRESS_DATA)],
  },
  {
    name: 'a reconciled record without a field the source could not read (hidden by field-level security): that field is unknown, not null',
    change: { op: 'reconciled', changeType: 'GAP_UPDATE', fields: Object.fromEntries(Object.entries(FULL).filter(([name]) => name !== 'Email')) },
    events: [
      event('UserChanged', ['firstName', 'lastName'], ['firstName', 'lastName'], { ...USER_DATA, email: null }),
      event('AddressChanged', ALL_ADDRESS, ALL_ADDRESS, ADDRESS_DATA),
    ],
  },
  {
    name: 'a delete carrying the enriched id: the user, then its address',
    change: { op: 'delete', fields: { Banyan_Id__c: '7' } },
    events: [
      { type: 'UserDeleted', entityId: '7', changedFields: [], knownFields: [], data: {} },
      { type: 'AddressDeleted', entityId: '7', changedFields: [], knownFields: [], data: {} },
    ],
  },
  {
    name: 'a change of fields neither event maps',
    change: { op: 'update', fields: { Banyan_Id__c: '7', Phone: '+1 555 0100' }, changedFields: ['Phone'] },
    dropped: { unchanged: 1 },
  },
  {
    name: 'a missing Banyan_Id__c (a Contact not linked to a legacy user): dead-lettered, never guessed',
    change: { op: 'update', recordId: '003xx000004TmiQAAS', fields: { Email: 'x@example.com' }, changedFields: ['Email'] },
    deadLetters: [
      'NO_ENTITY_ID: transform salesforce-contacts: record 003xx000004TmiQAAS of Contact (salesforce.Contact/0@7): no entity id: Banyan_Id__c is absent',
    ],
  },
  {
    name: 'a null Banyan_Id__c on a create',
    change: { op: 'create', recordId: '003xx000004TmiRAAS', fields: { ...FULL, Banyan_Id__c: null } },
    deadLetters: [
      'NO_ENTITY_ID: transform salesforce-contacts: record 003xx000004TmiRAAS of Contact (salesforce.Contact/0@7): no entity id: Banyan_Id__c is null',
    ],
  },
  {
    name: 'a delete without the id',
    change: { op: 'delete', recordId: '003xx000004TmiSAAS', fields: {} },
    deadLetters: [
      'NO_ENTITY_ID: transform salesforce-contacts: record 003xx000004TmiSAAS of Contact (salesforce.Contact/0@7): no entity id: Banyan_Id__c is absent',
    ],
  },
  {
    name: 'a field carried as a diff (diffFields) is no value: dead-lettered',
    change: { op: 'update', fields: { Banyan_Id__c: '7', Email: '@@ -1 +1 @@' }, changedFields: ['Email'], diffFields: ['Email'] },
    deadLetters: [
      'UNUSABLE_VALUE: transform salesforce-contacts: record 003xx000004TmiQAAS of Contact (salesforce.Contact/0@7): field Email carries a diff, not its value (diffFields): subscribe without diffs',
    ],
  },
  {
    name: 'an echo of Banyan’s own write: nothing, counted',
    change: { op: 'update', echo: true, fields: { Banyan_Id__c: '7', Email: 'x@example.com' }, changedFields: ['Email'] },
    dropped: { echo: 1 },
  },
];

describe.each([
  ['code mapping salesforce-contact', code],
  ['declarative', declarative],
])('Salesforce Contact → UserChanged / AddressChanged, %s', (_label, mapping) => {
  it.each(cases)('$name', ({ change, events, dropped, deadLetters }) => {
    expect(summary(mapping(salesforceInput(change)))).toEqual({ events: events ?? [], dropped: dropped ?? {}, deadLetters: deadLetters ?? [] });
  });

  it('takes the commit time from the event header, and the origin salesforce', () => {
    const [e] = mapping(salesforceInput({ op: 'update', fields: { Banyan_Id__c: '7', Email: 'a@b.c' }, changedFields: ['Email'], commitTimestamp: '2024-01-02T03:04:05.678Z' })).events;
    expect([e!.sourceCommitTime, e!.origin, e!.entityKey]).toEqual([Date.parse('2024-01-02T03:04:05.678Z'), 'salesforce', { id: '7' }]);
  });

  it('takes a re-read record’s commit time from its Kafka timestamp when the header has none', () => {
    const input = salesforceInput({ op: 'reconciled', changeType: 'REPLAY_EXPIRED', fields: FULL, commitTimestamp: null });
    expect(mapping(input).events.map((e) => e.sourceCommitTime)).toEqual([input.timestamp, input.timestamp]);
  });
});

describe('salesforce-contact options', () => {
  it('reads the id from another external id field when told', () => {
    const mapping = buildMapping({ ...config.transforms[1]!, options: { idField: 'Legacy_Id__c' } }, catalog);
    const result = mapping(salesforceInput({ op: 'update', fields: { Legacy_Id__c: 42, Email: 'a@b.c' }, changedFields: ['Email'] }));
    expect(result.events.map((e) => [e.type, e.entityId])).toEqual([['UserChanged', '42']]);
  });
});
