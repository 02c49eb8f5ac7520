import { BadRecordError } from '../../core';
import type { FieldValue } from './schema';

/** The parts of a describe answer the source uses. */
export interface DescribeField {
  name: string;
  type: string;
  compoundFieldName?: string | null;
  /** Formula and roll-up fields: never in a change event. */
  calculated?: boolean;
}

/**
 * What the source knows of an SObject's fields: what to SELECT for a full record, and how REST
 * field names map to the dotted names CDC uses for compound components.
 */
export interface ObjectShape {
  object: string;
  /** Every field but compound parents (MailingAddress, Contact's Name), whose components are selected instead, and blobs. */
  selectFields: string[];
  /** REST name → dotted name for components (MailingCity → MailingAddress.City, LastName → Name.LastName). */
  flatName: Map<string, string>;
  /** Compound name → its components' dotted names, to expand a compound sent as a whole null. */
  compounds: Map<string, string[]>;
  /** The fields a CREATE or UNDELETE event would carry when set (dotted names), to name the empty ones. */
  eventFields: string[];
  datetimeFields: Set<string>;
}

/**
 * The component name CDC uses: an address component loses its prefix (MailingCity in
 * MailingAddress → City, BillingStreet → Street); a name component keeps its own (Name.FirstName).
 */
export function componentName(field: string, compound: string): string {
  const prefix = compound.endsWith('Address') ? compound.slice(0, -'Address'.length) : '';
  return compound.endsWith('Address') && field.startsWith(prefix) && field.length > prefix.length ? field.slice(prefix.length) : field;
}

const UNSELECTABLE = new Set(['address', 'location', 'base64']);
/** Left out of every change event ("Change Event Message Structure", Change Event Fields). */
const NEVER_IN_EVENTS = new Set(['Id', 'IsDeleted', 'SystemModstamp']);

export function objectShape(object: string, fields: DescribeField[]): ObjectShape {
  const parents = new Set(fields.map((f) => f.compoundFieldName).filter((c): c is string => !!c));
  const flatName = new Map<string, string>();
  const compounds = new Map<string, string[]>();
  for (const field of fields) {
    const compound = field.compoundFieldName;
    if (!compound || parents.has(field.name)) continue;
    const dotted = `${compound}.${componentName(field.name, compound)}`;
    flatName.set(field.name, dotted);
    compounds.set(compound, [...(compounds.get(compound) ?? []), dotted]);
  }
  return {
    object,
    // Compound parents come as their components; base64 (blob) fields can only be queried one record at a time.
    selectFields: fields.filter((f) => !parents.has(f.name) && !UNSELECTABLE.has(f.type)).map((f) => f.name),
    flatName,
    compounds,
    datetimeFields: new Set(fields.filter((f) => f.type === 'datetime').map((f) => f.name)),
    eventFields: fields
      .filter((f) => !parents.has(f.name) && !UNSELECTABLE.has(f.type) && !NEVER_IN_EVENTS.has(f.name) && !f.calculated)
      .map((f) => flatName.get(f.name) ?? f.name),
  };
}

function scalar(value: unknown, path: string): FieldValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  throw new BadRecordError(`field ${path} holds ${Array.isArray(value) ? 'an array' : typeof value}, not a value Banyan can carry`, {
    stage: 'processing',
    code: 'UNSUPPORTED_FIELD_VALUE',
    context: { field: path },
  });
}

/**
 * A change event's payload (without its header) as flat field values: nested compounds become
 * dotted names (`MailingAddress: {City}` → `MailingAddress.City`), and a compound sent as a whole
 * null becomes each of its known components set to null.
 */
export function flattenEventFields(payload: Record<string, unknown>, shape: ObjectShape): Record<string, FieldValue> {
  const flat: Record<string, FieldValue> = {};
  const visit = (value: unknown, path: string) => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [key, inner] of Object.entries(value as Record<string, unknown>)) visit(inner, `${path}.${key}`);
      return;
    }
    const components = value === null ? shape.compounds.get(path) : undefined;
    if (components) for (const component of components) flat[component] = null;
    else flat[path] = scalar(value, path);
  };
  for (const [key, value] of Object.entries(payload)) {
    if (key !== 'ChangeEventHeader') visit(value, key);
  }
  return flat;
}

