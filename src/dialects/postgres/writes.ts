import { GUARD_TABLE, SINK_OFFSETS_TABLE, type Column, type LegacyWriteSql, type SqlStatement, type TableInfo, type TableRef } from '../dialect';
import { domainParameter, guardValues, placeholders } from '../shared-writes';

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

function column(table: TableInfo, name: string): Column {
  return table.columns.find((c) => c.name === name)!;
}

/** `(CAST(? AS t1), CAST(? AS t2)), …`: typed, so a VALUES list joins and compares as the columns do. */
function typedValues(types: string[], rows: unknown[][]): string {
  const one = `(${types.map((t) => `CAST(? AS ${castType(t)})`).join(', ')})`;
  return rows.map(() => one).join(', ');
}

/**
 * PostgreSQL's legacy-sink statements. Updates are one `UPDATE … FROM (VALUES …)` with an
 * `IS DISTINCT FROM` predicate (an unchanged row is not touched, so its trigger does not fire);
 * inserts are one multi-row `INSERT … ON CONFLICT (key) DO UPDATE … WHERE … IS DISTINCT FROM …`.
 * An INSERT … ON CONFLICT cannot serve rows that exist: PostgreSQL checks NOT NULL on the proposed
 * row before it finds the conflict, and an update carries only the changed columns.
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
    const types = k.map((name) => column(table, name).sqlType);
    // Ordered, so two writers lock shared rows in the same order and cannot deadlock on them.
    return {
      sql: `SELECT ${k.map((name, i) => `t.${quote(name)}::text AS k${i}`).join(', ')}
              FROM ${qualified(table)} t
             WHERE (${k.map((name) => `t.${quote(name)}`).join(', ')}) IN (${typedValues(types, keys)})
             ORDER BY ${k.map((name) => `t.${quote(name)}`).join(', ')} FOR UPDATE`,
      bindings: keys.flat(),
    };
  },

  updateRows(table, columns, rows) {
    const k = table.primaryKey;
    const names = [...k, ...columns];
    const alias = names.map((_, i) => `c${i}`);
    const set = columns.map((name, i) => `${quote(name)} = v.c${k.length + i}`).join(', ');
    const join = k.map((name, i) => `t.${quote(name)} = v.c${i}`).join(' AND ');
    const target = `(${columns.map((name) => `t.${quote(name)}`).join(', ')})`;
    const source = `(${columns.map((_, i) => `v.c${k.length + i}`).join(', ')})`;
    return {
      sql: `UPDATE ${qualified(table)} AS t SET ${set}
              FROM (VALUES ${typedValues(names.map((n) => column(table, n).sqlType), rows)}) AS v(${alias.join(', ')})
             WHERE ${join} AND ROW${target} IS DISTINCT FROM ROW${source}`,
      bindings: rows.flat(),
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
            VALUES ${typedValues(columns.map((n) => column(table, n).sqlType), rows)}
            ON CONFLICT (${k.map(quote).join(', ')}) ${update}`,
      bindings: rows.flat(),
    };
  },

  deleteRows(table, keys) {
    const k = table.primaryKey;
    return {
      sql: `DELETE FROM ${qualified(table)} WHERE (${k.map(quote).join(', ')}) IN (${typedValues(k.map((n) => column(table, n).sqlType), keys)})`,
      bindings: keys.flat(),
    };
  },

  readGuard(schema, entities) {
    return {
      sql: `SELECT entity, entity_id, field, version_ms, origin, event_id, written
              FROM ${qualified({ schema, name: GUARD_TABLE })}
             WHERE (entity, entity_id) IN (${placeholders(2, entities.length)})`,
      bindings: entities.flat(),
    };
  },

  writeGuard(schema, rows): SqlStatement {
    return {
      sql: `INSERT INTO ${qualified({ schema, name: GUARD_TABLE })} (entity, entity_id, field, version_ms, origin, event_id, written)
            VALUES ${placeholders(7, rows.length)}
            ON CONFLICT (entity, entity_id, field) DO UPDATE SET version_ms = EXCLUDED.version_ms, origin = EXCLUDED.origin,
              event_id = EXCLUDED.event_id, written = EXCLUDED.written, updated_at = now()`,
      bindings: rows.flatMap(guardValues),
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

  changedRows: (result) => (result as { rowCount?: number }).rowCount ?? 0,
  resultRows: (result) => (result as { rows: Array<Record<string, unknown>> }).rows,

  parameter(col, value) {
    if (value instanceof Date) return value.toISOString();
    if (col.type.kind === 'timestamptz' || col.type.kind === 'timestamp') {
      return typeof value === 'number' ? new Date(value).toISOString() : domainParameter(value);
    }
    return domainParameter(value);
  },

  // The protocol's limit is 65,535 parameters a statement.
  maxRows: (width) => Math.max(1, Math.floor(60_000 / Math.max(width, 1))),

  isRowRefusal(error) {
    const code = (error as { code?: unknown }).code;
    // SQLSTATE class 22 (data exception) and 23 (integrity constraint violation).
    return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
  },
};
