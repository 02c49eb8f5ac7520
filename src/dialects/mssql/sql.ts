import type { TableRef } from '../dialect';

/** One statement for `knex.raw(sql, bindings)`: every value is a `?` placeholder, never spliced in. */
export interface SqlQuery {
  sql: string;
  bindings: Array<string | number>;
}

export const DEFAULT_SCHEMA = 'dbo';

/** SQL Server's own quoting: `[name]` with `]` doubled. */
export function quoteIdentifier(name: string): string {
  return `[${name.replace(/]/g, ']]')}]`;
}

/**
 * An identifier as written into SQL that goes through knex: quoted, and with `?` escaped as `\?`,
 * because knex turns every bare `?` into a parameter (`@p0`…) even in raw SQL without bindings.
 */
export function ident(name: string): string {
  return quoteIdentifier(name).replace(/\?/g, '\\?');
}

/** `[schema].[name]`, for SQL that goes through knex. */
export function qualified(table: TableRef): string {
  return `${ident(table.schema ?? DEFAULT_SCHEMA)}.${ident(table.name)}`;
}

/** A Unicode string literal for DDL, which has no bindings (object names in OBJECT_ID). */
export function nLiteral(text: string): string {
  return `N'${text.replace(/'/g, "''").replace(/\?/g, '\\?')}'`;
}

/** `[schema].[name]` as a human reads it, for error messages. */
export function displayName(table: TableRef): string {
  return `${quoteIdentifier(table.schema ?? DEFAULT_SCHEMA)}.${quoteIdentifier(table.name)}`;
}
