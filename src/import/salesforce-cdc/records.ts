import { Headers, type Json, type Operation, type SourceRecord } from '../../core';
import type { ChangeEvent, ChangeEventHeader } from './event';
import { changedOnly, enrichedOnly, flattenEventFields, modstampOf, rowFields, withEmptyFields, type ObjectShape } from './fields';
import { SALESFORCE_SCHEMAS, type ChangeHeaderValue, type ChangeOp, type FieldValue, type SalesforceChangeValue } from './schema';

/** Where the records of one source go and how they are positioned. */
export interface RecordTarget {
  topic: string;
  shape: ObjectShape;
}

/** The position written with a batch: the last event's replayId and commit time (see docs/salesforce-cdc.md). */
export interface CdcOffset {
  replayId: number;
  commitTimestamp: number | null;
  /** The channel the replayId belongs to (replayIds are per channel); absent in offsets written before it was stored. */
  channel: string;
  [key: string]: Json;
}

const OPS: Record<string, ChangeOp> = { CREATE: 'create', UPDATE: 'update', DELETE: 'delete', UNDELETE: 'undelete' };

/** The `banyan.operation` header, in the vocabulary every topic shares. */
const OPERATION: Record<ChangeOp, Operation> = { create: 'insert', undelete: 'insert', update: 'update', delete: 'delete', reconciled: 'reconciled' };

export function headerValue(h: ChangeEventHeader): ChangeHeaderValue {
  return {
    changeType: h.changeType,
    changeOrigin: h.changeOrigin,
    transactionKey: h.transactionKey,
    sequenceNumber: h.sequenceNumber,
    commitTimestamp: BigInt(h.commitTimestamp),
    commitNumber: h.commitNumber,
    commitUser: h.commitUser,
  };
}

/** The header of records re-read after an expired replayId: no event stands behind them. */
export function rereadHeader(): ChangeHeaderValue {
  return { changeType: 'REPLAY_EXPIRED', changeOrigin: null, transactionKey: null, sequenceNumber: null, commitTimestamp: null, commitNumber: null, commitUser: null };
}

function record(target: RecordTarget, value: SalesforceChangeValue): SourceRecord {
  const time = value.header.commitTimestamp === null ? undefined : Number(value.header.commitTimestamp);
  return {
    topic: target.topic,
    key: { Id: value.recordId },
    value: value as unknown as Record<string, unknown>,
    schema: SALESFORCE_SCHEMAS,
    ...(time !== undefined ? { timestamp: time } : {}),
    headers: {
      [Headers.origin]: 'salesforce',
      [Headers.operation]: OPERATION[value.op],
      ...(value.replayId !== null ? { [Headers.sourcePosition]: String(value.replayId) } : {}),
      ...(time !== undefined ? { [Headers.changeTime]: new Date(time).toISOString() } : {}),
      ...(value.echo ? { [Headers.echo]: 'true' } : {}),
    },
  };
}

/**
 * The records of a CREATE, UPDATE, DELETE or UNDELETE event: one per record id (Salesforce merges
 * the same change to several records of one transaction into one event). UPDATE keeps the changed
 * fields plus the channel's enriched fields; DELETE only the enriched fields; CREATE and UNDELETE
 * name the fields the event left out as empty.
 */
export function eventRecords(event: ChangeEvent, target: RecordTarget, echo: boolean): SourceRecord[] {
  const h = event.header;
  const op = OPS[h.changeType];
  if (!op) throw new Error(`eventRecords got a ${h.changeType} event`);
  const flat = flattenEventFields(event.payload, target.shape);
  const { fields, nulled } = op === 'update'
    ? withEnriched(changedOnly(flat, h.changedFields, h.nulledFields, target.shape), enrichedOnly(flat, h.changedFields))
    : { fields: op === 'delete' ? enrichedOnly(flat, []) : withEmptyFields(flat, target.shape), nulled: [] };
  const header = headerValue(h);
  return h.recordIds.map((recordId) =>
    record(target, {
      op, entity: h.entityName, recordId, fields,
      changedFields: h.changedFields, nulledFields: nulled, diffFields: h.diffFields,
      header, replayId: BigInt(event.replayId), echo, reconciled: false,
    }),
  );
}

/** The changed fields with the enriched ones beside them; changedFields and nulledFields stay as they are. */
function withEnriched(changed: { fields: Record<string, FieldValue>; nulled: string[] }, enriched: Record<string, FieldValue>) {
  return { fields: { ...enriched, ...changed.fields }, nulled: changed.nulled };
}

/** What made a record be re-read: the GAP_* / GAP_OVERFLOW event, or an expired replayId (no event). */
export interface ReconcileTrigger {
  header: ChangeHeaderValue;
  replayId: number | null;
  echo: boolean;
}

/**
 * A record read through the REST API, as a full `reconciled` record; a row found deleted
 * (IsDeleted, from queryAll) is a `delete`. Its commitTimestamp is the row's SystemModstamp: the
 * version of the record this state is.
 */
export function reconciledRecord(entity: string, row: Record<string, unknown>, trigger: ReconcileTrigger, target: RecordTarget): SourceRecord {
  const deleted = row.IsDeleted === true;
  const modstamp = modstampOf(row);
  const fields: Record<string, FieldValue> = deleted ? {} : rowFields(row, target.shape);
  return record(target, {
    op: deleted ? 'delete' : 'reconciled', entity, recordId: String(row.Id), fields,
    changedFields: [], nulledFields: [], diffFields: [],
    header: { ...trigger.header, ...(modstamp !== undefined ? { commitTimestamp: BigInt(modstamp) } : {}) },
    replayId: trigger.replayId === null ? null : BigInt(trigger.replayId), echo: trigger.echo, reconciled: true,
  });
}

/** A record a GAP_* event named that queryAll no longer finds (purged from the recycle bin): a delete. */
export function vanishedRecord(entity: string, recordId: string, trigger: ReconcileTrigger, target: RecordTarget): SourceRecord {
  return record(target, {
    op: 'delete', entity, recordId, fields: {}, changedFields: [], nulledFields: [], diffFields: [],
    header: trigger.header, replayId: trigger.replayId === null ? null : BigInt(trigger.replayId), echo: trigger.echo, reconciled: true,
  });
}
