import { GUARD_TABLE, SINK_OFFSETS_TABLE, type Column, type LegacyWriteSql, type SqlStatement, type TableInfo } from '../dialect';
import { columnOf, domainParameter, guardValues } from '../shared-writes';
import { displayName, ident, nLiteral, qualified } from './sql';
import { baseType, textExpression } from './types';

/**
 * The hints every MERGE here carries. MERGE alone holds its shared/update locks only while it looks
 * for the match, so two concurrent MERGEs (or a MERGE and the legacy application's INSERT) can both
 * see "not matched" and one then fails with a duplicate key, or both deadlock converting S to X.
 * HOLDLOCK (serializable) keeps the key, or the key range where a missing key would go, locked to
 * the end of the transaction; UPDLOCK takes update locks up front, so the second writer waits
 * instead of deadlocking. Microsoft's MERGE page recommends HOLDLOCK against this race.
 */
const MERGE_HINTS = 'WITH (UPDLOCK, HOLDLOCK)';

/**
 * The row count of every write. knex's mssql client (lib/dialects/mssql/index.js) keeps only the
 * rows tedious streams back: `_query` drops the request's row count and `processResponse` gives a
 * raw query the rows of all its result sets as one array of objects, so a bare MERGE, UPDATE or
 * DELETE answers `[]`. Every write statement therefore ends with this SELECT, and `changedRows`
 * reads its `changed`. After a MERGE, @@ROWCOUNT is the rows inserted, updated and deleted.
 */
const ROW_COUNT = 'SELECT @@ROWCOUNT AS [changed];';

/**
 * SQL Server error numbers that are the row's fault: a NULL into NOT NULL (515), a foreign key or
 * CHECK constraint (547), a duplicate key (2601, 2627), a value too long (2628, and 8152 before
 * SQL Server 2019), a conversion (245, 8114), an arithmetic overflow (220, 8115), an out-of-range
 * datetime (242). Deadlocks (1205), lock timeouts (1222) and connection errors are not among them.
 */
const ROW_REFUSALS = new Set([515, 547, 2601, 2627, 2628, 8152, 245, 8114, 220, 8115, 242]);

/** SQL Server's limit is 2,100 parameters a request; a statement keeps under 2,000. */
const MAX_PARAMETERS = 2_000;

/**
 * The type a value is cast to in the VALUES list: the column's own type, except strings and binary
 * strings, which go as the (max) type of their family. CAST truncates a string silently, so a value
 * cast to varchar(20) would be written cut short (or, as a key, match another row); as varchar(max)
 * it reaches the column whole, and the assignment refuses it (2628) if it is too long. The family is
 * kept, so a varchar key still compares with a varchar column and seeks its index.
 */
function valueType(col: Column): string {
  switch (baseType(col)) {
    case 'char':
    case 'varchar':
    case 'text':
      return 'varchar(max)';
    case 'nchar':
    case 'nvarchar':
    case 'ntext':
      return 'nvarchar(max)';
    case 'binary':
    case 'varbinary':
    case 'image':
      return 'varbinary(max)';
    default:
      return col.sqlType;
  }
}

/**
 * `ref` as EXCEPT compares it. Strings compare as the bytes of their Unicode text: under the usual
 * case- and accent-insensitive collations 'smith' and 'Smith' are equal, and a change of case alone
 * would be taken for no change and never written. A char(n) column's padding is not a difference.
 * text, ntext, image, xml and the spatial types cannot be compared at all and go through
 * nvarchar(max) or varbinary(max).
 */
function comparable(col: Column, ref: string): string {
  switch (baseType(col)) {
    case 'char':
    case 'nchar':
      return `CONVERT(VARBINARY(MAX), CONVERT(NVARCHAR(MAX), RTRIM(${ref})))`;
    case 'varchar':
    case 'nvarchar':
    case 'text':
    case 'ntext':
    case 'xml':
      return `CONVERT(VARBINARY(MAX), CONVERT(NVARCHAR(MAX), ${ref}))`;
    case 'binary':
    case 'varbinary':
    case 'image':
    case 'geography':
    case 'geometry':
      return `CONVERT(VARBINARY(MAX), ${ref})`;
    default:
      return ref;
  }
}

/**
 * `(VALUES (CAST(? AS t0), CAST(? AS t1)), …) AS alias(c0, c1)`: typed (see valueType), so the join
 * seeks the key's index and values compare as the columns' types do (parameters arrive as nvarchar,
 * int, bigint, float or bit). Refuses a row of the wrong width, which would shift every later value
 * into the wrong column.
 */
