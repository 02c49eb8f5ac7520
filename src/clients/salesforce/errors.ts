import { BanyanError, errorMessage, type Stage } from '../../core';

/**
 * Salesforce `errorCode`s worth trying again: the platform is busy, a row is locked, or the org
 * is over a rate limit. Everything else (MALFORMED_QUERY, INVALID_FIELD, validation…) fails the
 * same way every time. Retriability is decided from these codes and the HTTP status only, never
 * from message text.
 */
const RETRIABLE_ERROR_CODES = new Set([
  'REQUEST_LIMIT_EXCEEDED',
  'SERVER_UNAVAILABLE',
  'UNKNOWN_EXCEPTION',
  'UNABLE_TO_LOCK_ROW',
  'QUERY_TIMEOUT',
  'INVALID_SESSION_ID',
]);

/** HTTP statuses that are transient whatever the body says (420: Salesforce edge routing). */
const RETRIABLE_STATUSES = new Set([408, 420, 429, 500, 502, 503, 504]);

/** Node / node-fetch error codes of a connection that failed or dropped. */
const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND',
  'ENETDOWN', 'ENETUNREACH', 'EHOSTDOWN', 'EHOSTUNREACH', 'UND_ERR_SOCKET',
]);

export interface SalesforceErrorDetails {
  /** Salesforce's errorCode (`REQUEST_LIMIT_EXCEEDED`…), a network code, or `ERROR_HTTP_<status>`. */
  errorCode: string;
  /** HTTP status of the failing response, when there was one. */
  status?: number;
}

/** A failed Salesforce call, with what to do about it. */
export class SalesforceError extends BanyanError {
  readonly errorCode: string;
  readonly status: number | undefined;

  constructor(message: string, details: SalesforceErrorDetails, options: { retriable: boolean; stage: Stage; context?: Record<string, unknown>; cause?: unknown }) {
    super(message, { ...options, code: details.errorCode });
    this.errorCode = details.errorCode;
    this.status = details.status;
  }

  /** The org (or the user) is over an API limit: wait longer than for a blip. */
  get rateLimited(): boolean {
    return this.errorCode === 'REQUEST_LIMIT_EXCEEDED' || this.status === 429;
  }

  /** The session ended: log in again before retrying. */
  get sessionExpired(): boolean {
    return this.errorCode === 'INVALID_SESSION_ID' || this.status === 401;
  }
}

/**
 * Turns whatever jsforce threw into a SalesforceError. `status` is the HTTP status the client's
 * transport saw for the call (jsforce's errors do not carry it).
 */
export function classifySalesforceError(error: unknown, status: number | undefined, what: string, stage: Stage = 'receiving'): SalesforceError {
  if (error instanceof SalesforceError) return error;
  const raw = (error ?? {}) as { errorCode?: unknown; code?: unknown; name?: unknown; type?: unknown };
  const message = `${what}: ${errorMessage(error)}`;
  const networkCode = typeof raw.code === 'string' && NETWORK_CODES.has(raw.code) ? raw.code : undefined;
  // node-fetch's AbortError: the request outlived its timeout.
  const timedOut = raw.name === 'AbortError' || raw.type === 'aborted' || raw.type === 'request-timeout';
  if (networkCode || timedOut) {
    return new SalesforceError(message, { errorCode: networkCode ?? 'REQUEST_TIMEOUT' }, { retriable: true, stage, cause: error });
  }
  const errorCode = typeof raw.errorCode === 'string' && raw.errorCode !== '' ? raw.errorCode : status !== undefined ? `ERROR_HTTP_${status}` : 'UNKNOWN';
  const retriable = RETRIABLE_ERROR_CODES.has(errorCode) || (status !== undefined && RETRIABLE_STATUSES.has(status));
  return new SalesforceError(message, { errorCode, ...(status !== undefined ? { status } : {}) }, { retriable, stage, cause: error });
}

/**
 * A Bayeux (CometD) error string, `code:args:message` as in `400::The replayId {5} you provided was
 * invalid…`. CometD answers carry no Salesforce errorCode, only this string.
 */
export interface BayeuxError {
  code: number | null;
  args: string[];
  message: string;
}

export function parseBayeuxError(text: unknown): BayeuxError {
  const value = typeof text === 'string' ? text : '';
  const match = /^(\d{3}):([^:]*):(.*)$/s.exec(value);
  if (!match) return { code: null, args: [], message: value };
  return { code: Number(match[1]), args: match[2] ? match[2].split(',') : [], message: match[3] ?? '' };
}

/**
 * Whether a failed `/meta/subscribe` says the replayId is no longer (or not yet) retained. The
 * Streaming API answers `400::The replayId {N} you provided was invalid…` and has no finer code,
 * so this one answer is recognised by its documented wording.
 */
export function isInvalidReplayId(error: BayeuxError): boolean {
  return error.code === 400 && /\breplayId\s*\{?-?\d+\}?.*\binvalid\b/i.test(error.message);
}

/** Whether a CometD answer reports an invalid session (`401::Authentication invalid`, or a denied handshake for that reason). */
export function isAuthenticationFailure(message: { error?: unknown; ext?: { sfdc?: { failureReason?: unknown } } }): boolean {
  const error = parseBayeuxError(message.error);
  const reason = parseBayeuxError(message.ext?.sfdc?.failureReason);
  return error.code === 401 || reason.code === 401;
}
