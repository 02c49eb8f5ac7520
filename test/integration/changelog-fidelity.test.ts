import type { Kafka } from 'kafkajs';
import type { Knex } from 'knex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import type { Dialect } from '../../src/dialects/dialect';
import { MysqlDialect } from '../../src/dialects/mysql.dialect';
import { PostgresDialect } from '../../src/dialects/postgres.dialect';
import { changeEncoder, decimalToBytes } from '../../src/import/changelog/avro';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { parseTableName } from '../../src/dialects';
import { AvroOutput } from '../../src/runtime/avro-output';
import type { BanyanConfig, ChangelogSourceConfig } from '../../src/config';
import { partitionForKey } from '../../src/runtime/record-batch';
import type { SourceRunner } from '../../src/runtime/source-runner';
import { decodeMessages, freshName, readAll, readTopic, readUntil, startChangelogRunner, testConfig, testKafka, textHeaders, type ReadMessage } from '../helpers';

/**
 * Data fidelity with a legacy table the other tests do not use: a composite primary key, a
 * decimal, unicode text and microseconds. Records are asserted exactly, partition by partition,
 * after reading each topic to its end (every partition up to its last committed record).
 */

/** The columns of `order_lines` in both databases; MariaDB adds a TIMESTAMP (`stamped`). */
const COLUMNS = '(region, order_no, line, amount, note, shipped_at, due)';
const NOTE = 'Grüße 🚀 — 東京';

interface Fixture {
  label: string;
  dialect: Dialect;
  /** The `databases.<key>` block and the source's `table`. */
  databaseYaml(name: string): string;
  setup(config: BanyanConfig, name: string): Promise<{ db: Knex; table: string; sqlTable: string; cleanup(): Promise<void> }>;
  /** Columns this database's table has beyond COLUMNS, all null in the rows written here. */
  extra: Record<string, null>;
  /** Runs the statements in a session that accepts the database's odd values (as a lax legacy application does). */
  writeLax(db: Knex, statements: string[]): Promise<void>;
  /** Rows Avro cannot carry: the statement, then the column and its text in the image, and why it is refused. */
  unrepresentable(sqlTable: string): Array<{ sql: string; column: string; text: string; why: string }>;
  /** One such row written before the snapshot. */
  snapshotBad(sqlTable: string): { sql: string; column: string; text: string; why: string };
  /** Values at the edge of what the database holds, with what they must decode to. */
  edge: { amount: string; shippedAt: string; due: string; shippedAtMicros: bigint; dueDays: number };
}

/** Days since the epoch of an astronomical year (0 = 1 BC), through Date's proleptic calendar. */
function utcDays(year: number, month: number, day: number): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return date.getTime() / 86_400_000;
}

const postgres: Fixture = {
  label: 'PostgreSQL',
  dialect: new PostgresDialect(),
  databaseYaml: (name) => `  ${name}:\n    dialect: postgres\n    database: postgres\n    user: postgres\n`,
  async setup(config, name) {
    const schema = freshName('banyan_fid');
    const db = createKnex(config.databases[name]!);
    await db.raw(`CREATE SCHEMA ${schema}`);
    await db.raw(`CREATE TABLE ${schema}.order_lines (
      region varchar(8) NOT NULL, order_no bigint NOT NULL, line integer NOT NULL,
      amount numeric(14,4), note text, shipped_at timestamp(6), due date,
      PRIMARY KEY (region, order_no, line))`);
    return {
      db,
      table: `${schema}.order_lines`,
      sqlTable: `${schema}.order_lines`,
      cleanup: async () => {
        await db.raw(`DROP SCHEMA ${schema} CASCADE`);
        await db.destroy();
      },
    };
  },
  extra: {},
  async writeLax(db, statements) {
    for (const sql of statements) await db.raw(sql);
  },
  unrepresentable: (t) => [
    { sql: `INSERT INTO ${t} ${COLUMNS} VALUES ('eu', 3, 2, 1, 'x', 'infinity', '2024-03-01')`, column: 'shipped_at', text: 'infinity', why: '"infinity" is not a timestamp (YYYY-MM-DD HH:MM:SS[.fraction], UTC)' },
    { sql: `INSERT INTO ${t} ${COLUMNS} VALUES ('eu', 3, 3, 1, 'x', NULL, '-infinity')`, column: 'due', text: '-infinity', why: '"-infinity" is not a date (YYYY-MM-DD)' },
  ],
  // to_char alone would print 44 BC as 0044.
  edge: {
    amount: '-9999999999.9999',
    shippedAt: '0044-03-15 10:00:00.000001 BC',
    due: '4713-01-01 BC',
    shippedAtMicros: (BigInt(utcDays(-43, 3, 15)) * 86_400n + 36_000n) * 1_000_000n + 1n,
    dueDays: utcDays(-4712, 1, 1),
  },
  snapshotBad: (t) => ({
    sql: `INSERT INTO ${t} ${COLUMNS} VALUES ('eu', 0, 1, 1, 'x', '-infinity', NULL)`,
    column: 'shipped_at',
    text: '-infinity',
    why: '"-infinity" is not a timestamp (YYYY-MM-DD HH:MM:SS[.fraction], UTC)',
  }),
};

