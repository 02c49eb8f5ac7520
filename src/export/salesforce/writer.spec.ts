import { describe, expect, it } from 'vitest';
import { failedOutcome } from './writer';

describe('failedOutcome (Bulk API 2.0 sf__Error)', () => {
  it('reads the status code, the message and the fields', () => {
    expect(failedOutcome('REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --')).toEqual({
      ok: false,
      statusCode: 'REQUIRED_FIELD_MISSING',
      message: 'Required fields are missing: [LastName]',
      fields: ['LastName'],
    });
    expect(failedOutcome('UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--')).toEqual({ ok: false, statusCode: 'UNABLE_TO_LOCK_ROW', message: 'unable to obtain exclusive access to this record', fields: [] });
  });
});
