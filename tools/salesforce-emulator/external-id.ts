import { ApiError } from './errors.js';
import type { FieldDef } from './schema.js';

/** The record's value for the external id field (its key matched case-insensitively); absent when missing, null or empty. */
export function externalIdValue(field: FieldDef, record: Readonly<Record<string, unknown>>): string | undefined {
  const key = Object.keys(record).find((k) => k.toLowerCase() === field.name.toLowerCase());
  const value = key === undefined ? undefined : record[key];
  return value === undefined || value === null || value === '' ? undefined : String(value);
}

/**
 * The external id each record of one upsert call is matched by, or the record error Salesforce
 * gives instead: MISSING_ARGUMENT when the record has none, DUPLICATE_EXTERNAL_ID for every record
 * whose value another record of the same call also has. Text external ids compare case-insensitively,
 * as matching against stored records does.
 */
export function upsertKeys(field: FieldDef, records: readonly Readonly<Record<string, unknown>>[]): (string | ApiError)[] {
  const values = records.map((record) => externalIdValue(field, record));
  const seen = new Map<string, number>();
  for (const value of values) {
    if (value !== undefined) seen.set(value.toLowerCase(), (seen.get(value.toLowerCase()) ?? 0) + 1);
  }
  return values.map((value) => {
    if (value === undefined) return new ApiError(400, 'MISSING_ARGUMENT', `${field.name} not specified`, [field.name]);
    if ((seen.get(value.toLowerCase()) ?? 0) > 1) {
      return new ApiError(400, 'DUPLICATE_EXTERNAL_ID', `Duplicate external id specified: ${value}`, [field.name]);
    }
    return value;
  });
}