function valuesTable(types: string[], rows: unknown[][], alias: string): string {
  if (rows.length === 0) throw new Error('a SQL Server write needs at least one row');
  for (const row of rows) {
    if (row.length !== types.length) throw new Error(`a row of ${row.length} values where ${types.length} columns are written`);
  }
  const one = `(${types.map((t) => `CAST(? AS ${t})`).join(', ')})`;
  return `(VALUES ${rows.map(() => one).join(',\n  ')}) AS ${alias}(${types.map((_, i) => `c${i}`).join(', ')})`;
}

/** `t.[a] = s.c0 AND t.[b] = s.c1`, for key columns at `positions` of the VALUES list. */
function keyJoin(keys: string[], positions: number[], source: string): string {
  return keys.map((name, i) => `t.${ident(name)} = ${source}.c${positions[i]}`).join(' AND ');
}

/**
 * `EXISTS (SELECT s.c1, s.c2 EXCEPT SELECT t.[a], t.[b])`: true when a value differs. EXCEPT treats
 * two NULLs as equal and a NULL and a value as different, which `<>` does not.
 */
function differs(table: TableInfo, names: string[], positions: number[]): string {
  const cols = names.map((name) => columnOf(table, name));
  const source = cols.map((c, i) => comparable(c, `s.c${positions[i]}`)).join(', ');
  const target = cols.map((c) => comparable(c, `t.${ident(c.name)}`)).join(', ');
  return `EXISTS (SELECT ${source} EXCEPT SELECT ${target})`;
}

function keyPositions(table: TableInfo, columns: string[]): number[] {
  return table.primaryKey.map((name) => {
    const at = columns.indexOf(name);
    if (at < 0) throw new Error(`an insert into ${displayName(table)} must carry its key column "${name}"`);
    return at;
  });
}

/** The numbers of a driver error: tedious's `number`, node-mssql's `originalError.info.number`, and those of an AggregateError's errors. */
export function errorNumbers(error: unknown, depth = 0): number[] {
  if (typeof error !== 'object' || error === null || depth > 3) return [];
  const e = error as { number?: unknown; originalError?: { number?: unknown; info?: { number?: unknown } }; errors?: unknown };
  const own = [e.number, e.originalError?.info?.number, e.originalError?.number].filter((n): n is number => typeof n === 'number');
  const nested = Array.isArray(e.errors) ? e.errors.flatMap((inner) => errorNumbers(inner, depth + 1)) : [];
  return [...own, ...nested];
}

/** 'YYYY-MM-DDTHH:MM:SS.fff', the UTC wall time: ISO 8601 with a T reads the same under every language and DATEFORMAT. */
function isoWithoutZone(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '');
}

/**
 * SQL Server's legacy-sink statements. Updates and inserts are one MERGE each (WITH (UPDLOCK,
 * HOLDLOCK), see MERGE_HINTS), whose `WHEN MATCHED AND EXISTS (… EXCEPT …)` leaves an unchanged row
 * alone, so the changelog trigger does not see it. Every statement ends with `;` (MERGE requires
 * it) and every write with `SELECT @@ROWCOUNT` (see ROW_COUNT). Identifiers go through `ident`, so
 * a `?` in a name is not taken by knex for a parameter. The rows of one statement must have
 * distinct keys: a MERGE that matches one target row twice fails (error 8672).
 */
