import { describe, expect, it } from 'vitest';
import { isWrittenEcho, writtenKey, type WrittenRecord } from './salesforce-written';

const written: WrittenRecord = { object: 'Contact', externalIdField: 'Banyan_Id__c', externalId: '7', values: { Email: 'a@example.com', MailingCity: null }, at: 10_000, sink: 's' };
const WINDOW = 60_000;

describe('isWrittenEcho', () => {
  it('an update that changed only what Banyan wrote, to the values it wrote, is its echo', () => {
    expect(isWrittenEcho([written], { Email: 'a@example.com', LastModifiedDate: 'x', Banyan_Id__c: '7' }, 10_500, WINDOW)).toBe(true);
    expect(isWrittenEcho([written], { email: 'a@example.com', MailingCity: '' }, 10_500, WINDOW)).toBe(true);
  });

  it('an update with another value, or another field, or none of Banyan’s fields, is a change', () => {
    expect(isWrittenEcho([written], { Email: 'b@example.com' }, 10_500, WINDOW)).toBe(false);
    expect(isWrittenEcho([written], { Email: 'a@example.com', Phone: '123' }, 10_500, WINDOW)).toBe(false);
    expect(isWrittenEcho([written], { LastModifiedDate: 'x' }, 10_500, WINDOW)).toBe(false);
  });

  it('a create must carry every value Banyan wrote; the defaults Salesforce fills in are no change', () => {
    expect(isWrittenEcho([written], { Email: 'a@example.com', HasOptedOutOfEmail: false, OwnerId: '005' }, 10_500, WINDOW, true)).toBe(true);
    expect(isWrittenEcho([written], { Email: 'b@example.com', HasOptedOutOfEmail: false }, 10_500, WINDOW, true)).toBe(false);
  });

  it('two writes of one record before the first echo is judged: both echoes are known', () => {
    const second: WrittenRecord = { ...written, values: { Email: 'c@example.com' }, at: 10_300 };
    expect(isWrittenEcho([written, second], { Email: 'a@example.com' }, 10_500, WINDOW)).toBe(true);
    expect(isWrittenEcho([written, second], { Email: 'c@example.com' }, 10_800, WINDOW)).toBe(true);
    expect(isWrittenEcho([written, second], { Email: 'b@example.com' }, 10_800, WINDOW)).toBe(false);
  });

  it('outside the window, or with no fingerprint, nothing is an echo', () => {
    expect(isWrittenEcho([written], { Email: 'a@example.com' }, 10_000 + WINDOW + 1, WINDOW)).toBe(false);
    expect(isWrittenEcho([], { Email: 'a@example.com' }, 10_500, WINDOW)).toBe(false);
  });

  it('keys records case-insensitively, as Salesforce matches text external ids', () => {
    expect(writtenKey('Contact', 'Banyan_Id__c', 'ABC')).toBe(writtenKey('contact', 'banyan_id__c', 'abc'));
  });
});

describe('WrittenFingerprints.takeEcho', () => {
  it('knows both echoes of two writes made before the first is judged, and a later same value as a change', async () => {
    const { WrittenFingerprints } = await import('./salesforce-written');
    const store = new WrittenFingerprints(undefined as never, 'topic', undefined as never, WINDOW, { partitions: 1, replicationFactor: 1 });
    const now = Date.now();
    // As the follower reads them from the topic.
    store.remember({ ...written, values: { Email: 'a@example.com' }, at: now });
    store.remember({ ...written, values: { Email: 'c@example.com' }, at: now + 300 });
    const fields = (email: string) => ({ Banyan_Id__c: '7', Email: email });
    expect(store.takeEcho('Contact', fields('a@example.com'), { Email: 'a@example.com' }, now + 100)).toBe(true);
    expect(store.takeEcho('Contact', fields('c@example.com'), { Email: 'c@example.com' }, now + 400)).toBe(true);
    // Consumed: a Salesforce user setting a@ again is a change.
    expect(store.takeEcho('Contact', fields('a@example.com'), { Email: 'a@example.com' }, now + 500)).toBe(false);
  });
});
