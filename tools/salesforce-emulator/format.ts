import type { FieldValues } from './coerce.js';
import type { FieldDef, ObjectDef } from './schema.js';

/** REST returns address compounds with lower-camel keys, and null when no component is set. */
function addressValue(def: ObjectDef, record: Readonly<FieldValues>, compound: string): Record<string, unknown> | null {
  const address: Record<string, unknown> = {};
  let anySet = false;
  for (const field of def.fields) {
    if (field.compound?.field !== compound) continue;
    const value = record[field.name] ?? null;
    if (value !== null) anySet = true;
    const key = field.compound.component;
    address[key.charAt(0).toLowerCase() + key.slice(1)] = value;
  }
  return anySet ? address : null;
}

/** Contact.Name is first and last name; the salutation is not part of it. */
function personName(record: Readonly<FieldValues>): string | null {
  const parts = [record.FirstName, record.LastName].filter((p) => typeof p === 'string' && p !== '');
  return parts.length > 0 ? parts.join(' ') : null;
}

/** A field's value as REST and SOQL answer it, computed fields included. */
export function fieldValue(def: ObjectDef, record: Readonly<FieldValues>, field: FieldDef): unknown {
  if (field.type === 'address') return addressValue(def, record, field.name);
  if (field.computed && field.name === 'Name') return personName(record);
  return record[field.name] ?? null;
}

export function recordUrl(version: string, objectName: string, id: string): string {
  return `/services/data/v${version}/sobjects/${objectName}/${id}`;
}

/** A record as REST answers it: `attributes` first, then the requested fields in the order given. */
export function toApiRecord(def: ObjectDef, record: Readonly<FieldValues>, fields: readonly FieldDef[], version: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    attributes: { type: def.name, url: recordUrl(version, def.name, record.Id as string) },
  };
  for (const field of fields) out[field.name] = fieldValue(def, record, field);
  return out;
}
