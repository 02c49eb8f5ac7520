import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { parseDateTime } from './clock.js';
import { ApiError } from './errors.js';
import type { FieldDef } from './schema.js';

/** Bulk API 2.0 `columnDelimiter` values and the characters they stand for. */
export const COLUMN_DELIMITERS = { BACKQUOTE: '`', CARET: '^', COMMA: ',', PIPE: '|', SEMICOLON: ';', TAB: '\t' } as const;
export type ColumnDelimiter = keyof typeof COLUMN_DELIMITERS;

/** Bulk API 2.0 `lineEnding` values. */
export const LINE_ENDINGS = { LF: '\n', CRLF: '\r\n' } as const;
export type LineEnding = keyof typeof LINE_ENDINGS;

export interface CsvFormat {
  columnDelimiter: ColumnDelimiter;
  lineEnding: LineEnding;
}

/** The cell that sets a field to null; an empty cell leaves the field as it is ("Valid CSV Record Rows"). */
export const NULL_CELL = '#N/A';

/**
 * Reads uploaded job data: the first row names the fields, each later row is a record. Rows end
 * with the job's line ending only (a CR before an LF in an LF job stays in the value, as it would
 * in Salesforce); values are not trimmed; a quote after a space, a row with another number of
 * cells or an unclosed quote fails the whole upload with the parser's message.
 */
export function readCsv(text: string, format: CsvFormat): string[][] {
  return parse(text, {
    delimiter: COLUMN_DELIMITERS[format.columnDelimiter],
    record_delimiter: LINE_ENDINGS[format.lineEnding],
    bom: true,
    skip_empty_lines: true,
  }) as string[][];
}

/** Result CSV in the job's delimiter and line ending, every value quoted as Salesforce writes results. */
export function writeCsv(rows: readonly (readonly string[])[], format: CsvFormat): string {
  return stringify(rows as string[][], {
    delimiter: COLUMN_DELIMITERS[format.columnDelimiter],
    record_delimiter: LINE_ENDINGS[format.lineEnding],
    quoted: true,
    quoted_empty: true,
  });
}

const typeError = (field: FieldDef, cell: string): ApiError =>
  new ApiError(400, 'INVALID_TYPE_ON_FIELD_IN_RECORD', `${field.label}: value not of required type: ${cell}`, [field.name]);

/**
 * One non-empty CSV cell as the value the store takes: `#N/A` is null, booleans are
 * true/false (or 1/0), numbers and dates must parse. A cell of the wrong type fails its record
 * with INVALID_TYPE_ON_FIELD_IN_RECORD; everything else (lengths, emails, references) the store checks.
 */
export function cellValue(field: FieldDef, cell: string): unknown {
  if (cell === NULL_CELL) return null;
  switch (field.type) {
    case 'boolean': {
      const text = cell.toLowerCase();
      if (text === 'true' || text === '1') return true;
      if (text === 'false' || text === '0') return false;
      throw typeError(field, cell);
    }
    case 'int':
    case 'double':
    case 'currency': {
      const n = cell.trim() === '' ? NaN : Number(cell);
      if (!Number.isFinite(n) || (field.type === 'int' && !Number.isInteger(n))) throw typeError(field, cell);
      return n;
    }
    case 'date': {
      // The guide's sample CSV writes dates as 1940-06-07Z.
      const date = /^(\d{4}-\d{2}-\d{2})Z?$/.exec(cell)?.[1];
      if (date === undefined || Number.isNaN(Date.parse(date))) throw typeError(field, cell);
      return date;
    }
    case 'datetime':
      if (Number.isNaN(parseDateTime(cell))) throw typeError(field, cell);
      return cell;
    default:
      return cell;
  }
}

/**
 * A failed record's `sf__Error` as Bulk API results write it: status code, message and the
 * fields, `REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --`; with no
 * field, `UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--`.
 */
export function resultError(err: ApiError): string {
  const fields = err.fields ?? [];
  return `${err.errorCode}:${err.message}:${fields.length > 0 ? `${fields.join(',')} ` : ''}--`;
}
