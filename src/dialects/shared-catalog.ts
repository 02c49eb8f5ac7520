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

/**
 * The table's name as the config wrote it (`schema.name` or `name`), for messages. Quoting it the
 * database's way would double every quote a name holds, and the reader would not recognise it.
 */
export function writtenName(table: TableRef): string {
  return table.schema === undefined ? table.name : `${table.schema}.${table.name}`;
}

/** 'dbo.Users' → { schema: 'dbo', name: 'Users' }; 'Users' → { name: 'Users' }: the inverse of writtenName. */
export function parseTableName(table: string): TableRef {
  const dot = table.indexOf('.');
  return dot < 0 ? { name: table } : { schema: table.slice(0, dot), name: table.slice(dot + 1) };
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
