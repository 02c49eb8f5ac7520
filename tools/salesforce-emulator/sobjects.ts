import { describeGlobal, describeSObject, sobjectBasicInfo } from './describe.js';
import { ApiError, notFound } from './errors.js';
import { recordUrl, toApiRecord } from './format.js';
import { type EmulatorResponse, expectObject, json, parseJsonBody } from './http.js';
import { normalizeId } from './ids.js';
import type { Org } from './org.js';
import type { RestCall } from './rest.js';
import type { FieldDef, ObjectDef } from './schema.js';
import { AmbiguousExternalIdError } from './store.js';

/** The upsert answer carries `created` and updates answer 200 with a body from API version 46.0 on. */
const UPSERT_BODY_SINCE = 46;

export function methodNotAllowed(method: string, allowed: string[]): ApiError {
  return new ApiError(405, 'METHOD_NOT_ALLOWED', `HTTP Method '${method}' not allowed. Allowed are ${allowed.join(',')}`);
}

export function objectOrNotFound(org: Org, name: string): ObjectDef {
  const def = org.schema.object(name);
  if (!def) throw notFound();
  return def;
}

/** `?fields=A,B` as field definitions, or every field when absent. */
export function selectFields(def: ObjectDef, fieldsParam: string | null): FieldDef[] {
  if (fieldsParam === null || fieldsParam.trim() === '') return def.fields;
  return fieldsParam.split(',').map((raw) => {
    const name = raw.trim();
    const field = def.field(name);
    if (!field) {
      throw new ApiError(400, 'INVALID_FIELD', `No such column '${name}' on entity '${def.name}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.`, [name]);
    }
    return field;
  });
}

/** `sobjects`, `sobjects/{type}`, `sobjects/{type}/describe`, `sobjects/{type}/{id}` and `sobjects/{type}/{field}/{value}`. */
export function handleSObjects(org: Org, call: RestCall): EmulatorResponse {
  const [, typeName, third, fourth, ...extra] = call.segments;
  const base = `/services/data/v${call.version}`;
  if (typeName === undefined) {
    if (call.method !== 'GET') throw methodNotAllowed(call.method, ['GET']);
    return json(200, describeGlobal(org.schema, base));
  }
  const def = objectOrNotFound(org, typeName);
  if (extra.length > 0) throw notFound();
  if (third === undefined) {
    if (call.method === 'GET') return json(200, sobjectBasicInfo(def, base));
    if (call.method !== 'POST') throw methodNotAllowed(call.method, ['GET', 'POST']);
    const input = expectObject(parseJsonBody(call.body), 'the record');
    const id = org.transact(call.changeOrigin, (tx) => org.store.create(tx, def, input));
    return json(201, { id, success: true, errors: [] });
  }
  if (third === 'describe' && fourth === undefined) {
    if (call.method !== 'GET') throw methodNotAllowed(call.method, ['GET']);
    return json(200, describeSObject(def, base));
  }
  if (fourth === undefined) return byId(org, call, def, third);
  return byExternalId(org, call, def, third, decodeURIComponent(fourth));
}

function byId(org: Org, call: RestCall, def: ObjectDef, rawId: string): EmulatorResponse {
  const id = normalizeId(rawId);
  // A segment that is no id is read as an external id field name with its value missing.
  if (!id) throw notFound(`Provided external ID field does not exist or is not accessible: ${rawId}`);
  if (id.slice(0, 3) !== def.keyPrefix) throw new ApiError(400, 'MALFORMED_ID', `${def.label} ID: id value of incorrect type: ${rawId}`, ['Id']);
  switch (call.method) {
    case 'GET': {
      const fields = selectFields(def, call.query.get('fields'));
      return json(200, toApiRecord(def, org.store.requireActive(def, id), fields, call.version));
    }
    case 'PATCH': {
      const input = expectObject(parseJsonBody(call.body), 'the record');
      org.transact(call.changeOrigin, (tx) => org.store.update(tx, def, id, input));
      return { status: 204 };
    }
    case 'DELETE':
      org.transact(call.changeOrigin, (tx) => org.store.remove(tx, def, id));
      return { status: 204 };
    default:
      throw methodNotAllowed(call.method, ['GET', 'PATCH', 'DELETE']);
  }
}

function byExternalId(org: Org, call: RestCall, def: ObjectDef, fieldName: string, value: string): EmulatorResponse {
  const field = def.field(fieldName);
  if (!field || !field.externalId) throw notFound(`Provided external ID field does not exist or is not accessible: ${fieldName}`);
  const ambiguous = (ids: string[]) => json(300, ids.map((id) => recordUrl(call.version, def.name, id)));
  if (call.method === 'PATCH') {
    const input = expectObject(parseJsonBody(call.body), 'the record');
    let outcome: { id: string; created: boolean };
    try {
      outcome = org.transact(call.changeOrigin, (tx) => org.store.upsert(tx, def, field, value, input));
    } catch (err) {
      if (err instanceof AmbiguousExternalIdError) return ambiguous(err.matchedIds);
      throw err;
    }
    const recent = Number(call.version) >= UPSERT_BODY_SINCE;
    if (!outcome.created && !recent) return { status: 204 };
    const body = { id: outcome.id, success: true, errors: [], ...(recent ? { created: outcome.created } : {}) };
    return json(outcome.created ? 201 : 200, body);
  }
  if (call.method !== 'GET' && call.method !== 'DELETE') throw methodNotAllowed(call.method, ['GET', 'PATCH', 'DELETE']);
  const matches = org.store.findActiveBy(def, field, value);
  const [match, ...others] = matches;
  if (!match) throw notFound();
  if (others.length > 0) return ambiguous(matches.map((r) => r.Id as string));
  const id = match.Id as string;
  if (call.method === 'DELETE') {
    org.transact(call.changeOrigin, (tx) => org.store.remove(tx, def, id));
    return { status: 204 };
  }
  return json(200, toApiRecord(def, match, selectFields(def, call.query.get('fields')), call.version));
}