const mariadb: Fixture = {
  label: 'MariaDB',
  dialect: new MysqlDialect(),
  databaseYaml: (name) => `  ${name}:\n    dialect: mariadb\n    database: ${freshName('banyan_fid')}\n    user: root\n`,
  async setup(config, name) {
    const database = config.databases[name]!.database;
    const admin = createKnex({ ...config.databases[name]!, database: 'mysql' });
    await admin.raw(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
    const db = createKnex(config.databases[name]!);
    await db.raw(`CREATE TABLE order_lines (
      region varchar(8) NOT NULL, order_no bigint NOT NULL, line int NOT NULL,
      amount decimal(14,4), note text, shipped_at datetime(6), due date, stamped timestamp(6) NULL DEFAULT NULL,
      PRIMARY KEY (region, order_no, line))`);
    return {
      db,
      table: 'order_lines',
      sqlTable: 'order_lines',
      cleanup: async () => {
        await db.destroy();
        await admin.raw(`DROP DATABASE IF EXISTS \`${database}\``);
        await admin.destroy();
      },
    };
  },
  extra: { stamped: null },
  async writeLax(db, statements) {
    // A legacy application's lax session: zero dates and invalid dates are stored as written.
    await db.transaction(async (trx) => {
      await trx.raw(`SET SESSION sql_mode = 'ALLOW_INVALID_DATES'`);
      for (const sql of statements) await trx.raw(sql);
      await trx.raw('SET SESSION sql_mode = DEFAULT');
    });
  },
  unrepresentable: (t) => [
    { sql: `INSERT INTO ${t} ${COLUMNS} VALUES ('eu', 3, 2, 1, 'x', '0000-00-00 00:00:00', NULL)`, column: 'shipped_at', text: '0000-00-00 00:00:00.000000', why: '"0000-00-00 00:00:00.000000" is not a calendar date (a zero date or a zero month or day)' },
    { sql: `INSERT INTO ${t} ${COLUMNS} VALUES ('eu', 3, 3, 1, 'x', NULL, '2024-02-30')`, column: 'due', text: '2024-02-30', why: '"2024-02-30" is not a calendar date (month 2 of 2024 has 29 days)' },
    { sql: `INSERT INTO ${t} (region, order_no, line, stamped) VALUES ('eu', 3, 4, '0000-00-00 00:00:00')`, column: 'stamped', text: '0000-00-00 00:00:00.000000', why: '"0000-00-00 00:00:00.000000" is not a calendar date (a zero date or a zero month or day)' },
  ],
  edge: {
    amount: '9999999999.9999',
    shippedAt: '9999-12-31 23:59:59.999999',
    due: '1000-01-01',
    shippedAtMicros: BigInt(Date.UTC(9999, 11, 31, 23, 59, 59)) * 1000n + 999_999n,
    dueDays: utcDays(1000, 1, 1),
  },
  snapshotBad: (t) => ({
    sql: `INSERT INTO ${t} ${COLUMNS} VALUES ('eu', 0, 1, 1, 'x', NULL, '0000-00-00')`,
    column: 'due',
    text: '0000-00-00',
    why: '"0000-00-00" is not a calendar date (a zero date or a zero month or day)',
  }),
};

describe.each([postgres, mariadb])('$label changelog fidelity (composite key, decimals, unicode, microseconds)', (fixture) => {
  let config: BanyanConfig;
  let kafka: Kafka;
  let db: Knex;
  let table: string;
  let sqlTable: string;
  let cleanup: () => Promise<void>;
  let runner: SourceRunner | undefined;
  let topic: string;

  beforeEach(async () => {
    topic = freshName('legacy.fidelity.order_lines');
    config = testConfig(`
databases:
${fixture.databaseYaml('legacy')}
sources:
  - name: lines
    type: changelog
    database: legacy
    table: order_lines  # the fixture's qualified name is set once it made the table
    topic: ${topic}
    pollIntervalMs: 50
    batchSize: 100
`);
    config.kafka.topics.offsets = freshName('offsets');
    config.kafka.topics.deadLetter = freshName('dlq');
    kafka = testKafka(config);
    ({ db, table, sqlTable, cleanup } = await fixture.setup(config, 'legacy'));
    (config.sources[0] as ChangelogSourceConfig).table = table;
  });

  afterEach(async () => {
    await runner?.stop();
    runner = undefined;
    // Its topics (fresh names) go with the file's, in test/integration/setup.ts.
    await cleanup();
  });

  async function start(): Promise<void> {
    await migrateChangelogs(db, fixture.dialect, [table]);
    runner = await startChangelogRunner(config, { db, dialect: fixture.dialect, databaseName: 'legacy' });
  }

  const position = (n: number) => String(n).padStart(20, '0');
  const partitions = () => config.kafka.topics.partitions;

  const MARCH_FIRST = Date.UTC(2024, 2, 1) / 86_400_000;

  /** The row as the registry decodes it. */
  function row(region: string, orderNo: number, line: number, amount: string) {
    return {
      region,
      order_no: BigInt(orderNo),
      line,
      amount: decimalToBytes(amount, 4),
      note: NOTE,
      shipped_at: BigInt(Date.UTC(2024, 1, 29, 13, 14, 15)) * 1000n + 123456n,
      due: MARCH_FIRST,
      ...fixture.extra,
    };
  }
  const goodValues = (region: string, orderNo: number, line: number, amount: string) =>
    `('${region}', ${orderNo}, ${line}, ${amount}, '${NOTE}', '2024-02-29 13:14:15.123456', '2024-03-01')`;

  /** Where Kafka's default partitioner puts a key of this table, framed with the key schema id `frame`. */
  async function partitionOf(frame: Buffer, key: Record<string, string>): Promise<number> {
    const info = await fixture.dialect.describeTable(db, parseTableName(table));
    const body = changeEncoder(info, 'legacy', table).key(new AvroOutput(), key, 'test');
    return partitionForKey(Buffer.concat([frame, body]), partitions());
  }

  function source(n: number) {
    return { database: 'legacy', table, position: position(n), changedAt: expect.anything(), origin: null };
  }

  function headers(operation: string, n: number, extra: Record<string, string> = {}) {
    return {
      'banyan.origin': 'legacy',
      'banyan.operation': operation,
      'banyan.source.position': position(n),
      'banyan.change.time': expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      ...extra,
    };
  }

  /** Each partition's records in offset order: key and value decoded, a tombstone's value null. */
  async function decodeByPartition(messages: ReadMessage[]): Promise<Map<number, unknown[]>> {
    const byPartition = new Map<number, unknown[]>();
    const decoded = await decodeMessages<unknown, unknown>(config, messages);
    const sorted = decoded.map((d, i) => ({ ...d, raw: messages[i]! })).sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset));
    for (const { key, value, headers, partition, raw } of sorted) {
      const list = byPartition.get(partition) ?? [];
      list.push({ key, value, headers, partitionOfKey: partitionForKey(raw.key!, partitions()) });
      byPartition.set(partition, list);
    }
    return byPartition;
  }

  /** Everything in the source's topic once the record at changelog `position` is committed (later ones are not written yet). */
  const readToPosition = (n: number) => readUntil(kafka, topic, (m) => String(m.headers?.['banyan.source.position']) === position(n));

  it('turns an update of a key column into delete + tombstone of the old key and an insert of the new key, each on its key’s partition', async () => {
    await start();
    const old = { region: 'eu', order_no: '1', line: '1' };
    await db.raw(`INSERT INTO ${sqlTable} ${COLUMNS} VALUES ${goodValues('eu', 1, 1, '12.34')}`);
    const [first] = await readTopic(kafka, topic, 1);
    const frame = first!.key!.subarray(0, 5);
    const oldPartition = await partitionOf(frame, old);
    expect(first!.partition).toBe(oldPartition);
    // A new line number whose key hashes to another partition, so per-key order is really at stake.
    let newLine = 2;
    while ((await partitionOf(frame, { ...old, line: String(newLine) })) === oldPartition) newLine++;
    const renamed = { ...old, line: String(newLine) };
    const newPartition = await partitionOf(frame, renamed);

    await db.raw(`UPDATE ${sqlTable} SET line = ${newLine}, amount = 99.5 WHERE region = 'eu' AND order_no = 1 AND line = 1`);
    await db.raw(`UPDATE ${sqlTable} SET amount = 7 WHERE region = 'eu' AND order_no = 1 AND line = ${newLine}`);
    await db.raw(`INSERT INTO ${sqlTable} ${COLUMNS} VALUES ${goodValues('eu', 2, 1, '1')}`);
    const sentinelPartition = await partitionOf(frame, { region: 'eu', order_no: '2', line: '1' });
    const messages = await readToPosition(4);

    const oldKey = { region: 'eu', order_no: 1n, line: 1 };
    const newKey = { ...oldKey, line: newLine };
    const expected = new Map<number, unknown[]>();
    const add = (partition: number, record: unknown) => expected.set(partition, [...(expected.get(partition) ?? []), record]);
    add(oldPartition, {
      key: oldKey,
      value: { op: 'insert', before: null, after: row('eu', 1, 1, '12.34'), source: source(1) },
      headers: headers('insert', 1),
      partitionOfKey: oldPartition,
    });
    add(oldPartition, {
      key: oldKey,
      value: { op: 'delete', before: row('eu', 1, 1, '12.34'), after: null, source: source(2) },
      headers: headers('delete', 2, { 'banyan.key.new': JSON.stringify(renamed) }),
      partitionOfKey: oldPartition,
    });
    add(oldPartition, { key: oldKey, value: null, headers: headers('delete', 2, { 'banyan.key.new': JSON.stringify(renamed) }), partitionOfKey: oldPartition });
    add(newPartition, {
      key: newKey,
      value: { op: 'insert', before: null, after: row('eu', 1, newLine, '99.5'), source: source(2) },
      headers: headers('insert', 2, { 'banyan.key.old': JSON.stringify(old) }),
      partitionOfKey: newPartition,
    });
    add(newPartition, {
      key: newKey,
      value: { op: 'update', before: row('eu', 1, newLine, '99.5'), after: row('eu', 1, newLine, '7'), source: source(3) },
      headers: headers('update', 3),
      partitionOfKey: newPartition,
    });
    add(sentinelPartition, {
      key: { region: 'eu', order_no: 2n, line: 1 },
      value: { op: 'insert', before: null, after: row('eu', 2, 1, '1'), source: source(4) },
      headers: headers('insert', 4),
      partitionOfKey: sentinelPartition,
    });
    expect(await decodeByPartition(messages)).toEqual(expected);
  });

  it('dead-letters every record of a key change together when one of them is too large for Kafka, so the old key is not deleted alone', async () => {
    config.kafka.maxMessageBytes = 20_000;
    await start();
    await db.raw(`INSERT INTO ${sqlTable} ${COLUMNS} VALUES ${goodValues('eu', 1, 1, '1')}`);
    // The delete of the old key (its before image is small) and its tombstone fit; the new key's insert does not.
    await db.raw(`UPDATE ${sqlTable} SET line = 2, note = '${'x'.repeat(30_000)}' WHERE region = 'eu' AND order_no = 1 AND line = 1`);
    await db.raw(`INSERT INTO ${sqlTable} ${COLUMNS} VALUES ${goodValues('eu', 2, 1, '1')}`);

    const records = [...(await decodeByPartition(await readToPosition(3))).values()].flat() as Array<{ value: { op: string } | null; headers: Record<string, string> }>;
    expect(records.map((r) => [r.headers['banyan.source.position'], r.value?.op ?? 'tombstone']).sort()).toEqual([
      [position(1), 'insert'],
      [position(3), 'insert'],
    ]);
    const letters = (await readAll(kafka, config.kafka.topics.deadLetter)).map((m) => ({ key: m.key!.toString(), reason: textHeaders(m)['banyan.dlq.reason'] }));
    const tooLarge = /^record of \d+ bytes does not fit in a record batch of kafka.maxMessageBytes \(20000\)/;
    expect(letters.map((l) => [l.key, l.reason!.replace(tooLarge, 'TOO LARGE')])).toEqual(
      [1, 2, 3].map((k) => [JSON.stringify({ position: position(2) }), `TOO LARGE (record 3 of the 3 records of one change, written all or none; this is record ${k})`]),
    );
    expect(runner!.status).toMatchObject({ state: 'running' });
  });

  it('follows a delete with a tombstone of the same key on the same partition', async () => {
    await db.raw(`INSERT INTO ${sqlTable} ${COLUMNS} VALUES ${goodValues('eu', 5, 1, '-0.0001')}`);
    (config.sources[0] as ChangelogSourceConfig).snapshot = false;
    await start();
    await db.raw(`DELETE FROM ${sqlTable} WHERE region = 'eu' AND order_no = 5`);
    await db.raw(`INSERT INTO ${sqlTable} ${COLUMNS} VALUES ${goodValues('eu', 6, 1, '2')}`);
    const messages = await readToPosition(2);
    const frame = messages[0]!.key!.subarray(0, 5);
    const deleted = await partitionOf(frame, { region: 'eu', order_no: '5', line: '1' });
    const inserted = await partitionOf(frame, { region: 'eu', order_no: '6', line: '1' });
    const key = { region: 'eu', order_no: 5n, line: 1 };
    const expected = new Map<number, unknown[]>([[deleted, []]]);
    expected.get(deleted)!.push(
      { key, value: { op: 'delete', before: row('eu', 5, 1, '-0.0001'), after: null, source: source(1) }, headers: headers('delete', 1), partitionOfKey: deleted },
      { key, value: null, headers: headers('delete', 1), partitionOfKey: deleted },
    );
    expected.set(inserted, [
      ...(expected.get(inserted) ?? []),
      {
        key: { region: 'eu', order_no: 6n, line: 1 },
        value: { op: 'insert', before: null, after: row('eu', 6, 1, '2'), source: source(2) },
        headers: headers('insert', 2),
        partitionOfKey: inserted,
      },
    ]);
    expect(await decodeByPartition(messages)).toEqual(expected);
  });

  it('carries edge values exactly, through the snapshot and through the triggers', async () => {
    const { amount, shippedAt, due } = fixture.edge;
    const note = 'Zoë 👩‍👩‍👧 𝄞';
    const values = (line: number) => `('edge', 1, ${line}, ${amount}, '${note}', '${shippedAt}', '${due}')`;
    await db.raw(`INSERT INTO ${sqlTable} ${COLUMNS} VALUES ${values(1)}`);
    await start();
    await db.raw(`INSERT INTO ${sqlTable} ${COLUMNS} VALUES ${values(2)}`);
    const records = [...(await decodeByPartition(await readToPosition(1))).values()].flat() as Array<{ value: { op: string; after: unknown } }>;
    const row = (line: number) => ({
      region: 'edge',
      order_no: 1n,
      line,
      amount: decimalToBytes(amount, 4),
      note,
      shipped_at: fixture.edge.shippedAtMicros,
      due: fixture.edge.dueDays,
      ...fixture.extra,
    });
    expect(records.map((r) => [r.value.op, r.value.after]).sort()).toEqual([
      ['insert', row(2)],
      ['snapshot', row(1)],
    ]);
  });

  it('with tombstonesOnDelete: false writes a delete without a tombstone, and a key change as delete + insert', async () => {
    (config.sources[0] as ChangelogSourceConfig).tombstonesOnDelete = false;
    await start();
    await db.raw(`INSERT INTO ${sqlTable} ${COLUMNS} VALUES ${goodValues('eu', 7, 1, '1')}`);
    await db.raw(`UPDATE ${sqlTable} SET order_no = 8 WHERE region = 'eu' AND order_no = 7`);
    await db.raw(`DELETE FROM ${sqlTable} WHERE region = 'eu' AND order_no = 8`);
    const records = [...(await decodeByPartition(await readToPosition(3))).values()].flat() as Array<{
      key: { order_no: bigint };
      value: { op: string; source: { position: string } } | null;
    }>;
    expect(records.map((r) => [r.value?.source.position, r.value?.op, r.key.order_no]).sort()).toEqual([
      [position(1), 'insert', 7n],
      [position(2), 'delete', 7n],
      [position(2), 'insert', 8n],
      [position(3), 'delete', 8n],
    ]);
  });

  it('dead-letters a value Avro cannot carry, naming column, position and value, and goes on with the next rows', async () => {
    const early = fixture.snapshotBad(sqlTable);
    await fixture.writeLax(db, [early.sql]);
    await start();
    const bad = fixture.unrepresentable(sqlTable);
    await db.raw(`INSERT INTO ${sqlTable} ${COLUMNS} VALUES ${goodValues('eu', 3, 1, '3.1416')}`);
    await fixture.writeLax(db, bad.map((b) => b.sql));
    const last = bad.length + 2;
    await db.raw(`INSERT INTO ${sqlTable} ${COLUMNS} VALUES ${goodValues('eu', 3, 9, '0')}`);

    const records = await decodeByPartition(await readToPosition(last));
    const values = [...records.values()].flat().map((r) => (r as { value: { op: string; after: { line: number } } }).value);
    expect(values.map((v) => [v.op, v.after.line]).sort()).toEqual([['insert', 1], ['insert', 9]]);

    const letters = (await readAll(kafka, config.kafka.topics.deadLetter)).map((m) => ({
      key: m.key!.toString(),
      headers: textHeaders(m),
      value: JSON.parse(m.value!.toString()) as { reason: string; payload: { after: Record<string, string | null>; position: string } },
    }));
    // Sorted as the letters are: positions ('000…') before 'snapshot'.
    const expected = [...bad.map((b, i) => ({ at: position(i + 2), ...b })), { at: 'snapshot', ...early }];
    expect(letters.sort((a, b) => (a.key < b.key ? -1 : 1))).toEqual(
      expected.map((e) => {
        const reason = `column "${e.column}" of ${table} at ${e.at}: ${e.why}`;
        return {
          key: e.at,
          headers: { 'banyan.dlq.reason': reason, 'banyan.dlq.stage': 'processing', 'banyan.dlq.source': 'lines', 'banyan.dlq.code': 'UNCONVERTIBLE_VALUE', 'banyan.dlq.topic': topic },
          value: expect.objectContaining({
            reason,
            code: 'UNCONVERTIBLE_VALUE',
            payload: expect.objectContaining({ position: e.at, after: expect.objectContaining({ [e.column]: e.text }) }),
          }),
        };
      }),
    );
    expect(runner!.status).toMatchObject({ state: 'running' });
  });

  it('with invalidDates: null writes those values as null in their nullable columns and names the columns in banyan.nulled', async () => {
    (config.sources[0] as ChangelogSourceConfig).invalidDates = 'null';
    const early = fixture.snapshotBad(sqlTable);
    await fixture.writeLax(db, [early.sql]);
    await start();
    const bad = fixture.unrepresentable(sqlTable);
    await fixture.writeLax(db, bad.map((b) => b.sql));

    const messages = await readToPosition(bad.length);
    const records = [...(await decodeByPartition(messages)).values()].flat() as Array<{
      value: { op: string; after: Record<string, unknown>; source: { position: string } };
      headers: Record<string, string>;
    }>;
    const expected = [...bad.map((b, i) => ({ at: position(i + 1), ...b })), { at: 'snapshot', ...early }];
    const sorted = records.sort((a, b) => (a.value.source.position < b.value.source.position ? -1 : 1));
    expect(sorted.map((r) => ({ at: r.value.source.position, op: r.value.op, nulled: r.headers['banyan.nulled'], after: r.value.after }))).toEqual(
      expected.map((e) => ({
        at: e.at,
        op: e.at === 'snapshot' ? 'snapshot' : 'insert',
        nulled: JSON.stringify([e.column]),
        after: expect.objectContaining({ region: 'eu', [e.column]: null }),
      })),
    );
    expect(await readAll(kafka, config.kafka.topics.deadLetter)).toEqual([]);
  });
});