/**
 * UPDATE: only what changed, and which of it was set to null. Keeps the fields named in
 * changedFields (a compound named there keeps all its components). Over CometD a field set to null
 * is only a null value under a name in changedFields (the header has no nulledFields); a Pub/Sub
 * header's nulledFields, if any, count too. Unchanged fields a payload lists as null (as Pub/Sub
 * does) are not in changedFields, so "set to null" and "unchanged" stay apart.
 */
export function changedOnly(flat: Record<string, FieldValue>, changed: string[], nulledInHeader: string[], shape: ObjectShape): { fields: Record<string, FieldValue>; nulled: string[] } {
  const wanted = (name: string) => changed.some((c) => name === c || name.startsWith(`${c}.`));
  const fields: Record<string, FieldValue> = {};
  for (const [name, value] of Object.entries(flat)) if (wanted(name) || changed.length === 0) fields[name] = value;
  for (const name of nulledInHeader) {
    const components = shape.compounds.get(name);
    if (components) for (const component of components) fields[component] = null;
    else fields[name] = null;
  }
  const nulled = changed.filter((name) => {
    const components = shape.compounds.get(name);
    return components ? components.every((c) => fields[c] === null) : name in fields && fields[name] === null;
  });
  for (const name of nulledInHeader) if (!nulled.includes(name)) nulled.push(name);
  return { fields, nulled };
}

/**
 * The enriched fields of an UPDATE or DELETE event: the values the payload carries beyond the
 * changed fields. A channel member's enriched fields are sent in every UPDATE and DELETE event
 * whether they changed or not, and are never named in changedFields ("Enrich Change Events with
 * Extra Fields"). Over CometD an empty enriched field is left out; the Pub/Sub API sends it, and
 * every unchanged field, as null, so only non-null values count: a null here never means "set to null".
 */
export function enrichedOnly(flat: Record<string, FieldValue>, changed: string[]): Record<string, FieldValue> {
  const isChanged = (name: string) => changed.some((c) => name === c || name.startsWith(`${c}.`));
  const enriched: Record<string, FieldValue> = {};
  for (const [name, value] of Object.entries(flat)) if (value !== null && !isChanged(name)) enriched[name] = value;
  return enriched;
}

/**
 * CREATE and UNDELETE over CometD carry only the non-empty fields ("Change Event Body Fields"):
 * every other field the event could carry was empty, and is written as null, so a created record
 * names every field as a re-read one does.
 */
export function withEmptyFields(flat: Record<string, FieldValue>, shape: ObjectShape): Record<string, FieldValue> {
  const all: Record<string, FieldValue> = {};
  for (const name of shape.eventFields) all[name] = null;
  return Object.assign(all, flat);
}

/** REST datetimes (`…+0000`) as CDC writes them (`…Z`), so one field reads the same from both. */
export function isoDateTime(text: string): string {
  const ms = Date.parse(text.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  return Number.isNaN(ms) ? text : new Date(ms).toISOString();
}

/** A REST record (SOQL row) as flat field values named as CDC names them. `Id` and `attributes` are left out. */
export function rowFields(row: Record<string, unknown>, shape: ObjectShape): Record<string, FieldValue> {
  const flat: Record<string, FieldValue> = {};
  for (const [name, value] of Object.entries(row)) {
    if (name === 'attributes' || name === 'Id') continue;
    const target = shape.flatName.get(name) ?? name;
    const v = scalar(value, name);
    flat[target] = typeof v === 'string' && shape.datetimeFields.has(name) ? isoDateTime(v) : v;
  }
  return flat;
}

/** SystemModstamp of a REST record in ms, or undefined. */
export function modstampOf(row: Record<string, unknown>): number | undefined {
  const text = row.SystemModstamp;
  if (typeof text !== 'string') return undefined;
  const ms = Date.parse(isoDateTime(text));
  return Number.isNaN(ms) ? undefined : ms;
}
