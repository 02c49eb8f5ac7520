import { ApiError, notFound, type RecordErrorBody } from './errors.js';
import { upsertKeys } from './external-id.js';
import { toApiRecord } from './format.js';
import { type EmulatorResponse, expectObject, json, parseJsonBody } from './http.js';
import { normalizeId } from './ids.js';
import type { Org } from './org.js';
import type { RestCall } from './rest.js';
import type { ObjectDef } from './schema.js';
import { methodNotAllowed, objectOrNotFound, selectFields } from './sobjects.js';
import type { Transaction } from './store.js';

const MAX_RECORDS = 200;
const MAX_RETRIEVE_IDS = 2000;

interface SaveResult {
  id?: string;
  success: boolean;
  errors: RecordErrorBody[];
  created?: boolean;
}

const ROLLED_BACK: RecordErrorBody = {
  statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK',
  message: 'Record rolled back because not all records were valid and the request was using AllOrNone header',
  fields: [],
};

/** One record's write; throws ApiError for a record-level failure. */
type RecordOperation = (tx: Transaction) => Omit<SaveResult, 'success' | 'errors'>;

/** `composite/sobjects[/{type}[/{externalIdField}]]`: sObject Collections. */
export function handleCollections(org: Org, call: RestCall): EmulatorResponse {
  const [, , typeName, extField, ...extra] = call.segments;
  if (extra.length > 0) throw notFound();
  if (typeName === undefined) {
    switch (call.method) {
      case 'POST': return create(org, call);
      case 'PATCH': return update(org, call);
      case 'DELETE': return remove(org, call);
      default: throw methodNotAllowed(call.method, ['POST', 'PATCH', 'DELETE']);
    }
  }
  const def = objectOrNotFound(org, typeName);
  if (extField !== undefined) {
    if (call.method !== 'PATCH') throw methodNotAllowed(call.method, ['PATCH']);
    return upsert(org, call, def, extField);
  }
  if (call.method === 'GET') return retrieve(org, call, def, splitList(call.query.get('ids')), call.query.get('fields'));
  if (call.method !== 'POST') throw methodNotAllowed(call.method, ['GET', 'POST']);
  const body = expectObject(parseJsonBody(call.body), 'the request');
  const ids = Array.isArray(body.ids) ? body.ids.map(String) : [];
  const fields = Array.isArray(body.fields) ? body.fields.map(String).join(',') : null;
  return retrieve(org, call, def, ids, fields);
}

function splitList(value: string | null): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

function readBatch(call: RestCall): { allOrNone: boolean; records: Record<string, unknown>[] } {
  const body = expectObject(parseJsonBody(call.body), 'the request');
  if (!Array.isArray(body.records)) throw new ApiError(400, 'JSON_PARSER_ERROR', 'The request must contain a records array');
  if (body.records.length > MAX_RECORDS) throw tooMany();
  return { allOrNone: body.allOrNone === true, records: body.records.map((r) => expectObject(r, 'a record')) };
}

const tooMany = (): ApiError =>
  new ApiError(400, 'EXCEEDED_ID_LIMIT', `record limit reached. cannot submit more than ${MAX_RECORDS} records into this call`);

/** The record's object, from its `attributes.type`, which collections require on every record. */
function typeOf(org: Org, record: Record<string, unknown>): ObjectDef {
  const attributes = record.attributes as { type?: unknown } | undefined;
  if (typeof attributes?.type !== 'string') throw new ApiError(400, 'INVALID_TYPE', 'Must send a concrete entity type.');
  const def = org.schema.object(attributes.type);
  if (!def) throw new ApiError(400, 'INVALID_TYPE', `sObject type '${attributes.type}' is not supported.`);
  return def;
}

/**
 * Runs the operations in request order inside one transaction. With allOrNone a single failure rolls
 * back everything, and each record that did not fail on its own reports ALL_OR_NONE_OPERATION_ROLLED_BACK.
 */
function runAll(org: Org, call: RestCall, allOrNone: boolean, operations: RecordOperation[]): EmulatorResponse {
  const results: SaveResult[] = [];
  const rollback = new Error('allOrNone rollback');
  try {
    org.transact(call.changeOrigin, (tx) => {
      for (const operation of operations) {
        try {
          results.push({ ...operation(tx), success: true, errors: [] });
        } catch (err) {
          if (!(err instanceof RecordFailure)) throw err;
          results.push({ ...(err.id ? { id: err.id } : {}), success: false, errors: [err.cause.toRecordError()] });
        }
      }
      if (allOrNone && results.some((r) => !r.success)) throw rollback;
    });
  } catch (err) {
    if (err !== rollback) throw err;
    return json(200, results.map((r) => (r.success ? { ...(r.id ? { id: r.id } : {}), success: false, errors: [ROLLED_BACK] } : r)));
  }
  return json(200, results);
}

