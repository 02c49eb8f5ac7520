import { describe, expect, it } from 'vitest';
import { isWrittenEcho, writtenKey, type WrittenRecord } from './salesforce-written';

const written: WrittenRecord = { object: 'Contact', externalIdField: 'Banyan_Id__c', externalId: '7', values: { Email: 'a@example.com', MailingCity: null }, at: 10_000, sink: 's' };
const WINDOW = 60_000;

describe('isWrittenEcho', () => {
  it('an update that changed only what Banyan wrote, to the values it wrote, is its echo', () => {
    expect(isWrittenEcho(written, { Email: 'a@example.com', LastModifiedDate: 'x', Banyan_Id__c: '7' }, 10_500, WINDOW)).toBe(true);
    expect(isWrittenEcho(written, { email: 'a@example.com', MailingCity: '' }, 10_500, WINDOW)).toBe(true);
  });

  it('an update with another value, or another field, or none of Banyan’s fields, is a change', () => {
    expect(isWrittenEcho(written, { Email: 'b@example.com' }, 10_500, WINDOW)).toBe(false);
    expect(isWrittenEcho(written, { Email: 'a@example.com', Phone: '123' }, 10_500, WINDOW)).toBe(false);
    expect(isWrittenEcho(written, { LastModifiedDate: 'x' }, 10_500, WINDOW)).toBe(false);
  });

  it('a create must carry every value Banyan wrote; the defaults Salesforce fills in are no change', () => {
    expect(isWrittenEcho(written, { Email: 'a@example.com', HasOptedOutOfEmail: false, OwnerId: '005' }, 10_500, WINDOW, true)).toBe(true);
    expect(isWrittenEcho(written, { Email: 'b@example.com', HasOptedOutOfEmail: false }, 10_500, WINDOW, true)).toBe(false);
  });

  it('outside the window, or with no fingerprint, nothing is an echo', () => {
    expect(isWrittenEcho(written, { Email: 'a@example.com' }, 10_000 + WINDOW + 1, WINDOW)).toBe(false);
    expect(isWrittenEcho(undefined, { Email: 'a@example.com' }, 10_500, WINDOW)).toBe(false);
  });

  it('keys records case-insensitively, as Salesforce matches text external ids', () => {
    expect(writtenKey('Contact', 'Banyan_Id__c', 'ABC')).toBe(writtenKey('contact', 'banyan_id__c', 'abc'));
  });
});
