import { parseDateTime } from './clock.js';
import type { FieldValues } from './coerce.js';
import { fieldValue, toApiRecord } from './format.js';
import { normalizeId } from './ids.js';
import type { FieldDef, ObjectDef, Schema } from './schema.js';
import { type Condition, type Expr, type Literal, type NameRef, parseSoql, soqlError } from './soql-parser.js';
import type { Store } from './store.js';

export interface SoqlResult {
  totalSize: number;
  records: Record<string, unknown>[];
}

const TEXT_TYPES = new Set(['string', 'email', 'phone', 'url', 'textarea', 'picklist']);
const NUMBER_TYPES = new Set(['double', 'currency', 'int']);
const MAX_OFFSET = 2000;

type Comparable = string | number | boolean | null;
type Predicate = (record: Readonly<FieldValues>) => boolean;

/** Runs a query against the store: parse, resolve names against the schema, filter, sort, slice. */
export function runSoql(schema: Schema, store: Store, soql: string, includeDeleted: boolean, version: string): SoqlResult {
  const query = parseSoql(soql);
  const def = schema.object(query.from.name);
  if (!def) {
    throw soqlError(soql, query.from.pos, 'INVALID_TYPE', `sObject type '${query.from.name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.`);
  }
  const resolve = (ref: NameRef): FieldDef => resolveField(soql, def, ref);
  const selected = query.select.kind === 'fields' ? query.select.fields.map(resolve) : [];
  const seen = new Set<string>();
  for (const [i, field] of selected.entries()) {
    if (seen.has(field.name)) {
      const ref = query.select.kind === 'fields' ? query.select.fields[i] : undefined;
      throw soqlError(soql, ref?.pos ?? 0, 'MALFORMED_QUERY', `duplicate field selected: ${field.name}`);
    }
    seen.add(field.name);
  }
  const predicate = query.where ? compile(soql, def, query.where) : () => true;
  const order = query.orderBy.map((item) => ({ ...item, def: resolve(item.field) }));
  if (query.offset !== undefined && query.offset > MAX_OFFSET) {
    throw soqlError(soql, 0, 'NUMBER_OUTSIDE_VALID_RANGE', `Maximum SOQL offset allowed is ${MAX_OFFSET}`);
  }

  let rows = store.records(def, includeDeleted).filter(predicate);
  if (order.length > 0) {
    rows = [...rows].sort((a, b) => {
      for (const item of order) {
        const diff = compareForSort(sortKey(def, a, item.def), sortKey(def, b, item.def), item);
        if (diff !== 0) return diff;
      }
      return 0;
    });
  }
  const start = query.offset ?? 0;
  rows = rows.slice(start, query.limit === undefined ? undefined : start + query.limit);
  if (query.select.kind === 'count') return { totalSize: rows.length, records: [] };
  return { totalSize: rows.length, records: rows.map((r) => toApiRecord(def, r, selected, version)) };
}

function resolveField(soql: string, def: ObjectDef, ref: NameRef): FieldDef {
  const field = def.field(ref.name);
  if (field) return field;
  if (ref.name.includes('.')) {
    throw soqlError(soql, ref.pos, 'INVALID_FIELD', `Didn't understand relationship '${ref.name.split('.')[0]}' in field path. The Salesforce API emulator does not support relationship queries.`);
  }
  throw soqlError(soql, ref.pos, 'INVALID_FIELD', `No such column '${ref.name}' on entity '${def.name}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.`);
}

function sortKey(def: ObjectDef, record: Readonly<FieldValues>, field: FieldDef): Comparable {
  const value = fieldValue(def, record, field);
  if (value === null || value === undefined) return null;
  if (field.type === 'datetime') return parseDateTime(value as string);
  if (typeof value === 'string') return value.toLowerCase();
  return value as Comparable;
}

/** Nulls go first or last as NULLS FIRST/LAST says, whatever the direction of the other values. */
function compareForSort(a: Comparable, b: Comparable, order: { descending: boolean; nullsFirst: boolean }): number {
  if (a === null || b === null) {
    if (a === b) return 0;
    return (a === null) === order.nullsFirst ? -1 : 1;
  }
  const diff = a < b ? -1 : a > b ? 1 : 0;
  return order.descending ? -diff : diff;
}

