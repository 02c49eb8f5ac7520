import { describe, expect, it } from 'vitest';
import { isEcho, parseChangeEvent, type RawChangeMessage } from './event';

const message = (header: Record<string, unknown>, fields: Record<string, unknown> = {}, replayId: unknown = 7): RawChangeMessage => ({
  payload: {
    ChangeEventHeader: {
      entityName: 'Contact', recordIds: ['003Em0000000001IAA'], changeType: 'UPDATE', changeOrigin: 'com/salesforce/api/rest/62.0',
      transactionKey: 'tx', sequenceNumber: 1, commitTimestamp: 1_700_000_000_000, commitNumber: 10_000_000_001, commitUser: '005000000000001AAA',
      changedFields: ['Phone'], nulledFields: [], diffFields: [], ...header,
    },
    ...fields,
  },
  event: { replayId },
});

describe('parseChangeEvent', () => {
  it('reads the header of a change event', () => {
    const event = parseChangeEvent(message({}, { Phone: '1' }), 'Contact');
    expect(event).toMatchObject({ replayId: 7, header: { changeType: 'UPDATE', recordIds: ['003Em0000000001IAA'], commitTimestamp: 1_700_000_000_000, changedFields: ['Phone'] } });
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
