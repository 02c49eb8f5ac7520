import { describe, expect, it } from 'vitest';
import { changedOnly, componentName, flattenEventFields, isoDateTime, objectShape, rowFields, withEmptyFields } from './fields';

const contact = objectShape('Contact', [
  { name: 'Id', type: 'id' },
  { name: 'IsDeleted', type: 'boolean' },
  { name: 'FirstName', type: 'string', compoundFieldName: 'Name' },
  { name: 'LastName', type: 'string', compoundFieldName: 'Name' },
  { name: 'Name', type: 'string' },
  { name: 'Email', type: 'email' },
  { name: 'MailingStreet', type: 'textarea', compoundFieldName: 'MailingAddress' },
  { name: 'MailingCity', type: 'string', compoundFieldName: 'MailingAddress' },
  { name: 'MailingAddress', type: 'address' },
  { name: 'Score__c', type: 'double', calculated: true },
  { name: 'SystemModstamp', type: 'datetime' },
]);

describe('object shape', () => {
  it('selects components instead of compound parents and names them as CDC does', () => {
    expect(contact.selectFields).toEqual(['Id', 'IsDeleted', 'FirstName', 'LastName', 'Email', 'MailingStreet', 'MailingCity', 'Score__c', 'SystemModstamp']);
    // What a change event can carry: no Id, IsDeleted, SystemModstamp, compound parent or formula.
    expect(contact.eventFields).toEqual(['Name.FirstName', 'Name.LastName', 'Email', 'MailingAddress.Street', 'MailingAddress.City']);
    expect(contact.flatName.get('MailingCity')).toBe('MailingAddress.City');
    expect(contact.flatName.get('LastName')).toBe('Name.LastName');
    expect(contact.compounds.get('MailingAddress')).toEqual(['MailingAddress.Street', 'MailingAddress.City']);
    expect([componentName('BillingPostalCode', 'BillingAddress'), componentName('City', 'Address'), componentName('Salutation', 'Name')]).toEqual(['PostalCode', 'City', 'Salutation']);
  });
});

describe('event fields', () => {
  it('flattens compounds with dots and expands a compound sent as a whole null', () => {
    const payload = { ChangeEventHeader: {}, Name: { FirstName: 'Ada', LastName: 'L' }, MailingAddress: null, Email: null, Count__c: 3, Flag__c: true };
    expect(flattenEventFields(payload, contact)).toEqual({
      'Name.FirstName': 'Ada', 'Name.LastName': 'L', 'MailingAddress.Street': null, 'MailingAddress.City': null, Email: null, Count__c: 3, Flag__c: true,
    });
  });

  it('refuses values it cannot carry', () => {
    expect(() => flattenEventFields({ Tags__c: ['a'] }, contact)).toThrow(/Tags__c holds an array/);
  });

  it('keeps only changed fields, and names those set to null from the body as CometD sends it (no nulledFields)', () => {
    const flat = { Email: null, 'MailingAddress.City': 'Paris', 'MailingAddress.Street': null, LastModifiedDate: 't' };
    expect(changedOnly(flat, ['Email', 'MailingAddress.City', 'MailingAddress.Street', 'LastModifiedDate'], [], contact)).toEqual({
      fields: { Email: null, 'MailingAddress.City': 'Paris', 'MailingAddress.Street': null, LastModifiedDate: 't' },
      nulled: ['Email', 'MailingAddress.Street'],
    });
  });

  it('does not take an unchanged field a payload lists as null for one set to null (Pub/Sub shape)', () => {
    const flat = { Email: null, Phone: null, 'MailingAddress.City': 'Paris', LastModifiedDate: 't' };
    expect(changedOnly(flat, ['Email', 'MailingAddress.City', 'LastModifiedDate'], ['Email'], contact)).toEqual({
      fields: { Email: null, 'MailingAddress.City': 'Paris', LastModifiedDate: 't' }, nulled: ['Email'],
    });
    expect(changedOnly({}, ['MailingAddress'], ['MailingAddress'], contact)).toEqual({
      fields: { 'MailingAddress.Street': null, 'MailingAddress.City': null }, nulled: ['MailingAddress'],
    });
    expect(changedOnly(flat, [], [], contact)).toEqual({ fields: flat, nulled: [] });
  });

  it('names the fields a CREATE left out (empty ones) as null', () => {
    expect(withEmptyFields({ 'Name.LastName': 'L', 'MailingAddress.City': 'Oslo', CreatedDate: 't' }, contact)).toEqual({
      'Name.FirstName': null, 'Name.LastName': 'L', Email: null, 'MailingAddress.Street': null, 'MailingAddress.City': 'Oslo', CreatedDate: 't',
    });
  });
});

describe('REST rows', () => {
  it('names fields as CDC does and writes datetimes as ISO-8601 UTC', () => {
    const row = { attributes: { type: 'Contact' }, Id: '003000000000001AAA', LastName: 'L', MailingCity: 'Oslo', SystemModstamp: '2024-01-31T09:30:00.000+0000', IsDeleted: false };
    expect(rowFields(row, contact)).toEqual({ 'Name.LastName': 'L', 'MailingAddress.City': 'Oslo', SystemModstamp: '2024-01-31T09:30:00.000Z', IsDeleted: false });
    expect(isoDateTime('not a date')).toBe('not a date');
  });
});