export const mssqlWrites: LegacyWriteSql = {
  sinkTables(schema) {
    const guard = { schema, name: GUARD_TABLE };
    const offsets = { schema, name: SINK_OFFSETS_TABLE };
    // The keys may be longer than the 900 bytes a clustered index allows (the guard's up to 1,200),
    // so the primary keys are nonclustered (1,700 bytes).
    return [
      `IF OBJECT_ID(${nLiteral(displayName(guard))}, N'U') IS NULL
CREATE TABLE ${qualified(guard)} (
  [entity] nvarchar(100) COLLATE Latin1_General_100_BIN2 NOT NULL,
  [entity_id] nvarchar(400) COLLATE Latin1_General_100_BIN2 NOT NULL,
  [field] nvarchar(100) COLLATE Latin1_General_100_BIN2 NOT NULL,
  [version_ms] bigint NOT NULL,
  [origin] nvarchar(32) NOT NULL,
  [event_id] nvarchar(100) NOT NULL,
  [written] bit NOT NULL,
  [updated_at] datetime2(3) NOT NULL DEFAULT SYSUTCDATETIME(),
  PRIMARY KEY NONCLUSTERED ([entity], [entity_id], [field]));`,
      `IF OBJECT_ID(${nLiteral(displayName(offsets))}, N'U') IS NULL
CREATE TABLE ${qualified(offsets)} (
  [sink] nvarchar(200) COLLATE Latin1_General_100_BIN2 NOT NULL,
  [topic] nvarchar(249) COLLATE Latin1_General_100_BIN2 NOT NULL,
  [kafka_partition] int NOT NULL,
  [next_offset] bigint NOT NULL,
  [updated_at] datetime2(3) NOT NULL DEFAULT SYSUTCDATETIME(),
  PRIMARY KEY NONCLUSTERED ([sink], [topic], [kafka_partition]));`,
    ];
  },

  lockRows(table, keys) {
    const k = table.primaryKey.map((name) => columnOf(table, name));
    // The key as the text form of its kind (dialect.ts), the form the changelog images carry: a bare
    // CONVERT would print a datetime as 'Jan  2 2024  3:04AM' and a uniqueidentifier in upper case.
    // SQL Server has no row-value IN, hence the join. Ordered like the other dialects' lock reads.
    return {
      sql: `SELECT ${k.map((c, i) => `CONVERT(NVARCHAR(4000), ${textExpression(c, `t.${ident(c.name)}`)}) AS [k${i}]`).join(', ')}
FROM ${qualified(table)} AS t WITH (UPDLOCK, HOLDLOCK, ROWLOCK)
JOIN ${valuesTable(k.map(valueType), keys, 'v')}
  ON ${keyJoin(table.primaryKey, k.map((_, i) => i), 'v')}
ORDER BY ${k.map((c) => `t.${ident(c.name)}`).join(', ')};`,
      bindings: keys.flat(),
    };
  },

  updateRows(table, columns, rows) {
    const k = table.primaryKey;
    const names = [...k, ...columns];
    const types = names.map((name) => valueType(columnOf(table, name)));
    const positions = columns.map((_, i) => k.length + i);
    // Matched only: an existing row's statement carries only the changed columns, so there is no
    // INSERT branch (it could not fill the row's other NOT NULL columns anyway).
    return {
      sql: `MERGE INTO ${qualified(table)} ${MERGE_HINTS} AS t
USING ${valuesTable(types, rows, 's')}
  ON ${keyJoin(k, k.map((_, i) => i), 's')}
WHEN MATCHED AND ${differs(table, columns, positions)}
  THEN UPDATE SET ${columns.map((name, i) => `${ident(name)} = s.c${positions[i]}`).join(', ')};
${ROW_COUNT}`,
      bindings: rows.flat(),
    };
  },

  insertRows(table, columns, rows) {
    const k = table.primaryKey;
    const keyAt = keyPositions(table, columns);
    const rest = columns.map((name, i) => ({ name, i })).filter((c) => !k.includes(c.name));
    const types = columns.map((name) => valueType(columnOf(table, name)));
    // A row the legacy application inserted since lockRows looked is updated instead, where a value differs.
    const matched = rest.length
      ? `WHEN MATCHED AND ${differs(table, rest.map((c) => c.name), rest.map((c) => c.i))}
  THEN UPDATE SET ${rest.map((c) => `${ident(c.name)} = s.c${c.i}`).join(', ')}
`
      : '';
    return {
      sql: `MERGE INTO ${qualified(table)} ${MERGE_HINTS} AS t
USING ${valuesTable(types, rows, 's')}
  ON ${keyJoin(k, keyAt, 's')}
${matched}WHEN NOT MATCHED BY TARGET
  THEN INSERT (${columns.map(ident).join(', ')}) VALUES (${columns.map((_, i) => `s.c${i}`).join(', ')});
${ROW_COUNT}`,
      bindings: rows.flat(),
    };
  },

  deleteRows(table, keys) {
    const k = table.primaryKey;
    return {
      sql: `DELETE t FROM ${qualified(table)} AS t
JOIN ${valuesTable(k.map((name) => valueType(columnOf(table, name))), keys, 'v')}
  ON ${keyJoin(k, k.map((_, i) => i), 'v')};
${ROW_COUNT}`,
      bindings: keys.flat(),
    };
  },

  readGuard(schema, entities) {
    // EXISTS rather than a join: a pair asked for twice returns its rows once, as IN does elsewhere.
    return {
      sql: `SELECT g.[entity], g.[entity_id], g.[field], g.[version_ms], g.[origin], g.[event_id], g.[written]
FROM ${qualified({ schema, name: GUARD_TABLE })} AS g
WHERE EXISTS (SELECT 1 FROM ${valuesTable(['nvarchar(max)', 'nvarchar(max)'], entities, 'v')}
  WHERE v.c0 = g.[entity] AND v.c1 = g.[entity_id]);`,
      bindings: entities.flat(),
    };
  },

  writeGuard(schema, rows): SqlStatement {
    // Strings as nvarchar(max): too long a value is refused by the column (2628), never cut short by CAST.
    const types = ['nvarchar(max)', 'nvarchar(max)', 'nvarchar(max)', 'bigint', 'nvarchar(max)', 'nvarchar(max)', 'bit'];
    const values = rows.map(guardValues);
    return {
      sql: `MERGE INTO ${qualified({ schema, name: GUARD_TABLE })} ${MERGE_HINTS} AS t
USING ${valuesTable(types, values, 's')}
  ON t.[entity] = s.c0 AND t.[entity_id] = s.c1 AND t.[field] = s.c2
WHEN MATCHED
  THEN UPDATE SET [version_ms] = s.c3, [origin] = s.c4, [event_id] = s.c5, [written] = s.c6, [updated_at] = SYSUTCDATETIME()
WHEN NOT MATCHED BY TARGET
  THEN INSERT ([entity], [entity_id], [field], [version_ms], [origin], [event_id], [written]) VALUES (s.c0, s.c1, s.c2, s.c3, s.c4, s.c5, s.c6);
${ROW_COUNT}`,
      bindings: values.flat(),
    };
  },

  readOffsets(schema, sink) {
    return {
      sql: `SELECT [topic], [kafka_partition], CONVERT(VARCHAR(20), [next_offset]) AS [next_offset]
FROM ${qualified({ schema, name: SINK_OFFSETS_TABLE })} WHERE [sink] = ?;`,
      bindings: [sink],
    };
  },

  writeOffsets(schema, sink, rows) {
    const values = rows.map((r) => [sink, r.topic, r.partition, r.next]);
    return {
      sql: `MERGE INTO ${qualified({ schema, name: SINK_OFFSETS_TABLE })} ${MERGE_HINTS} AS t
USING ${valuesTable(['nvarchar(max)', 'nvarchar(max)', 'int', 'bigint'], values, 's')}
  ON t.[sink] = s.c0 AND t.[topic] = s.c1 AND t.[kafka_partition] = s.c2
WHEN MATCHED
  THEN UPDATE SET [next_offset] = CASE WHEN s.c3 > t.[next_offset] THEN s.c3 ELSE t.[next_offset] END, [updated_at] = SYSUTCDATETIME()
WHEN NOT MATCHED BY TARGET
  THEN INSERT ([sink], [topic], [kafka_partition], [next_offset]) VALUES (s.c0, s.c1, s.c2, s.c3);
${ROW_COUNT}`,
      bindings: values.flat(),
    };
  },

  resetOffset(schema, sink, row) {
    return {
      sql: `UPDATE ${qualified({ schema, name: SINK_OFFSETS_TABLE })} SET [next_offset] = ?, [updated_at] = SYSUTCDATETIME()
WHERE [sink] = ? AND [topic] = ? AND [kafka_partition] = ?;`,
      bindings: [row.next, sink, row.topic, row.partition],
    };
  },

  // The last row that carries `changed` (a legacy trigger that still returns result sets adds rows before it).
  changedRows(result) {
    if (!Array.isArray(result)) return 0;
    for (let i = result.length - 1; i >= 0; i--) {
      const row = result[i] as Record<string, unknown> | undefined;
      if (row && typeof row === 'object' && 'changed' in row) return Number(row.changed) || 0;
    }
    return 0;
  },

  // knex's mssql client answers a raw SELECT with the rows themselves, as objects keyed by column name.
  resultRows: (result) => (Array.isArray(result) ? (result as Array<Record<string, unknown>>) : []),

  parameter(col, value) {
    const kind = col.type.kind;
    if (kind === 'timestamptz' || kind === 'timestamp') {
      const ms = value instanceof Date ? value.getTime() : typeof value === 'number' ? value : undefined;
      // A Date would go to tedious as datetime (3.33 ms steps); ISO text keeps every millisecond.
      // datetimeoffset: UTC with its 'Z'; datetime2, datetime, smalldatetime: the UTC wall time.
      if (ms !== undefined) return kind === 'timestamptz' ? new Date(ms).toISOString() : isoWithoutZone(ms);
      // A date into a datetime column: 'YYYY-MM-DD' alone is read by DATEFORMAT for datetime.
      if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value)) return `${value}T00:00:00`;
    }
    return domainParameter(value);
  },

  maxRows: (width) => Math.max(1, Math.floor(MAX_PARAMETERS / Math.max(width, 1))),

  // By number only: messages depend on the server's language.
  isRowRefusal: (error) => errorNumbers(error).some((n) => ROW_REFUSALS.has(n)),
  refusalCode: (error) => String(errorNumbers(error).find((n) => ROW_REFUSALS.has(n)) ?? errorNumbers(error)[0] ?? 'DB_REFUSED'),

  // Its changelog text carries the base type (`int:42`, docs/dialect-mssql.md, Text forms); written
  // back as text it would become an nvarchar holding that prefix: a changed value, silently.
  unwritable: (column) =>
    baseType(column) === 'sql_variant' ? 'the column is sql_variant, whose text form (type:value) would be stored back as an nvarchar' : undefined,
};
