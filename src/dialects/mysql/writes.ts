import { GUARD_TABLE, SINK_OFFSETS_TABLE, type Column, type LegacyWriteSql } from '../dialect';
import { columnOf, domainParameter, guardValues, placeholders } from '../shared-writes';
// A name holding `?` never gets here: describeMysqlTable refuses it (knex would take it for a parameter).
import { qualified, quoteIdentifier as quote } from './sql';

/**
 * The placeholder of a value written into `col`: a TIMESTAMP is given in UTC and converted to the
 * session's time zone, in which MySQL reads it (and the changelog trigger writes it back as UTC).
 */
function slot(col: Column): string {
  return col.type.kind === 'timestamptz' ? `CONVERT_TZ(?, '+00:00', @@session.time_zone)` : '?';
}

/**
 * Whether a column already holds a value, as the column's type compares it: text as bytes (under a
 * case-insensitive collation `smith` equals `Smith`, and a change of case would never be written),
 * decimals and times cast to the column's type first (12.5 is the 12.50 a decimal(12,2) holds; a
 * string compared with a number would go through a double and lose digits), the rest as they are.
 */
function sameValue(col: Column, current: string, next: string): string {
  switch (col.type.kind) {
    case 'string':
    case 'json':
    case 'other':
    case 'uuid':
    case 'bytes':
      return `BINARY ${current} <=> BINARY ${next}`;
    case 'decimal':
      return `${current} <=> CAST(${next} AS DECIMAL(${col.type.precision}, ${col.type.scale}))`;
    case 'timestamp':
    case 'timestamptz':
      return `${current} <=> CAST(${next} AS DATETIME(${Math.min(col.type.precision, 6)}))`;
    case 'date':
      return `${current} <=> CAST(${next} AS DATE)`;
    default:
      return `${current} <=> ${next}`;
  }
}

/** `SELECT ? AS c0, ? AS c1 UNION ALL SELECT ?, ? …`: a derived table of the rows, which MySQL and MariaDB both join. */
function derived(slots: string[], count: number): string {
  const first = `SELECT ${slots.map((s, i) => `${s} AS c${i}`).join(', ')}`;
  const next = `SELECT ${slots.join(', ')}`;
  return [first, ...Array.from({ length: count - 1 }, () => next)].join(' UNION ALL ');
}

/**
 * MySQL's and MariaDB's legacy-sink statements. Updates are one `UPDATE … JOIN (rows) … WHERE NOT
 * (a <=> b AND …)`, compared as bytes (under a case-insensitive collation `smith` equals `Smith`,
 * and a change of case would never be written): an unchanged row does not match, so no trigger
 * fires for it. Inserts are one multi-row plain `INSERT`, not `INSERT … ON DUPLICATE KEY UPDATE`:
 * that fires the UPDATE triggers even when nothing changes, needs every NOT NULL column of an
 * existing row, and acts on a clash with ANY unique key, so a new row that collides with another
 * row on a secondary unique index would be merged into that row instead of refused. The race it
 * would cover cannot happen: the sink's `SELECT … FOR UPDATE` of a missing key takes a gap lock
 * under REPEATABLE READ (its transactions ask for it), so no one inserts that key meanwhile.
 */
