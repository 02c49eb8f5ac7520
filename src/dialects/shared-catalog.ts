import type { Column, TableInfo, TableRef } from './dialect';

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

/** Checks that the table exists and has a primary key, with errors that name it. */
export function requireTable(table: TableRef, columns: Column[], primaryKey: string[], display: string): TableInfo {
  if (columns.length === 0) throw new Error(`table ${display} does not exist (or this user cannot see its columns)`);
  if (primaryKey.length === 0) {
    throw new Error(`table ${display} has no primary key: Banyan keys every record by it, so it cannot track this table`);
  }
  return { ...table, columns, primaryKey };
}

/** `(k1, k2) > (?, ?)`: keyset pagination by a (composite) key, for databases with row values. */
export function keysetPredicate(keys: string[], op: '>' | '<='): string {
  return `(${keys.join(', ')}) ${op} (${keys.map(() => '?').join(', ')})`;
}
