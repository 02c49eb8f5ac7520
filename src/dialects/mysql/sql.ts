import { createHash } from 'node:crypto';
import type { Column, TableInfo, TableRef } from '../dialect';

/** The longest writer the changelog's origin_user holds: USER() is at most 32 (MySQL) or 80 (MariaDB) + '@' + 255. */
export const MAX_WRITER = 512;
/** What a trigger records as the writer: USER() (user@host), only when the row carries a tag. */
const WRITER = `IF(@banyan_origin IS NULL, NULL, LEFT(USER(), ${MAX_WRITER}))`;

/** MySQL and MariaDB limit table and trigger names to 64 characters. */
const MAX_NAME = 64;
/** The longest suffix appended to the changelog name: `_ins_new` (see changelogDdl). */
const LONGEST_SUFFIX = '_ins_new'.length;
const SPATIAL = new Set([
  'geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon',
  'geometrycollection', 'geomcollection',
]);

export function quoteIdentifier(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

export function qualified(table: TableRef): string {
  const name = quoteIdentifier(table.name);
  return table.schema === undefined ? name : `${quoteIdentifier(table.schema)}.${name}`;
}

/**
 * `banyan_cl_<table>`, shortened with a hash of the table name when the name plus a trigger
 * suffix would pass the 64-character limit (lengths count characters, as the server does).
 */
export function changelogName(table: string): string {
  const name = `banyan_cl_${table}`;
  const room = MAX_NAME - LONGEST_SUFFIX;
  if ([...name].length <= room) return name;
  const hash = createHash('sha1').update(table).digest('hex').slice(0, 8);
  return `${[...name].slice(0, room - hash.length - 1).join('')}_${hash}`;
}

/**
 * A string literal for DDL, where bindings cannot be used (trigger bodies). Anything but plain
 * word characters is written as a utf8mb4 hex literal, which means the same under every sql_mode
 * (NO_BACKSLASH_ESCAPES, ANSI_QUOTES) and cannot be broken out of.
 */
export function stringLiteral(value: string): string {
  if (/^\w*$/.test(value)) return `'${value}'`;
  return `_utf8mb4 X'${Buffer.from(value, 'utf8').toString('hex')}'`;
}

/**
 * SQL giving the text form that dialect.ts documents for the column's kind. JSON_OBJECT would
 * turn numbers into JSON numbers and nest JSON columns, so every value is cast to text first.
 */
export function textExpression(column: Column, ref: string): string {
  const type = column.type;
  switch (type.kind) {
    case 'string':
      return ref;
    case 'boolean':
      // NULL matches no branch and stays NULL.
      return `CASE ${ref} + 0 WHEN 1 THEN 'true' WHEN 0 THEN 'false' END`;
    case 'bytes':
      return `LOWER(HEX(${ref}))`;
    case 'timestamptz':
      // A TIMESTAMP is stored as UTC but shown in the writer's session time zone. UNIX_TIMESTAMP
      // of the column reads the stored instant directly (no zone, no DST ambiguity); adding it to
      // the epoch as a DATETIME writes that instant in UTC. The zero timestamp is not an instant
      // (UNIX_TIMESTAMP gives 0, or NULL inside a trigger): it keeps its own zero text, which the
      // converter refuses (a dead letter, not a silent NULL). Any other value without an instant
      // is marked so, never passed on as local time read as UTC.
      return `COALESCE(CAST(CAST(TIMESTAMP'1970-01-01 00:00:00' + INTERVAL NULLIF(UNIX_TIMESTAMP(${ref}), 0) * 1000000 MICROSECOND AS DATETIME(${type.precision})) AS CHAR), IF(CAST(${ref} AS CHAR) LIKE '0000-00-00%', CAST(${ref} AS CHAR), CONCAT('no UTC instant: ', CAST(${ref} AS CHAR))))`;
    case 'other': {
      const base = type.sqlType.toLowerCase().replace(/\(.*$/, '').trim();
      if (SPATIAL.has(base)) return `ST_AsText(${ref})`;
      // BIT(n > 1) reads as a binary string; its number is what people mean by it.
      if (base === 'bit') return `CAST(${ref} + 0 AS CHAR)`;
      return `CAST(${ref} AS CHAR)`;
    }
    default:
      // int, long, float, double, decimal, uuid, date, time, timestamp, json: the server's own
      // text form is the documented one (DATETIME(p) and TIME(p) keep exactly p decimals).
      return `CAST(${ref} AS CHAR)`;
  }
}

/**
 * One image: `JSON_OBJECT('col', <text of col>, …)`. `row` is `NEW`/`OLD` in a trigger, omitted
 * when reading the table itself (snapshots). Shared by both so the two cannot disagree.
 */
export function imageExpression(columns: Column[], row?: 'NEW' | 'OLD'): string {
  const pairs = columns.map((c) => {
    const ref = row ? `${row}.${quoteIdentifier(c.name)}` : quoteIdentifier(c.name);
    return `${stringLiteral(c.name)}, ${textExpression(c, ref)}`;
  });
  return `JSON_OBJECT(${pairs.join(', ')})`;
}

/**
 * An image as read back: text for the changelog's LONGTEXT, or already parsed when the server
 * types it JSON (mysql2 parses JSON_OBJECT results itself on MySQL 8 and MariaDB 10.11).
 */
export function parseImage(value: unknown): Record<string, string | null> | null {
  if (value === null || value === undefined) return null;
  return (typeof value === 'string' ? JSON.parse(value) : value) as Record<string, string | null>;
}

const EVENTS = [
  { event: 'INSERT', suffix: '_ins', op: 'I', before: undefined, after: 'NEW' },
  { event: 'UPDATE', suffix: '_upd', op: 'U', before: 'OLD', after: 'NEW' },
  { event: 'DELETE', suffix: '_del', op: 'D', before: 'OLD', after: undefined },
] as const;

/** The trigger names the changelog needs, unquoted (for the catalog). */
export function changelogTriggerNames(table: TableRef): string[] {
  return EVENTS.map((e) => `${changelogName(table.name)}${e.suffix}`);
}

function triggerNames(table: TableRef): Array<{ name: string; bridge: string }> {
  return changelogTriggerNames(table).map((name) => ({
    name: qualified({ schema: table.schema, name }),
    bridge: qualified({ schema: table.schema, name: `${name}_new` }),
  }));
}

/**
 * The changelog table and its three triggers. A trigger is replaced without a moment where none
 * exists: a bridge trigger with the new body is created first, then the old one is dropped and
 * recreated, then the bridge is dropped. A write during a reinstall may be recorded twice
 * (harmless downstream), never not at all. MySQL has no CREATE OR REPLACE TRIGGER.
 */
export function changelogDdl(table: TableInfo): string[] {
  const target = qualified(table);
  const cl = qualified({ schema: table.schema, name: changelogName(table.name) });
  const names = triggerNames(table);
  const statements = [
    // Images are LONGTEXT, not JSON: MariaDB's JSON is LONGTEXT plus a JSON_VALID check that
    // would run on every write for documents JSON_OBJECT already made valid, and MySQL's binary
    // JSON would be converted back to text for every read anyway.
    `CREATE TABLE IF NOT EXISTS ${cl} (
  change_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  op CHAR(1) CHARACTER SET ascii NOT NULL,
  changed_at DATETIME(6) NOT NULL,
  origin VARCHAR(128) NULL,
  origin_user VARCHAR(${MAX_WRITER}) NULL,
  before_image LONGTEXT NULL,
  after_image LONGTEXT NULL,
  PRIMARY KEY (change_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
  ];
  EVENTS.forEach((e, i) => {
    const { name, bridge } = names[i]!;
    const image = (row: 'NEW' | 'OLD' | undefined) => (row ? imageExpression(table.columns, row) : 'NULL');
    // LEFT(): a hand-set tag longer than the column must not make the legacy write fail. Any
    // session can set @banyan_origin, so the writer goes with a tag: USER(), the client's user
    // and host (CURRENT_USER() in a trigger is the trigger's definer, not the writer).
    const body = `FOR EACH ROW INSERT INTO ${cl} (op, changed_at, origin, origin_user, before_image, after_image)
  VALUES ('${e.op}', UTC_TIMESTAMP(6), LEFT(@banyan_origin, 128), ${WRITER}, ${image(e.before)}, ${image(e.after)})`;
    statements.push(
      `DROP TRIGGER IF EXISTS ${bridge}`,
      `CREATE TRIGGER ${bridge} AFTER ${e.event} ON ${target} ${body}`,
      `DROP TRIGGER IF EXISTS ${name}`,
      `CREATE TRIGGER ${name} AFTER ${e.event} ON ${target} ${body}`,
      `DROP TRIGGER ${bridge}`,
    );
  });
  return statements;
}

/**
 * Adds the writer column to a changelog made before it (see MysqlDialect.upgradeChangelog, which
 * runs it only when the column is missing: MySQL 8 has no ADD COLUMN IF NOT EXISTS). Appended
 * last, so MySQL 8 and MariaDB add it in place without copying the table (ALGORITHM=INSTANT).
 */
export function addWriterColumnDdl(table: TableRef): string {
  return `ALTER TABLE ${qualified({ schema: table.schema, name: changelogName(table.name) })} ADD COLUMN origin_user VARCHAR(${MAX_WRITER}) NULL`;
}

/**
 * Whether USER() as a trigger recorded it (`name@host`: the name the client gave, the host it
 * came from) is the user `trusted` names: `name` (any host), `name@host`, or `'name'@'host'`
 * (quoted with ', " or `, as MySQL writes accounts; needed for a name holding '@'). A host may use
 * the account wildcards % and _. Names compare exactly (MySQL user names are case-sensitive),
 * hosts without regard to case.
 */
export function isTrustedWriter(writer: string, trusted: string): boolean {
  const at = writer.lastIndexOf('@');
  // Host names never hold '@', user names may: the last one separates them.
  const [name, host] = at < 0 ? [writer, ''] : [writer.slice(0, at), writer.slice(at + 1)];
  const account = parseAccount(trusted);
  if (name !== account.name) return false;
  return account.host === undefined || hostPattern(account.host).test(host);
}

function parseAccount(text: string): { name: string; host?: string } {
  const quoted = /^(['"`])((?:(?!\1).|\1\1)*)\1(?:@(?:(['"`])((?:(?!\3).|\3\3)*)\3|([^'"`]*)))?$/s.exec(text);
  if (quoted) {
    const unquote = (value: string, quote: string) => value.split(quote + quote).join(quote);
    const host = quoted[3] !== undefined ? unquote(quoted[4]!, quoted[3]) : quoted[5];
    return { name: unquote(quoted[2]!, quoted[1]!), ...(host !== undefined ? { host } : {}) };
  }
  const at = text.lastIndexOf('@');
  return at < 0 ? { name: text } : { name: text.slice(0, at), host: text.slice(at + 1) };
}

/** An account host as a pattern: % any run of characters, _ any one, the rest literal, any case. */
function hostPattern(host: string): RegExp {
  const source = [...host].map((c) => (c === '%' ? '.*' : c === '_' ? '.' : c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'))).join('');
  return new RegExp(`^${source}$`, 'is');
}

export function uninstallDdl(table: TableRef): string[] {
  const triggers = triggerNames(table).flatMap(({ name, bridge }) => [`DROP TRIGGER IF EXISTS ${name}`, `DROP TRIGGER IF EXISTS ${bridge}`]);
  return [...triggers, `DROP TABLE IF EXISTS ${qualified({ schema: table.schema, name: changelogName(table.name) })}`];
}

/**
 * Keyset predicate for a (composite) key, expanded as `k1 >= ? AND (k1 > ? OR (k1 = ? AND k2 > ?))`:
 * MariaDB does not use an index for the row comparison `(k1, k2) > (?, ?)` (EXPLAIN on 10.11
 * shows a full index scan), which would make a snapshot quadratic. `bindingOrder` lists, for each
 * `?`, the index of the key value it takes.
 */
export function keysetAfter(keys: string[]): { sql: string; bindingOrder: number[] } {
  const refs = keys.map(quoteIdentifier);
  const last = refs.length - 1;
  let sql = `${refs[last]} > ?`;
  const order = [last];
  for (let i = last - 1; i >= 0; i--) {
    sql = `(${refs[i]} > ? OR (${refs[i]} = ? AND ${sql}))`;
    order.unshift(i, i);
  }
  if (last === 0) return { sql, bindingOrder: order };
  return { sql: `${refs[0]} >= ? AND ${sql}`, bindingOrder: [0, ...order] };
}
