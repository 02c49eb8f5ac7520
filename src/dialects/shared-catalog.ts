import type { Column, TableInfo, TableRef } from './dialect';
import { TableProblemError } from './errors';

/** A column as the information_schema views describe it (the common part across databases). */
export interface CatalogColumn {
  name: string;
  data_type: string;
  is_nullable: string;
  length: number | string | null;
  precision: number | string | null;
  scale: number | string | null;
}

/** The changelog table's name for a legacy table. */
export function changelogName(table: string): string {
  return `banyan_cl_${table}`;
}

/** The quote characters a name may be written in, each with its closing character (doubled inside to mean itself). */
const QUOTES: Record<string, string> = { '[': ']', '"': '"', '`': '`' };

/**
 * The table's name as the config wrote it (`schema.name` or `name`), for messages. Quoting it the
 * database's way would double every quote a name holds, and the reader would not recognise it.
 */
export function writtenName(table: TableRef): string {
  return table.schema === undefined ? table.name : `${table.schema}.${table.name}`;
}

/**
 * A table name as a user writes it: 'dbo.Users' → { schema: 'dbo', name: 'Users' }, 'Users' →
 * { name: 'Users' }, and each part optionally quoted the way its database quotes
 * (`[dbo].[Order.Lines]`, `"public"."Order.Lines"`, `` `shop`.`order.lines` ``, `dbo.[Order.Lines]`),
 * the closing quote doubled inside. Unquoted, the first dot separates schema and name (as before
 * quoting was read); a name whose quotes do not read that way is taken as written, split at its
 * first dot, so it reaches the database as a name (which then says it does not exist) and never as
 * SQL.
 */
export function parseTableName(table: string): TableRef {
  try {
    return parseQuoted(table);
  } catch {
    const dot = table.indexOf('.');
    return dot < 0 ? { name: table } : { schema: table.slice(0, dot), name: table.slice(dot + 1) };
  }
}

function parseQuoted(table: string): TableRef {
  const parts: string[] = [];
  let at = 0;
  while (at <= table.length) {
    const open = table[at]!;
    const close = QUOTES[open];
    if (close) {
      let part = '';
      let i = at + 1;
      for (;;) {
        if (i >= table.length) throw new Error(`table name ${table}: ${open} at ${at + 1} is never closed with ${close}`);
        if (table[i] === close) {
          if (table[i + 1] === close) {
            part += close;
            i += 2;
            continue;
          }
          break;
        }
        part += table[i];
        i++;
      }
      parts.push(part);
      at = i + 1;
    } else {
      // Unquoted: to the next dot, or (as the name after a schema) to the end.
      const dot = parts.length === 0 ? table.indexOf('.', at) : -1;
      const end = dot < 0 ? table.length : dot;
      parts.push(table.slice(at, end));
      at = end;
    }
    if (at >= table.length) break;
    if (table[at] !== '.' || parts.length === 2) throw new Error(`table name ${table}: expected a name, or schema.name, with each part plain or quoted ([…], "…" or \`…\`)`);
    at++;
  }
  if (parts.length === 0 || parts.some((p) => p.length === 0)) throw new Error(`table name ${table}: a part of it is empty`);
  return parts.length === 1 ? { name: parts[0]! } : { schema: parts[0]!, name: parts[1]! };
}

/** Checks that the table exists and has a primary key, with errors that name it as written. */
export function requireTable(table: TableRef, columns: Column[], primaryKey: string[], display = writtenName(table)): TableInfo {
  if (columns.length === 0) throw new TableProblemError(`table ${display} does not exist (or this user cannot see its columns)`, 'TABLE_NOT_FOUND', display);
  if (primaryKey.length === 0) {
    throw new TableProblemError(
      `table ${display} has no primary key: Banyan keys every record by it, so it cannot track this table`,
      'NO_PRIMARY_KEY',
      display,
    );
  }
  return { ...table, columns, primaryKey };
}

/** `(k1, k2) > (?, ?)`: keyset pagination by a (composite) key, for databases with row values. */
export function keysetPredicate(keys: string[], op: '>' | '<='): string {
  return `(${keys.join(', ')}) ${op} (${keys.map(() => '?').join(', ')})`;
}
