import { GUARD_TABLE, SINK_OFFSETS_TABLE, type LegacyWriteSql, type SqlStatement, type TableRef } from '../dialect';
import { columnOf, domainParameter, guardValues, placeholders } from '../shared-writes';

/** A quoted identifier for SQL that goes through knex, which would take a bare `?` for a parameter. */
function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`.replace(/\?/g, '\\?');
}

/**
 * The type a parameter is cast to: the column's, without a length for strings. CAST(… AS
 * varchar(40)) cuts a longer value without an error, where assigning it to the column refuses it.
 */
function castType(sqlType: string): string {
  return /^(character varying|character|varchar|char|bpchar|bit varying|bit)\b/i.test(sqlType) ? 'text' : sqlType;
}

function qualified(table: TableRef): string {
  return table.schema ? `${quote(table.schema)}.${quote(table.name)}` : quote(table.name);
}

/** Rows as one array per column: the parameters of an `unnest`. */
function columnsOf(rows: unknown[][], width: number): unknown[][] {
  return Array.from({ length: width }, (_, i) => rows.map((row) => row[i] ?? null));
}

/**
 * `unnest(CAST(? AS t1[]), CAST(? AS t2[])) AS alias(c0, c1)`: the rows as one typed array per
 * column. A statement of constant size whatever the row count (a VALUES list or a row-value IN list
 * of thousands of rows costs PostgreSQL more to plan than to run, and 10,000 pairs exceed its stack).
 */
function unnest(types: string[], alias: string): string {
  return `unnest(${types.map((t) => `CAST(? AS ${castType(t)}[])`).join(', ')}) AS ${alias}(${types.map((_, i) => `c${i}`).join(', ')})`;
}

/**
 * PostgreSQL's legacy-sink statements, each over typed arrays (`unnest`), one statement for any
 * number of rows. Updates are one `UPDATE … FROM unnest(…)` with an `IS DISTINCT FROM` predicate
 * (an unchanged row is not touched, so its trigger does not fire); inserts are one `INSERT … SELECT
 * FROM unnest(…) ON CONFLICT (key) DO UPDATE … WHERE … IS DISTINCT FROM …`. An INSERT … ON
 * CONFLICT cannot serve rows that exist: PostgreSQL checks NOT NULL on the proposed row before it
 * finds the conflict, and an update carries only the changed columns.
 */
export const postgresWrites: LegacyWriteSql = {
  sinkTables(schema) {
    const guard = qualified({ schema, name: GUARD_TABLE });
    const offsets = qualified({ schema, name: SINK_OFFSETS_TABLE });
    return [
      `CREATE TABLE IF NOT EXISTS ${guard} (
         entity varchar(100) NOT NULL,
         entity_id varchar(400) NOT NULL,
         field varchar(100) NOT NULL,
         version_ms bigint NOT NULL,
         origin varchar(32) NOT NULL,
         event_id varchar(100) NOT NULL,
         written boolean NOT NULL,
         updated_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (entity, entity_id, field))`,
      `CREATE TABLE IF NOT EXISTS ${offsets} (
         sink varchar(200) NOT NULL,
         topic varchar(249) NOT NULL,
         kafka_partition int NOT NULL,
         next_offset bigint NOT NULL,
         updated_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (sink, topic, kafka_partition))`,
    ];
  },

  lockRows(table, keys) {
    const k = table.primaryKey;
    const cols = k.map((name) => `t.${quote(name)}`).join(', ');
    // Ordered, so two writers lock shared rows in the same order and cannot deadlock on them.
    return {
      sql: `SELECT ${k.map((name, i) => `t.${quote(name)}::text AS k${i}`).join(', ')}
              FROM ${qualified(table)} t
             WHERE (${cols}) IN (SELECT * FROM ${unnest(k.map((n) => columnOf(table, n).sqlType), 'v')})
             ORDER BY ${cols} FOR UPDATE`,
      bindings: columnsOf(keys, k.length),
    };
  },

  updateRows(table, columns, rows) {
    const k = table.primaryKey;
    const names = [...k, ...columns];
    const set = columns.map((name, i) => `${quote(name)} = v.c${k.length + i}`).join(', ');
    const join = k.map((name, i) => `t.${quote(name)} = v.c${i}`).join(' AND ');
    const target = `(${columns.map((name) => `t.${quote(name)}`).join(', ')})`;
    const source = `(${columns.map((_, i) => `v.c${k.length + i}`).join(', ')})`;
    return {
      sql: `UPDATE ${qualified(table)} AS t SET ${set}
              FROM ${unnest(names.map((n) => columnOf(table, n).sqlType), 'v')}
             WHERE ${join} AND ROW${target} IS DISTINCT FROM ROW${source}`,
      bindings: columnsOf(rows, names.length),
    };
  },

  insertRows(table, columns, rows) {
    const k = table.primaryKey;
    const rest = columns.filter((name) => !k.includes(name));
    const update = rest.length
      ? `DO UPDATE SET ${rest.map((name) => `${quote(name)} = EXCLUDED.${quote(name)}`).join(', ')}
           WHERE ROW(${rest.map((name) => `t.${quote(name)}`).join(', ')}) IS DISTINCT FROM ROW(${rest.map((name) => `EXCLUDED.${quote(name)}`).join(', ')})`
      : 'DO NOTHING';
    return {
      sql: `INSERT INTO ${qualified(table)} AS t (${columns.map(quote).join(', ')})
            SELECT * FROM ${unnest(columns.map((n) => columnOf(table, n).sqlType), 'v')}
            ON CONFLICT (${k.map(quote).join(', ')}) ${update}`,
      bindings: columnsOf(rows, columns.length),
    };
  },

  deleteRows(table, keys) {
    const k = table.primaryKey;
    return {
      sql: `DELETE FROM ${qualified(table)} WHERE (${k.map(quote).join(', ')}) IN (SELECT * FROM ${unnest(k.map((n) => columnOf(table, n).sqlType), 'v')})`,
      bindings: columnsOf(keys, k.length),
    };
  },

  readGuard(schema, entities) {
    return {
      sql: `SELECT g.entity, g.entity_id, g.field, g.version_ms, g.origin, g.event_id, g.written
              FROM ${qualified({ schema, name: GUARD_TABLE })} g
              JOIN ${unnest(['text', 'text'], 'v')} ON g.entity = v.c0 AND g.entity_id = v.c1`,
      bindings: columnsOf(entities, 2),
    };
  },

  writeGuard(schema, rows): SqlStatement {
    return {
      sql: `INSERT INTO ${qualified({ schema, name: GUARD_TABLE })} (entity, entity_id, field, version_ms, origin, event_id, written)
            SELECT * FROM ${unnest(['text', 'text', 'text', 'bigint', 'text', 'text', 'boolean'], 'v')}
            ON CONFLICT (entity, entity_id, field) DO UPDATE SET version_ms = EXCLUDED.version_ms, origin = EXCLUDED.origin,
              event_id = EXCLUDED.event_id, written = EXCLUDED.written, updated_at = now()`,
      bindings: columnsOf(rows.map(guardValues), 7),
    };
  },

  readOffsets(schema, sink) {
    return { sql: `SELECT topic, kafka_partition, next_offset::text AS next_offset FROM ${qualified({ schema, name: SINK_OFFSETS_TABLE })} WHERE sink = ?`, bindings: [sink] };
  },

  writeOffsets(schema, sink, rows) {
    const table = qualified({ schema, name: SINK_OFFSETS_TABLE });
    return {
      sql: `INSERT INTO ${table} AS o (sink, topic, kafka_partition, next_offset) VALUES ${placeholders(4, rows.length)}
            ON CONFLICT (sink, topic, kafka_partition) DO UPDATE SET next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset), updated_at = now()`,
      bindings: rows.flatMap((r) => [sink, r.topic, r.partition, r.next]),
    };
  },

  resetOffset(schema, sink, row) {
    return {
      sql: `UPDATE ${qualified({ schema, name: SINK_OFFSETS_TABLE })} SET next_offset = ?, updated_at = now() WHERE sink = ? AND topic = ? AND kafka_partition = ?`,
      bindings: [row.next, sink, row.topic, row.partition],
    };
  },

  changedRows: (result) => (result as { rowCount?: number }).rowCount ?? 0,
  resultRows: (result) => (result as { rows: Array<Record<string, unknown>> }).rows,

  parameter(col, value) {
    if (value instanceof Date) return value.toISOString();
    if (col.type.kind === 'timestamptz' || col.type.kind === 'timestamp') {
      return typeof value === 'number' ? new Date(value).toISOString() : domainParameter(value);
    }
    return domainParameter(value);
  },

  // One parameter per column whatever the row count: the bound is the size of a batch's work.
  maxRows: () => 20_000,

  refusalCode: (error) => String((error as { code?: unknown }).code ?? 'DB_REFUSED'),

  isRowRefusal(error) {
    const code = (error as { code?: unknown }).code;
    // SQLSTATE class 22 (data exception) and 23 (integrity constraint violation).
    return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
  },
};
