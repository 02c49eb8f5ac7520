import { BadRecordError } from '../../core';

/** What the Streaming API delivers on a change-event channel. */
export interface RawChangeMessage {
  schema?: string;
  payload?: Record<string, unknown>;
  event?: { replayId?: unknown };
}

export const CHANGE_TYPES = [
  'CREATE', 'UPDATE', 'DELETE', 'UNDELETE',
  'GAP_CREATE', 'GAP_UPDATE', 'GAP_DELETE', 'GAP_UNDELETE', 'GAP_OVERFLOW',
] as const;
export type ChangeType = (typeof CHANGE_TYPES)[number];

export interface ChangeEventHeader {
  entityName: string;
  recordIds: string[];
  changeType: ChangeType;
  changeOrigin: string | null;
  transactionKey: string | null;
  sequenceNumber: number | null;
  commitTimestamp: number;
  /** Exact, or null: see commitNumberOf. */
  commitNumber: bigint | null;
  commitUser: string | null;
  changedFields: string[];
  nulledFields: string[];
  diffFields: string[];
}

/** A change event whose envelope and header were checked; the payload fields are converted later. */
export interface ChangeEvent {
  replayId: number;
  header: ChangeEventHeader;
  payload: Record<string, unknown>;
}

const bad = (message: string, code: string) => new BadRecordError(message, { stage: 'processing', code });

function strings(value: unknown, name: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw bad(`ChangeEventHeader.${name} is not a list of strings`, 'MALFORMED_EVENT');
  return value as string[];
}

const optionalString = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const optionalNumber = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * commitNumber is a diagnostic system change number (a long). JSON.parse rounds a number beyond
 * 2^53, and the streaming client parses before Banyan sees it, so such a value cannot be known
 * exactly: it becomes null rather than a wrong number. Nothing in Banyan depends on it.
 */
export function commitNumberOf(v: unknown): bigint | null {
  const exact = typeof v === 'bigint' ? v
    : typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v)
      : typeof v === 'string' && /^-?\d{1,19}$/.test(v) ? BigInt(v) : null;
  return exact !== null && BigInt.asIntN(64, exact) === exact ? exact : null;
}

/** A 15- or 18-character Salesforce id (also what keeps event data from reaching SOQL unchecked). */
export function isSalesforceId(id: string): boolean {
  return /^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$/.test(id);
}

/** The replayId of a message, or undefined when it has none (such a message cannot be positioned). */
export function replayIdOf(message: RawChangeMessage): number | undefined {
  const id = message?.event?.replayId;
  return typeof id === 'number' && Number.isSafeInteger(id) ? id : undefined;
}

/**
 * Checks one Streaming API message and reads its ChangeEventHeader. Throws BadRecordError (the
 * event goes to the dead-letter topic) when it is not a change event of `entity`.
 */
export function parseChangeEvent(message: RawChangeMessage, entity: string): ChangeEvent {
  const replayId = replayIdOf(message);
  if (replayId === undefined) throw bad('the event has no numeric event.replayId', 'MALFORMED_EVENT');
  const payload = message.payload;
  if (!payload || typeof payload !== 'object') throw bad('the event has no payload', 'MALFORMED_EVENT');
  const h = payload.ChangeEventHeader as Record<string, unknown> | undefined;
  if (!h || typeof h !== 'object') throw bad('the event has no ChangeEventHeader', 'MALFORMED_EVENT');
  const changeType = h.changeType;
  if (typeof changeType !== 'string' || !(CHANGE_TYPES as readonly string[]).includes(changeType)) {
    throw bad(`unknown changeType ${JSON.stringify(changeType)}`, 'UNKNOWN_CHANGE_TYPE');
  }
  if (h.entityName !== entity) throw bad(`an event of ${String(h.entityName)} on the ${entity} channel`, 'UNEXPECTED_ENTITY');
  const recordIds = strings(h.recordIds, 'recordIds');
  if (recordIds.length === 0 && changeType !== 'GAP_OVERFLOW') throw bad(`a ${changeType} event without recordIds`, 'MALFORMED_EVENT');
  const wrongId = recordIds.find((id) => !isSalesforceId(id));
  if (wrongId !== undefined) throw bad(`recordIds holds ${JSON.stringify(wrongId.slice(0, 40))}, not a Salesforce id`, 'MALFORMED_EVENT');
  const commitTimestamp = optionalNumber(h.commitTimestamp);
  if (commitTimestamp === null) throw bad('ChangeEventHeader.commitTimestamp is missing', 'MALFORMED_EVENT');
  return {
    replayId,
    payload,
    header: {
      entityName: entity,
      recordIds,
      changeType: changeType as ChangeType,
      changeOrigin: optionalString(h.changeOrigin),
      transactionKey: optionalString(h.transactionKey),
      sequenceNumber: optionalNumber(h.sequenceNumber),
      commitTimestamp,
      commitNumber: commitNumberOf(h.commitNumber),
      commitUser: optionalString(h.commitUser),
      changedFields: strings(h.changedFields, 'changedFields'),
      nulledFields: strings(h.nulledFields, 'nulledFields'),
      diffFields: strings(h.diffFields, 'diffFields'),
    },
  };
}

/**
 * Whether a change was made by Banyan: its changeOrigin names our client id, as in
 * `com/salesforce/api/rest/62.0;client=banyan` (Salesforce may end the value with a `/`).
 */
export function isEcho(changeOrigin: string | null, clientId: string): boolean {
  if (!changeOrigin) return false;
  for (const part of changeOrigin.split(';').slice(1)) {
    const [key, value] = part.split('=').map((s) => s.trim());
    if (key === 'client' && value?.replace(/\/$/, '') === clientId) return true;
  }
  return false;
}