export const mysqlWrites: LegacyWriteSql = {
  sinkTables(schema) {
    return [
      `CREATE TABLE IF NOT EXISTS ${qualified({ schema, name: GUARD_TABLE })} (
         entity varchar(100) NOT NULL,
         entity_id varchar(400) NOT NULL,
         field varchar(100) NOT NULL,
         version_ms bigint NOT NULL,
         origin varchar(32) NOT NULL,
         event_id varchar(100) NOT NULL,
         written boolean NOT NULL,
         updated_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
         PRIMARY KEY (entity, entity_id, field)) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,
      `CREATE TABLE IF NOT EXISTS ${qualified({ schema, name: SINK_OFFSETS_TABLE })} (
         sink varchar(200) NOT NULL,
         topic varchar(249) NOT NULL,
         kafka_partition int NOT NULL,
         next_offset bigint NOT NULL,
         updated_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
         PRIMARY KEY (sink, topic, kafka_partition)) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,
    ];
  },

  lockRows(table, keys) {
    const k = table.primaryKey;
    const one = `(${k.map((name) => slot(columnOf(table, name))).join(', ')})`;
    return {
      sql: `SELECT ${k.map((name, i) => `CAST(${quote(name)} AS CHAR) AS k${i}`).join(', ')} FROM ${qualified(table)}
             WHERE (${k.map(quote).join(', ')}) IN (${keys.map(() => one).join(', ')})
             ORDER BY ${k.map(quote).join(', ')} FOR UPDATE`,
      bindings: keys.flat(),
    };
  },

  updateRows(table, columns, rows) {
    const k = table.primaryKey;
    const names = [...k, ...columns];
    const set = columns.map((name, i) => `t.${quote(name)} = v.c${k.length + i}`).join(', ');
    const join = k.map((name, i) => `t.${quote(name)} = v.c${i}`).join(' AND ');
    const same = columns.map((name, i) => sameValue(columnOf(table, name), `t.${quote(name)}`, `v.c${k.length + i}`)).join(' AND ');
    return {
      sql: `UPDATE ${qualified(table)} AS t JOIN (${derived(names.map((n) => slot(columnOf(table, n))), rows.length)}) AS v ON ${join}
               SET ${set} WHERE NOT (${same})`,
      bindings: rows.flat(),
    };
  },

  insertRows(table, columns, rows) {
    const one = `(${columns.map((name) => slot(columnOf(table, name))).join(', ')})`;
    return {
      sql: `INSERT INTO ${qualified(table)} (${columns.map(quote).join(', ')}) VALUES ${rows.map(() => one).join(', ')}`,
      bindings: rows.flat(),
    };
  },

  isolation: 'repeatable read',

  deleteRows(table, keys) {
    const k = table.primaryKey;
    const one = `(${k.map((name) => slot(columnOf(table, name))).join(', ')})`;
    return { sql: `DELETE FROM ${qualified(table)} WHERE (${k.map(quote).join(', ')}) IN (${keys.map(() => one).join(', ')})`, bindings: keys.flat() };
  },

  readGuard(schema, entities) {
    return {
      sql: `SELECT entity, entity_id, field, version_ms, origin, event_id, written FROM ${qualified({ schema, name: GUARD_TABLE })}
             WHERE (entity, entity_id) IN (${placeholders(2, entities.length)})`,
      bindings: entities.flat(),
    };
  },

  writeGuard(schema, rows) {
    return {
      sql: `INSERT INTO ${qualified({ schema, name: GUARD_TABLE })} (entity, entity_id, field, version_ms, origin, event_id, written)
            VALUES ${placeholders(7, rows.length)}
            ON DUPLICATE KEY UPDATE version_ms = VALUES(version_ms), origin = VALUES(origin), event_id = VALUES(event_id), written = VALUES(written)`,
      bindings: rows.flatMap(guardValues),
    };
  },

  readOffsets(schema, sink) {
    return { sql: `SELECT topic, kafka_partition, CAST(next_offset AS CHAR) AS next_offset FROM ${qualified({ schema, name: SINK_OFFSETS_TABLE })} WHERE sink = ?`, bindings: [sink] };
  },

  writeOffsets(schema, sink, rows) {
    return {
      sql: `INSERT INTO ${qualified({ schema, name: SINK_OFFSETS_TABLE })} (sink, topic, kafka_partition, next_offset) VALUES ${placeholders(4, rows.length)}
            ON DUPLICATE KEY UPDATE next_offset = GREATEST(next_offset, VALUES(next_offset))`,
      bindings: rows.flatMap((r) => [sink, r.topic, r.partition, r.next]),
    };
  },

  resetOffset(schema, sink, row) {
    return {
      sql: `UPDATE ${qualified({ schema, name: SINK_OFFSETS_TABLE })} SET next_offset = ? WHERE sink = ? AND topic = ? AND kafka_partition = ?`,
      bindings: [row.next, sink, row.topic, row.partition],
    };
  },

  // mysql2 answers a write with [ResultSetHeader, undefined]; `affectedRows` counts rows changed (the
  // update's predicate leaves unchanged rows out, so matched and changed are the same rows).
  changedRows: (result) => (result as [{ affectedRows?: number }])[0]?.affectedRows ?? 0,
  resultRows: (result) => (result as [Array<Record<string, unknown>>])[0],

  parameter(col, value) {
    if (typeof value === 'number' && (col.type.kind === 'timestamptz' || col.type.kind === 'timestamp')) {
      // 'YYYY-MM-DD HH:MM:SS.fff' in UTC (see slot).
      return new Date(value).toISOString().replace('T', ' ').replace('Z', '');
    }
    return domainParameter(value);
  },

  // The protocol's limit is 65,535 placeholders a statement; the packet limit comes first for wide rows.
  maxRows: (width) => Math.max(1, Math.floor(20_000 / Math.max(width, 1))),

  refusalCode: (error) => String((error as { code?: unknown; errno?: unknown }).code ?? (error as { errno?: unknown }).errno ?? 'DB_REFUSED'),

  isRowRefusal(error) {
    return ROW_REFUSALS.has(Number((error as { errno?: unknown }).errno));
  },
};

/**
 * Server errors that are a row's fault: a NULL into NOT NULL (1048), no default (1364), a duplicate
 * key (1062), out of range (1264), truncated (1265), an incorrect value (1292, 1366, 1411), too
 * long (1406), a foreign key (1451, 1452), a CHECK constraint (MySQL 3819, MariaDB 4025).
 */
const ROW_REFUSALS = new Set([1048, 1062, 1264, 1265, 1292, 1364, 1366, 1406, 1411, 1451, 1452, 3819, 4025]);
