import { describe, expect, it } from 'vitest';
import { classifySalesforceError, isAuthenticationFailure, isInvalidReplayId, parseBayeuxError, SalesforceError } from './errors';
import { parseLimitInfo } from './limits';

/** What jsforce throws for a REST error answer: errorCode from the body, no HTTP status. */
const apiError = (errorCode: string, message = 'whatever the text says') => Object.assign(new Error(message), { errorCode });

describe('classifySalesforceError', () => {
  it.each([
    ['REQUEST_LIMIT_EXCEEDED', 403, true],
    ['SERVER_UNAVAILABLE', 503, true],
    ['UNKNOWN_EXCEPTION', 500, true],
    ['UNABLE_TO_LOCK_ROW', 400, true],
    ['INVALID_SESSION_ID', 401, true],
    ['MALFORMED_QUERY', 400, false],
    ['INVALID_FIELD', 400, false],
    ['FIELD_CUSTOM_VALIDATION_EXCEPTION', 400, false],
    ['NOT_FOUND', 404, false],
  ])('%s (HTTP %i) retriable: %s', (errorCode, status, retriable) => {
    const error = classifySalesforceError(apiError(errorCode), status, 'calling');
    expect(error).toBeInstanceOf(SalesforceError);
    expect(error).toMatchObject({ errorCode, status, retriable, code: errorCode, stage: 'receiving' });
  });

  it('decides from the status when the errorCode is unknown, never from the message', () => {
    expect(classifySalesforceError(apiError('SOMETHING_NEW', 'please retry later'), 400, 'x').retriable).toBe(false);
    expect(classifySalesforceError(apiError('SOMETHING_NEW', 'fatal'), 502, 'x').retriable).toBe(true);
    expect(classifySalesforceError(new Error('no code at all'), 504, 'x')).toMatchObject({ errorCode: 'ERROR_HTTP_504', retriable: true });
    expect(classifySalesforceError(new Error('no code at all'), undefined, 'x')).toMatchObject({ errorCode: 'UNKNOWN', retriable: false });
  });

  it('treats dropped connections and timeouts as retriable', () => {
    expect(classifySalesforceError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), undefined, 'x')).toMatchObject({ errorCode: 'ECONNRESET', retriable: true });
    expect(classifySalesforceError(Object.assign(new Error('aborted'), { name: 'AbortError' }), undefined, 'x')).toMatchObject({ errorCode: 'REQUEST_TIMEOUT', retriable: true });
  });

  it('tells rate limits and ended sessions apart, and names the call', () => {
    const limited = classifySalesforceError(apiError('REQUEST_LIMIT_EXCEEDED'), 403, 'querying Contact');
    expect([limited.rateLimited, limited.sessionExpired, limited.message]).toEqual([true, false, 'querying Contact: whatever the text says']);
    expect(classifySalesforceError(apiError('INVALID_SESSION_ID'), 401, 'x').sessionExpired).toBe(true);
    expect(classifySalesforceError(limited, 500, 'again')).toBe(limited);
  });
});

describe('Bayeux errors', () => {
  it('parses code, args and message', () => {
    expect(parseBayeuxError('403::Unknown client')).toEqual({ code: 403, args: [], message: 'Unknown client' });
    expect(parseBayeuxError('403:/meta/x,y:Forbidden')).toEqual({ code: 403, args: ['/meta/x', 'y'], message: 'Forbidden' });
    expect(parseBayeuxError(undefined)).toEqual({ code: null, args: [], message: '' });
  });

  it('recognises an expired replayId and an invalid session', () => {
    const expired = parseBayeuxError('400::The replayId {42} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.');
    expect(isInvalidReplayId(expired)).toBe(true);
    expect(isInvalidReplayId(parseBayeuxError('400::The channel you requested to subscribe to does not exist {/data/X}'))).toBe(false);
    expect(isAuthenticationFailure({ error: '401::Authentication invalid' })).toBe(true);
    expect(isAuthenticationFailure({ error: '403::Handshake denied', ext: { sfdc: { failureReason: '401::Authentication invalid' } } })).toBe(true);
    expect(isAuthenticationFailure({ error: '403::Unknown client' })).toBe(false);
  });
});

describe('parseLimitInfo', () => {
  it('reads the org-wide api-usage', () => {
    expect(parseLimitInfo('api-usage=18/15000')).toEqual({ used: 18, max: 15000 });
    expect(parseLimitInfo('per-app-api-usage=2/250(appName=x), api-usage=25/5000')).toEqual({ used: 25, max: 5000 });
    expect(parseLimitInfo(undefined)).toBeUndefined();
    expect(parseLimitInfo('garbage')).toBeUndefined();
  });
});
