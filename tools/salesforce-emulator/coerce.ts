import { formatDateTime, parseDateTime } from './clock.js';
import { ApiError } from './errors.js';
import { normalizeId } from './ids.js';
import type { FieldDef, ObjectDef } from './schema.js';

export type FieldValues = Record<string, unknown>;
export type WriteMode = 'create' | 'update';

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function jsonParserError(field: FieldDef, value: unknown): ApiError {
  return new ApiError(
    400,
    'JSON_PARSER_ERROR',
    `Cannot deserialize instance of ${field.type} from ${typeof value} value ${JSON.stringify(value)} or request may be missing a required field`,
    [field.name],
  );
}

/** One input value in the form the store keeps: text, number, boolean, `YYYY-MM-DD` or a Salesforce datetime. */
function coerceValue(field: FieldDef, value: unknown): unknown {
  if (value === null || value === '') return null;
  switch (field.type) {
    case 'boolean':
      if (typeof value !== 'boolean') throw jsonParserError(field, value);
      return value;
    case 'double':
    case 'currency':
    case 'int': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n)) throw jsonParserError(field, value);
      if (field.type === 'int' && !Number.isInteger(n)) throw jsonParserError(field, value);
      return n;
    }
    case 'date':
      if (typeof value !== 'string' || !DATE.test(value) || Number.isNaN(Date.parse(value))) throw jsonParserError(field, value);
      return value;
    case 'datetime': {
      const ms = typeof value === 'string' ? parseDateTime(value) : NaN;
      if (Number.isNaN(ms)) throw jsonParserError(field, value);
      return formatDateTime(ms);
    }
    case 'reference': {
      const id = typeof value === 'string' ? normalizeId(value) : undefined;
      if (!id) throw new ApiError(400, 'MALFORMED_ID', `${field.label}: id value of incorrect type: ${String(value)}`, [field.name]);
      return id;
    }
    default: {
      if (typeof value === 'object') throw jsonParserError(field, value);
      const text = String(value);
      if (text.length > field.length) {
        throw new ApiError(400, 'STRING_TOO_LONG', `${field.label}: data value too large: ${text} (max length=${field.length})`, [field.name]);
      }
      if (field.type === 'email' && !EMAIL.test(text)) {
        throw new ApiError(400, 'INVALID_EMAIL_ADDRESS', `${field.label}: invalid email address: ${text}`, [field.name]);
      }
      return text;
    }
  }
}

/**
 * Checks a request body against the object's fields and returns the values to store, keyed by
 * the fields' canonical names. `attributes` is the collections' type marker, never a field.
 */
export function coerceInput(def: ObjectDef, input: Readonly<Record<string, unknown>>, mode: WriteMode): FieldValues {
  const values: FieldValues = {};
  const readOnly: string[] = [];
  for (const [key, raw] of Object.entries(input)) {
    if (key === 'attributes') continue;
    const field = def.field(key);
    if (!field) {
      throw new ApiError(400, 'INVALID_FIELD', `No such column '${key}' on sobject of type ${def.name}`, [key]);
    }
    if (mode === 'create' ? !field.createable : !field.updateable) {
      readOnly.push(field.name);
      continue;
    }
    values[field.name] = coerceValue(field, raw);
  }
  if (readOnly.length > 0) {
    throw new ApiError(
      400,
      'INVALID_FIELD_FOR_INSERT_UPDATE',
      `Unable to create/update fields: ${readOnly.join(', ')}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`,
      readOnly,
    );
  }
  return values;
}

/** Required fields must hold a value after the write, on create and on update alike. */
export function checkRequired(def: ObjectDef, record: Readonly<FieldValues>): void {
  const missing = def.fields
    .filter((f) => !f.nillable && f.createable && f.type !== 'boolean')
    .filter((f) => record[f.name] === null || record[f.name] === undefined)
    .map((f) => f.name);
  if (missing.length > 0) {
    throw new ApiError(400, 'REQUIRED_FIELD_MISSING', `Required fields are missing: [${missing.join(', ')}]`, missing);
  }
}

export function checkValidationRules(def: ObjectDef, record: Readonly<FieldValues>): void {
  for (const rule of def.validationRules) {
    if (rule.failsWhen(record)) {
      throw new ApiError(400, 'FIELD_CUSTOM_VALIDATION_EXCEPTION', rule.errorMessage, rule.field ? [rule.field] : []);
    }
  }
}
