import type { Knex } from 'knex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import { MysqlDialect } from '../../src/dialects/mysql.dialect';
import { bytesToDecimal } from '../../src/import/changelog/avro';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import type { BanyanConfig, ChangelogSourceConfig } from '../../src/config';
import type { SourceRunner } from '../../src/runtime/source-runner';
import { freshName, readDecoded, startChangelogRunner, testConfig } from '../helpers';

interface Change {
  op: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  source: { position: string; origin: string | null; table: string; database: string };
}

/** The MariaDB poller end to end: rows → changelog → Avro records in Kafka, decoded through the registry. */
describe('MariaDB changelog poller into Kafka', () => {
  const dialect = new MysqlDialect();
  let admin: Knex;
  let db: Knex;
  let database: string;
  let config: BanyanConfig;
  let runner: SourceRunner | undefined;

  beforeEach(async () => {
    database = freshName('banyan_t');
    config = testConfig(`
databases:
  maria:
    dialect: mariadb
    database: ${database}
    user: root
sources:
  - name: users
    type: changelog
    database: maria
    table: users
    topic: ${freshName('legacy.maria.users')}
    pollIntervalMs: 50
    batchSize: 100
`);
    config.kafka.topics.offsets = freshName('offsets');
    config.kafka.topics.deadLetter = freshName('dlq');
    admin = createKnex({ ...config.databases.maria!, database: 'mysql' });
    await admin.raw(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
    db = createKnex(config.databases.maria!);
    await db.raw(`CREATE TABLE users (
      id bigint PRIMARY KEY,
      email varchar(200) NOT NULL,
      display_name text,
      balance decimal(12,2),
      active boolean NOT NULL DEFAULT true,
      born date,
      updated_at datetime(3))`);
  });

  afterEach(async () => {
    await runner?.stop();
    runner = undefined;
    await db.destroy();
    await admin.raw(`DROP DATABASE IF EXISTS \`${database}\``);
    await admin.destroy();
  });

  function startRunner(): Promise<SourceRunner> {
    return startChangelogRunner(config, { db, dialect, databaseName: 'maria' });
  }


  function changes(count: number, timeoutMs = 15_000): Promise<Array<Change & { headers: Record<string, string> }>> {
    return readDecoded<Change>(config, (config.sources[0] as ChangelogSourceConfig).topic!, count, timeoutMs);
  }


  it('emits a snapshot, then inserts, updates with before and after, deletes and Banyan’s own writes marked as echoes', async () => {
    await db.raw(`INSERT INTO users (id, email, balance) VALUES (1, 'old@example.com', 10.50)`);
    await migrateChangelogs(db, dialect, ['users']);
    runner = await startRunner();

    await db.raw(
      `INSERT INTO users VALUES (9007199254740993, 'ada@example.com', 'Ada 🚀', -1234567890.12, true, '0001-01-01', '2024-02-29 13:14:15.123')`,
    );
    await db.raw(`UPDATE users SET display_name = NULL, balance = 0.01 WHERE id = 9007199254740993`);
    await db.raw(`DELETE FROM users WHERE id = 1`);
    await db.transaction(async (trx) => {
      await dialect.setOrigin(trx, 'banyan');
      await trx.raw(`INSERT INTO users (id, email) VALUES (2, 'from-banyan@example.com')`);
      await dialect.clearOrigin(trx);
    });

    const all = await changes(6);
    // Changes in changelog order; the snapshot record's position is 'snapshot', which sorts last.
    expect(all.map((c) => c.op)).toEqual(['insert', 'update', 'delete', 'tombstone', 'insert', 'snapshot']);
    const [insert, update, del, tombstone, echo, snapshot] = all;
    expect(tombstone!.source.position).toBe(del!.source.position);
    expect(snapshot!.after).toMatchObject({ id: 1n, email: 'old@example.com' });
    expect(bytesToDecimal(snapshot!.after!.balance as Buffer, 2)).toBe('10.50');

    expect(insert!.before).toBeNull();
    expect(insert!.after).toMatchObject({
      id: 9007199254740993n,
      email: 'ada@example.com',
      display_name: 'Ada 🚀',
      active: 1, // BOOLEAN is tinyint(1) in MariaDB, kept an int (docs/dialect-mysql.md)
      born: -719_162, // 0001-01-01, days before 1970-01-01
      updated_at: BigInt(Date.UTC(2024, 1, 29, 13, 14, 15, 123)),
    });
    expect(bytesToDecimal(insert!.after!.balance as Buffer, 2)).toBe('-1234567890.12');

    expect(update!.before).toMatchObject({ display_name: 'Ada 🚀' });
    expect(update!.after).toMatchObject({ display_name: null });
    expect(bytesToDecimal(update!.before!.balance as Buffer, 2)).toBe('-1234567890.12');
    expect(bytesToDecimal(update!.after!.balance as Buffer, 2)).toBe('0.01');

    expect(del!.after).toBeNull();
    expect(del!.before).toMatchObject({ id: 1n });
    expect(del!.source).toMatchObject({ database: 'maria', table: 'users' });

    expect([snapshot, insert, update, del].every((c) => c!.source.origin === null && c!.headers['banyan.echo'] === undefined)).toBe(true);
    expect(echo!.source.origin).toBe('banyan');
    expect(echo!.headers).toMatchObject({ 'banyan.echo': 'true', 'banyan.origin': 'legacy', 'banyan.operation': 'insert' });
  });
});
