import { describe, expect, it } from 'vitest';
import { parseChangeEvent, type RawChangeMessage } from './event';
import { objectShape } from './fields';
import { eventRecords, type RecordTarget } from './records';
import type { SalesforceChangeValue } from './schema';

/**
 * Events of a channel member with enriched fields ("Enrich Change Events with Extra Fields",
 * "Example: Delivered Enriched Event Messages"): the enriched values join `fields`; `changedFields`
 * keeps saying what changed.
 */

const target: RecordTarget = {
  topic: 'salesforce.Contact',
  shape: objectShape('Contact', [
    { name: 'Id', type: 'id' },
    { name: 'Email', type: 'email' },
    { name: 'Phone', type: 'phone' },
    { name: 'Banyan_Id__c', type: 'string' },
    { name: 'MailingStreet', type: 'textarea', compoundFieldName: 'MailingAddress' },
    { name: 'MailingCity', type: 'string', compoundFieldName: 'MailingAddress' },
    { name: 'MailingAddress', type: 'address' },
    { name: 'LastModifiedDate', type: 'datetime' },
  ]),
};

const id = '003Em0000000001IAA';

function value(changeType: string, changedFields: string[], body: Record<string, unknown>, extraHeader: Record<string, unknown> = {}): SalesforceChangeValue {
  const message: RawChangeMessage = {
    payload: {
      ChangeEventHeader: { entityName: 'Contact', recordIds: [id], changeType, commitTimestamp: 1_700_000_000_000, changedFields, ...extraHeader },
      ...body,
    },
    event: { replayId: 9 },
  };
  const [record] = eventRecords(parseChangeEvent(message, 'Contact'), target, false);
  return record!.value as unknown as SalesforceChangeValue;
}

describe('records of enriched events', () => {
  it.each([
    {
      what: 'an update of Email only: the enriched external id joins the fields, not changedFields',
      changeType: 'UPDATE', changed: ['Email', 'LastModifiedDate'],
      body: { Email: 'ada@example.com', LastModifiedDate: '2024-05-01T10:00:00.000Z', Banyan_Id__c: 'user-2001' },
      fields: { Email: 'ada@example.com', LastModifiedDate: '2024-05-01T10:00:00.000Z', Banyan_Id__c: 'user-2001' },
      nulled: [],
    },
    {
      what: 'a compound changed in part and enriched whole: every component sent, only the changed one named',
      changeType: 'UPDATE', changed: ['MailingAddress.City', 'LastModifiedDate'],
      body: { MailingAddress: { Street: '12 Market Street', City: 'Oakland' }, LastModifiedDate: '2024-05-01T10:00:00.000Z' },
      fields: { 'MailingAddress.Street': '12 Market Street', 'MailingAddress.City': 'Oakland', LastModifiedDate: '2024-05-01T10:00:00.000Z' },
      nulled: [],
    },
    {
      what: 'an enriched field set to null: a changed field, named and nulled',
      changeType: 'UPDATE', changed: ['Banyan_Id__c', 'LastModifiedDate'],
      body: { Banyan_Id__c: null, LastModifiedDate: '2024-05-01T10:00:00.000Z' },
      fields: { Banyan_Id__c: null, LastModifiedDate: '2024-05-01T10:00:00.000Z' },
      nulled: ['Banyan_Id__c'],
    },
    {
      what: 'the Pub/Sub API shape (unchanged fields as null): a null outside changedFields is no value, never "set to null"',
      changeType: 'UPDATE', changed: ['Email', 'LastModifiedDate'],
      body: { Email: 'ada@example.com', Phone: null, MailingAddress: null, LastModifiedDate: '2024-05-01T10:00:00.000Z', Banyan_Id__c: 'user-2001' },
      fields: { Email: 'ada@example.com', LastModifiedDate: '2024-05-01T10:00:00.000Z', Banyan_Id__c: 'user-2001' },
      nulled: [],
    },
    {
      what: 'a delete with an enriched field: that field and nothing else',
      changeType: 'DELETE', changed: [],
      body: { Banyan_Id__c: 'user-2001' },
      fields: { Banyan_Id__c: 'user-2001' },
      nulled: [],
    },
    {
      what: 'a delete without enrichment: no fields, as before',
      changeType: 'DELETE', changed: [],
      body: {},
      fields: {},
      nulled: [],
    },
  ])('$what', ({ changeType, changed, body, fields, nulled }) => {
    const record = value(changeType, changed, body);
    expect(record.fields).toEqual(fields);
    expect(record.changedFields).toEqual(changed);
    expect(record.nulledFields).toEqual(nulled);
    expect(record.op).toBe(changeType.toLowerCase());
  });
});
