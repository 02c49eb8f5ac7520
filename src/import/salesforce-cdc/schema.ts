/**
 * Avro schemas of `salesforce.<SObject>` topics. One schema serves every SObject: field values sit
 * in a map, so a field added in Salesforce is no schema change. Longs are BigInt (runtime/avro.ts).
 */

/** The key: the record's 18-character id, so one record's changes stay in one partition, in order. */
export const SALESFORCE_KEY_SCHEMA = {
  type: 'record',
  name: 'SalesforceKey',
  namespace: 'banyan.salesforce',
  fields: [{ name: 'Id', type: 'string', doc: '18-character Salesforce record id' }],
} as const;

/** A field value as Salesforce sends it in JSON: text, number, boolean or null (set to null). */
export type FieldValue = string | number | boolean | null;

/** What happened to the record: a CDC change type, or a full record read through the REST API. */
export type ChangeOp = 'create' | 'update' | 'delete' | 'undelete' | 'reconciled';

export const SALESFORCE_CHANGE_SCHEMA = {
  type: 'record',
  name: 'SalesforceChange',
  namespace: 'banyan.salesforce',
  doc: 'One record change from Salesforce Change Data Capture, or a record re-read through the REST API (reconciled)',
  fields: [
    { name: 'op', type: 'string', doc: 'create | update | delete | undelete | reconciled (a full record read through REST after a GAP_* event, a GAP_OVERFLOW or an expired replayId)' },
    { name: 'entity', type: 'string', doc: 'SObject API name, e.g. Contact' },
    { name: 'recordId', type: 'string' },
    {
      name: 'fields',
      type: { type: 'map', values: ['null', 'boolean', 'double', 'string'] },
      doc: 'Field values by API name; compound components flattened with dots (MailingAddress.City, Name.LastName). update: the changed fields (a null value means set to null, an absent field means unchanged) plus the channel’s enriched fields (unchanged, never null, not in changedFields). create, undelete, reconciled: every field. delete: the channel’s enriched fields, if any.',
    },
    { name: 'changedFields', type: { type: 'array', items: 'string' }, default: [], doc: 'update: the fields that changed (CDC changedFields); enriched fields are not named here unless they changed' },
    { name: 'nulledFields', type: { type: 'array', items: 'string' }, default: [], doc: 'update: the changed fields set to null (null values under changedFields; CometD headers have no nulledFields)' },
    { name: 'diffFields', type: { type: 'array', items: 'string' }, default: [], doc: 'the header diffFields (Pub/Sub API only; empty over CometD)' },
    {
      name: 'header',
      type: {
        type: 'record',
        name: 'ChangeHeader',
        doc: 'The ChangeEventHeader of the event this record came from (for re-reads after an expired replayId: changeType REPLAY_EXPIRED, the rest null)',
        fields: [
          { name: 'changeType', type: 'string', doc: 'CREATE, UPDATE, DELETE, UNDELETE, GAP_*, GAP_OVERFLOW, or REPLAY_EXPIRED' },
          { name: 'changeOrigin', type: ['null', 'string'], default: null },
          { name: 'transactionKey', type: ['null', 'string'], default: null },
          { name: 'sequenceNumber', type: ['null', 'int'], default: null },
          { name: 'commitTimestamp', type: ['null', { type: 'long', logicalType: 'timestamp-millis' }], default: null, doc: 'for reconciled records: the record’s SystemModstamp' },
          { name: 'commitNumber', type: ['null', 'long'], default: null, doc: 'diagnostic system change number; null when the event’s JSON number was beyond 2^53 (rounded by JSON.parse)' },
          { name: 'commitUser', type: ['null', 'string'], default: null },
        ],
      },
    },
    { name: 'replayId', type: ['null', 'long'], default: null, doc: 'replayId of the event; null for re-reads after an expired replayId' },
    { name: 'echo', type: 'boolean', default: false, doc: 'the change was made by Banyan itself (changeOrigin client= Banyan’s client id); transforms drop echoes' },
    { name: 'reconciled', type: 'boolean', default: false, doc: 'the record was read through the REST API rather than taken from an event' },
  ],
} as const;

export interface ChangeHeaderValue {
  changeType: string;
  changeOrigin: string | null;
  transactionKey: string | null;
  sequenceNumber: number | null;
  commitTimestamp: bigint | null;
  commitNumber: bigint | null;
  commitUser: string | null;
}

/** The Avro value of one record of a `salesforce.<SObject>` topic. */
export interface SalesforceChangeValue {
  op: ChangeOp;
  entity: string;
  recordId: string;
  fields: Record<string, FieldValue>;
  changedFields: string[];
  nulledFields: string[];
  diffFields: string[];
  header: ChangeHeaderValue;
  replayId: bigint | null;
  echo: boolean;
  reconciled: boolean;
}

export const SALESFORCE_SCHEMAS = { key: SALESFORCE_KEY_SCHEMA, value: SALESFORCE_CHANGE_SCHEMA };