/** A record-level failure, with the record's id when known so the result can name it. */
class RecordFailure extends Error {
  constructor(override readonly cause: ApiError, readonly id?: string) {
    super(cause.message);
  }
}

function attempt<T>(id: string | undefined, work: () => T): T {
  try {
    return work();
  } catch (err) {
    if (err instanceof ApiError) throw new RecordFailure(err, id);
    throw err;
  }
}

function create(org: Org, call: RestCall): EmulatorResponse {
  const { allOrNone, records } = readBatch(call);
  const defs = records.map((r) => typeOf(org, r));
  return runAll(org, call, allOrNone, records.map((record, i) => (tx) => {
    if ('id' in record || 'Id' in record) {
      throw new RecordFailure(new ApiError(400, 'INVALID_FIELD', 'cannot specify Id in an insert call', ['Id']));
    }
    return { id: attempt(undefined, () => org.store.create(tx, defs[i] as ObjectDef, record)) };
  }));
}

function update(org: Org, call: RestCall): EmulatorResponse {
  const { allOrNone, records } = readBatch(call);
  const defs = records.map((r) => typeOf(org, r));
  return runAll(org, call, allOrNone, records.map((record, i) => (tx) => {
    const { id: lowerId, Id: upperId, ...fields } = record;
    const rawId = String(upperId ?? lowerId ?? '');
    const id = normalizeId(rawId);
    if (!id) throw new RecordFailure(new ApiError(400, 'MALFORMED_ID', `malformed id ${rawId}`, ['Id']));
    attempt(id, () => org.store.update(tx, defs[i] as ObjectDef, id, fields));
    return { id };
  }));
}

function upsert(org: Org, call: RestCall, def: ObjectDef, extFieldName: string): EmulatorResponse {
  const field = def.field(extFieldName);
  if (!field || !field.externalId) throw notFound(`Provided external ID field does not exist or is not accessible: ${extFieldName}`);
  const { allOrNone, records } = readBatch(call);
  for (const record of records) {
    if (typeOf(org, record) !== def) throw new ApiError(400, 'INVALID_TYPE', `All records must be of type ${def.name}`);
  }
  const keys = upsertKeys(field, records);
  return runAll(org, call, allOrNone, records.map((record, i) => (tx) => {
    const key = keys[i] as string | ApiError;
    if (key instanceof ApiError) throw new RecordFailure(key);
    return attempt(undefined, () => org.store.upsert(tx, def, field, key, record));
  }));
}

function remove(org: Org, call: RestCall): EmulatorResponse {
  const ids = splitList(call.query.get('ids'));
  if (ids.length > MAX_RECORDS) throw tooMany();
  const allOrNone = call.query.get('allOrNone') === 'true';
  return runAll(org, call, allOrNone, ids.map((rawId) => (tx) => {
    const id = normalizeId(rawId);
    const def = id ? org.schema.byPrefix(id.slice(0, 3)) : undefined;
    if (!id || !def) throw new RecordFailure(new ApiError(400, 'MALFORMED_ID', `malformed id ${rawId}`, []), rawId);
    attempt(id, () => org.store.remove(tx, def, id));
    return { id };
  }));
}

/** Retrieve by ids: records in request order, null where an id matches no live record. */
function retrieve(org: Org, call: RestCall, def: ObjectDef, ids: string[], fieldsParam: string | null): EmulatorResponse {
  if (ids.length > MAX_RETRIEVE_IDS) throw new ApiError(400, 'EXCEEDED_ID_LIMIT', `cannot retrieve more than ${MAX_RETRIEVE_IDS} records in one call`);
  if (fieldsParam === null || fieldsParam.trim() === '') throw new ApiError(400, 'MISSING_ARGUMENT', 'fields must be specified');
  const fields = selectFields(def, fieldsParam);
  return json(200, ids.map((raw) => {
    const record = org.store.get(def, raw);
    return record && record.IsDeleted !== true ? toApiRecord(def, record, fields, call.version) : null;
  }));
}