function compile(soql: string, def: ObjectDef, expr: Expr): Predicate {
  switch (expr.kind) {
    case 'and': {
      const parts = expr.operands.map((e) => compile(soql, def, e));
      return (r) => parts.every((p) => p(r));
    }
    case 'or': {
      const parts = expr.operands.map((e) => compile(soql, def, e));
      return (r) => parts.some((p) => p(r));
    }
    case 'not': {
      const inner = compile(soql, def, expr.operand);
      return (r) => !inner(r);
    }
    default:
      return compileCondition(soql, def, expr);
  }
}

function compileCondition(soql: string, def: ObjectDef, cond: Condition): Predicate {
  const field = resolveField(soql, def, cond.field);
  if (field.type === 'address' || field.type === 'textarea') {
    throw soqlError(soql, cond.field.pos, 'INVALID_FIELD', `field '${field.name}' can not be filtered in a query call`);
  }
  const read = (r: Readonly<FieldValues>): Comparable => comparable(field, fieldValue(def, r, field));
  switch (cond.kind) {
    case 'compare': {
      const value = literalFor(soql, field, cond.value, cond.valuePos);
      if (value === null && cond.op !== '=' && cond.op !== '!=') {
        throw soqlError(soql, cond.valuePos, 'MALFORMED_QUERY', `null may only be compared with = or !=`);
      }
      return (r) => compareValues(read(r), cond.op, value);
    }
    case 'in': {
      const values = cond.values.map((v) => literalFor(soql, field, v, cond.valuePos));
      return (r) => values.some((v) => read(r) === v) !== cond.negated;
    }
    case 'like': {
      if (!TEXT_TYPES.has(field.type)) {
        throw soqlError(soql, cond.field.pos, 'INVALID_FIELD', `invalid operator on ${field.type} field: LIKE`);
      }
      const pattern = likeToRegExp(cond.pattern);
      return (r) => {
        const value = read(r);
        return typeof value === 'string' && pattern.test(value);
      };
    }
  }
}

/** Text compares case-insensitively in SOQL; ids compare in their 18-character form; datetimes as instants. */
function comparable(field: FieldDef, value: unknown): Comparable {
  if (value === null || value === undefined) return null;
  if (field.type === 'datetime') return parseDateTime(value as string);
  if (typeof value === 'string' && field.type !== 'id' && field.type !== 'reference') return value.toLowerCase();
  return value as Comparable;
}

function literalFor(soql: string, field: FieldDef, literal: Literal, pos: number): Comparable {
  if (literal.type === 'null') return null;
  const mismatch = (expected: string, quoted: boolean) =>
    soqlError(soql, pos, 'INVALID_QUERY_FILTER_OPERATOR', `value of filter criterion for field '${field.name}' must be of type ${expected} and should ${quoted ? '' : 'not '}be enclosed in quotes`);
  if (field.type === 'id' || field.type === 'reference') {
    if (literal.type !== 'string') throw mismatch('id', true);
    const id = normalizeId(literal.value);
    if (!id) throw soqlError(soql, pos, 'INVALID_QUERY_FILTER_OPERATOR', `invalid ID field: ${literal.value}`);
    return id;
  }
  if (TEXT_TYPES.has(field.type)) {
    if (literal.type !== 'string') throw mismatch('string', true);
    return literal.value.toLowerCase();
  }
  if (NUMBER_TYPES.has(field.type)) {
    if (literal.type !== 'number') throw mismatch(field.type, false);
    return literal.value;
  }
  if (field.type === 'boolean') {
    if (literal.type !== 'boolean') throw mismatch('boolean', false);
    return literal.value;
  }
  if (field.type === 'date') {
    if (literal.type !== 'date') throw mismatch('date', false);
    return literal.value;
  }
  if (literal.type !== 'datetime') throw mismatch('dateTime', false);
  return literal.value;
}

function compareValues(actual: Comparable, op: string, expected: Comparable): boolean {
  if (op === '=') return actual === expected;
  if (op === '!=') return actual !== expected;
  // An ordering comparison never matches a null field, as in SQL.
  if (actual === null || expected === null) return false;
  switch (op) {
    case '<': return actual < expected;
    case '<=': return actual <= expected;
    case '>': return actual > expected;
    default: return actual >= expected;
  }
}

function likeToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern.charAt(i);
    if (ch === '\\' && i + 1 < pattern.length) { source += pattern.charAt(++i).replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); continue; }
    if (ch === '%') source += '.*';
    else if (ch === '_') source += '.';
    else source += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 'is');
}
