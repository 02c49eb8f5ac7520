import type { Knex } from 'knex';
import type { Column, ColumnKind, TableInfo, TableRef } from '../dialect';
import { TableProblemError } from '../errors';
import { requireTable, writtenName } from '../shared-catalog';

/** A row of information_schema.COLUMNS, aliased to lower case (MySQL 8 answers in upper case). */
export interface MysqlCatalogColumn {
  name: string;
  data_type: string;
  column_type: string;
  is_nullable: string;
  max_length: number | string | null;
  charset: string | null;
  numeric_precision: number | string | null;
  numeric_scale: number | string | null;
  datetime_precision: number | string | null;
  /** 1 when an insert may leave the column out (a default, auto_increment, generated). */
  has_default?: number | string | null;
}

const UNICODE_CHARSETS = new Set(['utf8', 'utf8mb3', 'utf8mb4', 'ucs2', 'utf16', 'utf16le', 'utf32']);
const SMALL_INTS = new Set(['tinyint', 'smallint', 'mediumint', 'year']);
const STRINGS = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'enum', 'set']);
const BYTES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);

export async function describeMysqlTable(db: Knex, table: TableRef): Promise<TableInfo> {
  const [[server]] = (await db.raw('SELECT COALESCE(?, DATABASE()) AS db, VERSION() AS version', [table.schema ?? null])) as [
    Array<{ db: string | null; version: string }>,
  ];
  if (!server?.db) throw new Error(`cannot describe table ${table.name}: no schema given and the connection has no default database`);
  const schema = server.db;
  const display = writtenName(table);

  const [[kind]] = (await db.raw('SELECT TABLE_TYPE AS type FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [
    schema,
    table.name,
  ])) as [Array<{ type: string }>];
  if (kind && kind.type !== 'BASE TABLE') {
    throw new TableProblemError(`${display} is a ${kind.type.toLowerCase()}, not a table: triggers need a base table`, 'NOT_A_TABLE', display);
  }

  const [catalog] = (await db.raw(
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS data_type, COLUMN_TYPE AS column_type, IS_NULLABLE AS is_nullable,
            CHARACTER_MAXIMUM_LENGTH AS max_length, CHARACTER_SET_NAME AS charset,
            NUMERIC_PRECISION AS numeric_precision, NUMERIC_SCALE AS numeric_scale, DATETIME_PRECISION AS datetime_precision,
            (COLUMN_DEFAULT IS NOT NULL OR EXTRA LIKE '%auto_increment%' OR EXTRA LIKE '%GENERATED%') AS has_default
       FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
      ORDER BY ORDINAL_POSITION`,
    [schema, table.name],
  )) as [MysqlCatalogColumn[]];
  const [keys] = (await db.raw(
    `SELECT COLUMN_NAME AS name FROM information_schema.KEY_COLUMN_USAGE
      WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY'
      ORDER BY ORDINAL_POSITION`,
    [schema, table.name],
  )) as [Array<{ name: string }>];

  const json = /mariadb/i.test(server.version) && catalog.some((c) => c.data_type === 'longtext')
    ? await mariadbJsonColumns(db, schema, table.name)
    : new Set<string>();
  const columns = catalog.map((c) => toColumn(c, json.has(c.name)));
  const info = requireTable(table, columns, keys.map((k) => k.name), display);
  refusePlaceholders(display, [schema, table.name, ...columns.map((c) => c.name)]);
  return info;
}

/** MariaDB's JSON is LONGTEXT with a `json_valid(col)` check; the check is what marks it. */
async function mariadbJsonColumns(db: Knex, schema: string, table: string): Promise<Set<string>> {
  const [checks] = (await db.raw(
    'SELECT CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?',
    [schema, table],
  )) as [Array<{ clause: string }>];
  const names = checks.map((c) => /^json_valid\(`((?:[^`]|``)+)`\)$/i.exec(c.clause.trim())?.[1]?.replace(/``/g, '`'));
  return new Set(names.filter((n): n is string => n !== undefined));
}

/**
 * knex reads every `?` in a statement as a binding placeholder, even inside a quoted identifier,
 * so a name holding one would shift the bindings of the reads that name it.
 */
function refusePlaceholders(display: string, names: string[]): void {
  const bad = names.find((n) => n.includes('?'));
  if (bad !== undefined) throw new Error(`table ${display}: the name "${bad}" contains '?', which knex takes for a parameter; rename it to track the table`);
}

export function toColumn(c: MysqlCatalogColumn, isJson = false): Column {
  return {
    name: c.name,
    sqlType: c.column_type,
    nullable: c.is_nullable === 'YES',
    type: isJson ? { kind: 'json' } : kindOf(c),
    ...(c.has_default != null ? { hasDefault: Number(c.has_default) === 1 } : {}),
  };
}

function kindOf(c: MysqlCatalogColumn): ColumnKind {
  const type = c.data_type.toLowerCase();
  const unsigned = /\bunsigned\b/i.test(c.column_type);
  const precision = Number(c.datetime_precision ?? 0);
  // tinyint(1) stays an int: it holds -128..127, whatever the application means by it.
  if (SMALL_INTS.has(type)) return { kind: 'int' };
  if (type === 'int') return unsigned ? { kind: 'long' } : { kind: 'int' };
  if (type === 'bigint') return { kind: 'long' };
  if (type === 'decimal') return { kind: 'decimal', precision: Number(c.numeric_precision), scale: Number(c.numeric_scale) };
  if (type === 'float') return { kind: 'float' };
  if (type === 'double' || type === 'real') return { kind: 'double' };
  if (type === 'bit') return c.column_type.toLowerCase() === 'bit(1)' ? { kind: 'boolean' } : { kind: 'other', sqlType: c.column_type };
  if (STRINGS.has(type)) {
    return {
      kind: 'string',
      ...(c.max_length != null ? { maxLength: Number(c.max_length) } : {}),
      unicode: c.charset != null && UNICODE_CHARSETS.has(c.charset.toLowerCase()),
    };
  }
  if (BYTES.has(type)) return { kind: 'bytes' };
  if (type === 'date') return { kind: 'date' };
  if (type === 'time') return { kind: 'time', precision };
  if (type === 'datetime') return { kind: 'timestamp', precision };
  if (type === 'timestamp') return { kind: 'timestamptz', precision };
  if (type === 'json') return { kind: 'json' };
  if (type === 'uuid') return { kind: 'uuid' }; // MariaDB 10.7+
  return { kind: 'other', sqlType: c.column_type };
}
