import { describe, expect, it } from 'vitest';
import type { RowMapping } from '../../core';
import { objectProblems } from './fit';

const mapping: RowMapping = {
  name: 'salesforce-contacts',
  from: 'salesforce.Contact',
  rowEntity: 'user',
  blocks: [
    { event: 'UserChanged', entity: 'user', key: [{ field: 'id', column: 'Banyan_Id__c' }], fields: [{ field: 'email', column: 'Email', toColumn: (v) => v }] },
    { event: 'AddressChanged', entity: 'address', key: [{ field: 'id', column: 'Banyan_Id__c' }], fields: [{ field: 'city', column: 'MailingAddress', toColumn: (v) => v }] },
  ],
};

describe('objectProblems', () => {
  it('accepts an object whose fields exist and can be written, upserted by an external id', () => {
    const fields = [{ name: 'Email', createable: true, updateable: true }, { name: 'MailingAddress', createable: true, updateable: true }, { name: 'Banyan_Id__c', externalId: true }];
    expect(objectProblems(mapping, 'Contact', fields, 'Banyan_Id__c')).toEqual([]);
  });

  it('names a missing field, a read-only one and a key that is no external id', () => {
    const fields = [{ name: 'MailingAddress', createable: false, updateable: false }, { name: 'Banyan_Id__c', externalId: false }];
    expect(objectProblems(mapping, 'Contact', fields, 'Banyan_Id__c')).toEqual([
      'Contact.Banyan_Id__c is not an external id field (upsert needs one)',
      'UserChanged.email: Contact has no field Email',
      'AddressChanged.city: Contact.MailingAddress cannot be written (createable false, updateable false)',
    ]);
  });
});
