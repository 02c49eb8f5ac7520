import { describe, expect, it } from 'vitest';
import { commitNumberOf, isEcho, parseChangeEvent, type RawChangeMessage } from './event';

const message = (header: Record<string, unknown>, fields: Record<string, unknown> = {}, replayId: unknown = 7): RawChangeMessage => ({
  payload: {
    ChangeEventHeader: {
      entityName: 'Contact', recordIds: ['003Em0000000001IAA'], changeType: 'UPDATE', changeOrigin: 'com/salesforce/api/rest/62.0',
      transactionKey: 'tx', sequenceNumber: 1, commitTimestamp: 1_700_000_000_000, commitNumber: 10_000_000_001, commitUser: '005000000000001AAA',
      changedFields: ['Phone'], ...header,
    },
    ...fields,
  },
  event: { replayId },
});

describe('parseChangeEvent', () => {
  it('reads the header of a change event', () => {
    const event = parseChangeEvent(message({}, { Phone: '1' }), 'Contact');
    expect(event).toMatchObject({ replayId: 7, header: { changeType: 'UPDATE', recordIds: ['003Em0000000001IAA'], commitTimestamp: 1_700_000_000_000, changedFields: ['Phone'] } });
    // A CometD header has no nulledFields or diffFields (Pub/Sub API only).
    expect(event.header).toMatchObject({ commitNumber: 10_000_000_001n, nulledFields: [], diffFields: [] });
  });

  it('keeps commitNumber only where it is exact: a number JSON.parse rounded (beyond 2^53) becomes null', () => {
    expect(commitNumberOf(10_708_862_594_919)).toBe(10_708_862_594_919n);
    expect(commitNumberOf(2 ** 53 + 2)).toBeNull();
    expect(commitNumberOf(9_007_199_254_740_993n)).toBe(9_007_199_254_740_993n);
    expect(commitNumberOf('9007199254740993')).toBe(9_007_199_254_740_993n);
    expect([commitNumberOf('9999999999999999999'), commitNumberOf(1.5), commitNumberOf(undefined)]).toEqual([null, null, null]);
    expect(parseChangeEvent(message({ commitNumber: JSON.parse('9007199254740993') }), 'Contact').header.commitNumber).toBeNull();
  });

  it.each([
    ['no replayId', message({}, {}, 'x'), /replayId/],
    ['no header', { payload: {}, event: { replayId: 1 } }, /ChangeEventHeader/],
    ['an unknown change type', message({ changeType: 'MERGE' }), /unknown changeType "MERGE"/],
    ['another entity', message({ entityName: 'Account' }), /Account on the Contact channel/],
    ['no record ids', message({ recordIds: [] }), /without recordIds/],
    ['a record id that is not one', message({ recordIds: ["x' OR Name != '"] }), /not a Salesforce id/],
    ['no commit time', message({ commitTimestamp: null }), /commitTimestamp/],
    ['changedFields that are not strings', message({ changedFields: [1] }), /changedFields/],
  ])('refuses an event with %s', (_what, raw, reason) => {
    expect(() => parseChangeEvent(raw as RawChangeMessage, 'Contact')).toThrow(reason);
  });

  it('accepts GAP_OVERFLOW without record ids', () => {
    expect(parseChangeEvent(message({ changeType: 'GAP_OVERFLOW', recordIds: [] }), 'Contact').header.recordIds).toEqual([]);
  });
});

describe('isEcho', () => {
  it('matches the client id of Sforce-Call-Options exactly', () => {
    expect(isEcho('com/salesforce/api/rest/62.0;client=banyan', 'banyan')).toBe(true);
    expect(isEcho('com/salesforce/api/soap/62.0;client=banyan/', 'banyan')).toBe(true);
    expect(isEcho('com/salesforce/api/rest/62.0;client=banyan-sink', 'banyan')).toBe(false);
    expect(isEcho('com/salesforce/api/rest/62.0', 'banyan')).toBe(false);
    expect(isEcho(null, 'banyan')).toBe(false);
  });
});
