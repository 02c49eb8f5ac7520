import type { Knex } from 'knex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import type { Dialect } from '../../src/dialects/dialect';
import { PostgresDialect } from '../../src/dialects/postgres.dialect';
import { bytesToDecimal } from '../../src/import/changelog/avro';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import type { BanyanConfig, ChangelogSourceConfig } from '../../src/config';
import type { SourceRunner } from '../../src/runtime/source-runner';
import { freshName, readAll, readDecoded, startChangelogRunner, readTopic, testConfig, testKafka, waitFor } from '../helpers';
import { committedOffset } from '../committed';

const dialect: Dialect = new PostgresDialect();

interface Change {
  op: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  source: { position: string; origin: string | null; table: string };
}

describe('PostgreSQL changelog poller into Kafka', () => {
  let db: Knex;
  let schema: string;
  let config: BanyanConfig;
  let runner: SourceRunner | undefined;

  beforeEach(async () => {
    schema = freshName('banyan_t');
    config = testConfig(`
databases:
  pg:
    dialect: postgres
    database: postgres
    user: postgres
sources:
  - name: users
    type: changelog
    database: pg
    table: ${schema}.users
    topic: ${freshName('legacy.pg.users')}
    pollIntervalMs: 50
    batchSize: 100
`);
    config.kafka.topics.offsets = freshName('offsets');
    config.kafka.topics.deadLetter = freshName('dlq');
    db = createKnex(config.databases.pg!);
    await db.raw(`CREATE SCHEMA ${schema}`);
    await db.raw(`CREATE TABLE ${schema}.users (
      id bigint PRIMARY KEY,
      email varchar(200) NOT NULL,
      display_name text,
      balance numeric(12,2),
      score double precision,
      active boolean NOT NULL DEFAULT true,
      born date,
      created_at timestamp(6),
      updated_at timestamptz(3),
      external_id uuid,
      avatar bytea,
      prefs jsonb)`);
  });

  afterEach(async () => {
    // One left open by a failed test would hold back every later test's safe bound and DROP SCHEMA.
    for (const trx of opened.splice(0)) if (!trx.isCompleted()) await trx.rollback();
    await runner?.stop();
    runner = undefined;
    await db.raw(`DROP SCHEMA ${schema} CASCADE`);
    await db.destroy();
  });

  const opened: Knex.Transaction[] = [];
  async function openTransaction(): Promise<Knex.Transaction> {
    const trx = await db.transaction();
    opened.push(trx);
    return trx;
  }

  function sourceConfig(): ChangelogSourceConfig {
    return config.sources[0] as ChangelogSourceConfig;
  }

  function startRunner(now?: () => number): Promise<SourceRunner> {
    return startChangelogRunner(config, { db, dialect, databaseName: 'pg', now });
  }

  /** The first `count` changes, or with `until`, every change up to the one it picks (a marker). */
  function changes(count: number | { until: (c: Change) => boolean }, timeoutMs = 15_000): Promise<Array<Change & { headers: Record<string, string> }>> {
    return readDecoded<Change>(config, sourceConfig().topic!, count, timeoutMs);
  }
  const insertOf = (id: bigint) => ({ until: (c: Change) => c.op === 'insert' && c.after?.id === id });

  /** The changelog position the runner last committed to the offsets topic. */
  async function committedPosition(): Promise<{ after: string; pending: Array<{ drawn: string }> } | undefined> {
    const source = sourceConfig();
    const offset = await committedOffset(testKafka(config), config.kafka.topics.offsets, source.name, { database: 'pg', table: source.table });
    return offset?.phase === 'changes' ? (offset.position as { after: string; pending: Array<{ drawn: string }> }) : undefined;
  }



  it('a second instance of a source fences the first, which stops writing instead of fencing back', async () => {
    await migrateChangelogs(db, dialect, [`${schema}.users`]);
    runner = await startRunner();
    await db.raw(`INSERT INTO ${schema}.users (id, email) VALUES (1, 'one@example.com')`);
    expect(await changes(1)).toHaveLength(1);

    const second = await startRunner();
    try {
      await db.raw(`INSERT INTO ${schema}.users (id, email) VALUES (2, 'two@example.com')`);
      await waitFor(() => runner!.status.state === 'fenced', 'the first runner to be fenced by the second');
      expect(runner.status).toMatchObject({ state: 'fenced', lastError: expect.stringContaining('fenced') });
      // Up to a marker row written after it: the second row once, from the second instance.
      await db.raw(`INSERT INTO ${schema}.users (id, email) VALUES (3, 'marker@example.com')`);
      const all = await changes(insertOf(3n));
      expect(all.map((c) => c.after?.id)).toEqual([1n, 2n, 3n]);
      expect(second.status.state).toBe('running');
    } finally {
      await second.stop();
    }
  });

  it('emits existing rows as a snapshot, then inserts, updates (before and after) and deletes with faithful types', async () => {
    await db.raw(`INSERT INTO ${schema}.users (id, email, balance) VALUES (1, 'old@example.com', 10.50)`);
    await migrateChangelogs(db, dialect, [`${schema}.users`]);
    runner = await startRunner();

    await db.raw(
      `INSERT INTO ${schema}.users VALUES (9007199254740993, 'ada@example.com', 'Ada 🚀', -1234567890.12, 1.5, true,
        '1815-12-10', '2024-02-29 13:14:15.123456', '2024-03-01 00:00:00.5+02', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '\\xdeadbeef', '{"theme":"dark"}')`,
    );
    await db.raw(`UPDATE ${schema}.users SET display_name = NULL, balance = 0.01 WHERE id = 9007199254740993`);
    await db.raw(`DELETE FROM ${schema}.users WHERE id = 1`);

    const all = await changes(5);
    expect(all.map((c) => c.op).sort()).toEqual(['delete', 'insert', 'snapshot', 'tombstone', 'update']);
    const snapshot = all.find((c) => c.op === 'snapshot')!;
    expect(snapshot.after).toMatchObject({ id: 1n, email: 'old@example.com' });
    expect(bytesToDecimal(snapshot.after!.balance as Buffer, 2)).toBe('10.50');

    const [insert, update, del, tombstone] = all.filter((c) => c.op !== 'snapshot');
    expect([insert?.op, update?.op, del?.op, tombstone?.op]).toEqual(['insert', 'update', 'delete', 'tombstone']);
    expect(tombstone!.source.position).toBe(del!.source.position);
    expect(insert!.before).toBeNull();
    expect(insert!.after).toMatchObject({
      id: 9007199254740993n,
      email: 'ada@example.com',
      display_name: 'Ada 🚀',
      score: 1.5,
      active: true,
      born: Date.UTC(1815, 11, 10) / 86_400_000,
      created_at: BigInt(Date.UTC(2024, 1, 29, 13, 14, 15)) * 1000n + 123456n,
      updated_at: BigInt(Date.UTC(2024, 1, 29, 22, 0, 0, 500)),
      external_id: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      prefs: '{"theme": "dark"}',
    });
    expect(bytesToDecimal(insert!.after!.balance as Buffer, 2)).toBe('-1234567890.12');
    expect((insert!.after!.avatar as Buffer).toString('hex')).toBe('deadbeef');
    expect(update!.before).toMatchObject({ display_name: 'Ada 🚀' });
    expect(update!.after).toMatchObject({ display_name: null });
    expect(bytesToDecimal(update!.after!.balance as Buffer, 2)).toBe('0.01');
    expect(del!.before).toMatchObject({ id: 1n });
    expect(del!.after).toBeNull();
    expect(insert!.headers).toMatchObject({ 'banyan.origin': 'legacy', 'banyan.operation': 'insert' });
    expect(insert!.headers['banyan.echo']).toBeUndefined();
  });

  it('marks a write made with Banyan’s origin set as an echo', async () => {
    await migrateChangelogs(db, dialect, [`${schema}.users`]);
    runner = await startRunner();
    await db.transaction(async (trx) => {
      await dialect.setOrigin(trx, 'banyan');
      await trx.raw(`INSERT INTO ${schema}.users (id, email) VALUES (1, 'from-banyan@example.com')`);
    });
    await db.raw(`INSERT INTO ${schema}.users (id, email) VALUES (2, 'from-legacy@example.com')`);
    const all = await changes(2);
    expect(all.map((c) => [c.op, c.after?.id, c.source.origin, c.headers['banyan.echo'] ?? null])).toEqual([
      ['insert', 1n, 'banyan', 'true'],
      ['insert', 2n, null, null],
    ]);
  });

  it('loses nothing to a transaction held open while later ones commit', async () => {
    await migrateChangelogs(db, dialect, [`${schema}.users`]);
    runner = await startRunner();
    const held = await openTransaction();
    await held.raw(`INSERT INTO ${schema}.users (id, email) VALUES (1, 'slow@example.com')`);
    await db.raw(`INSERT INTO ${schema}.users (id, email) VALUES (2, 'fast@example.com')`);
    await db.raw(`UPDATE ${schema}.users SET email = 'faster@example.com' WHERE id = 2`);
    // The poller has read past the fast writes once it committed a checkpoint on change id 3, the
    // last drawn; while the first transaction is open, it must still have passed nothing.
    await waitFor(async () => (await committedPosition())?.pending.some((p) => p.drawn === '3'), 'a committed checkpoint on change id 3');
    expect((await committedPosition())!.after).toBe('0');
    await runner.stop();
    runner = undefined;
    expect(await readAll(testKafka(config), sourceConfig().topic!)).toEqual([]);

    await held.commit();
    runner = await startRunner();
    const all = await changes({ until: (c) => c.op === 'update' });
    expect(all.map((c) => [c.op, c.after?.id])).toEqual([
      ['insert', 1n],
      ['insert', 2n],
      ['update', 2n],
    ]);
  });

  it('hands over from snapshot to changes with nothing lost or doubled, even with a transaction in flight', async () => {
    await db.raw(`INSERT INTO ${schema}.users (id, email) VALUES (1, 'one@example.com'), (2, 'two@example.com')`);
    await migrateChangelogs(db, dialect, [`${schema}.users`]);
    // Committed after the triggers exist but before the snapshot: in the snapshot, not a change.
    await db.raw(`INSERT INTO ${schema}.users (id, email) VALUES (3, 'three@example.com')`);
    // In flight while the snapshot is taken: not in the snapshot, so it must come as a change.
    const inFlight = await openTransaction();
    await inFlight.raw(`UPDATE ${schema}.users SET email = 'one-updated@example.com' WHERE id = 1`);
    runner = await startRunner();
    await inFlight.commit();
    await db.raw(`UPDATE ${schema}.users SET email = 'two-updated@example.com' WHERE id = 2`);
    await db.raw(`INSERT INTO ${schema}.users (id, email) VALUES (99, 'marker@example.com')`);

    const all = (await changes(insertOf(99n))).filter((c) => c.after?.id !== 99n);
    const summary = all.map((c) => `${c.op}:${(c.after ?? c.before)!.id}:${(c.after ?? c.before)!.email}`).sort();
    expect(summary).toEqual([
      'snapshot:1:one@example.com',
      'snapshot:2:two@example.com',
      'snapshot:3:three@example.com',
      'update:1:one-updated@example.com',
      'update:2:two-updated@example.com',
    ]);
  });

  it('sends a row it cannot convert to the dead-letter topic with the reason, and goes on', async () => {
    await migrateChangelogs(db, dialect, [`${schema}.users`]);
    runner = await startRunner();
    await db.raw(`INSERT INTO ${schema}.users (id, email, balance) VALUES (1, 'nan@example.com', 'NaN')`);
    await db.raw(`INSERT INTO ${schema}.users (id, email, balance) VALUES (2, 'fine@example.com', 2.5)`);
    const [good] = await changes(1);
    expect(good!.after).toMatchObject({ id: 2n, email: 'fine@example.com' });
    const [dead] = await readTopic(testKafka(config), config.kafka.topics.deadLetter, 1);
    expect(dead?.headers?.['banyan.dlq.reason']?.toString()).toMatch(/column "balance" of .*users at 0+1: "NaN" is not a decimal number/);
    expect(dead?.headers?.['banyan.dlq.source']?.toString()).toBe('users');
    const body = JSON.parse(dead!.value!.toString());
    expect(body.payload.after).toMatchObject({ id: '1', balance: 'NaN', email: 'nan@example.com' });
  });

  it('dead-letters a record Kafka would refuse as too large, naming the topic it was meant for, and goes on', async () => {
    // Room for the dead letter, which keeps the reason and the row's first 10,000 characters.
    config.kafka.maxMessageBytes = 12_000;
    await migrateChangelogs(db, dialect, [`${schema}.users`]);
    runner = await startRunner();
    await db.raw(`INSERT INTO ${schema}.users (id, email, display_name) VALUES (1, 'big@example.com', ?)`, ['x'.repeat(20_000)]);
    await db.raw(`INSERT INTO ${schema}.users (id, email) VALUES (2, 'small@example.com')`);
    const [small] = await changes(1);
    expect(small!.after).toMatchObject({ id: 2n, email: 'small@example.com' });
    const [dead] = await readTopic(testKafka(config), config.kafka.topics.deadLetter, 1);
    expect(dead?.headers?.['banyan.dlq.code']?.toString()).toBe('MESSAGE_TOO_LARGE');
    expect(dead?.headers?.['banyan.dlq.topic']?.toString()).toBe(sourceConfig().topic);
  });

  it('evolves the schema when a column is added and the changelog is migrated again', async () => {
    await migrateChangelogs(db, dialect, [`${schema}.users`]);
    runner = await startRunner();
    await db.raw(`INSERT INTO ${schema}.users (id, email) VALUES (1, 'before@example.com')`);
    expect(await changes(1)).toHaveLength(1);
    await db.raw(`ALTER TABLE ${schema}.users ADD COLUMN nickname varchar(40)`);
    const { migrations } = await migrateChangelogs(db, dialect, [`${schema}.users`]);
    expect(migrations).toHaveLength(1);
    expect((await migrateChangelogs(db, dialect, [`${schema}.users`])).migrations).toEqual([]);
    await db.raw(`INSERT INTO ${schema}.users (id, email, nickname) VALUES (2, 'after@example.com', 'Al')`);
    const all = await changes(2);
    expect(all[0]!.after).not.toHaveProperty('nickname');
    expect(all[1]!.after).toMatchObject({ id: 2n, nickname: 'Al' });
    const versions = await fetch(`${config.schemaRegistry.url}/subjects/${sourceConfig().topic}-value/versions`).then((r) => r.json());
    expect(versions).toEqual([1, 2]);
  });

  it('fails at start with a message naming a table that does not exist', async () => {
    await expect(dialect.describeTable(db, { schema, name: 'no_such_table' })).rejects.toThrow(
      `table ${schema}.no_such_table does not exist`,
    );
  });

  it('prunes changelog rows that are committed to Kafka and older than the retention', async () => {
    // The source's clock is the test's: it, not the passing of time, decides which rows are old.
    let clock = Date.now();
    Object.assign(sourceConfig(), { retentionHours: 1, pruneIntervalMs: 1 });
    await migrateChangelogs(db, dialect, [`${schema}.users`]);
    runner = await startRunner(() => clock);
    const changelog = `${schema}.banyan_cl_users`;
    const changeIds = async () => (await db.raw(`SELECT change_id::int AS id FROM ${changelog} ORDER BY change_id`)).rows.map((r: { id: number }) => r.id);
    const insert = (trx: Knex | Knex.Transaction, id: number) => trx.raw(`INSERT INTO ${schema}.users (id, email) VALUES (?, ?)`, [id, `u${id}@example.com`]);
    await db.raw(`INSERT INTO ${schema}.users (id, email) SELECT i, 'u' || i || '@example.com' FROM generate_series(1, 50) i`);
    await insert(db, 51);
    // Committed one after the other: once row 51 is in Kafka, the batch of the 50 and its prune are done.
    expect(await changes(insertOf(51n))).toHaveLength(51);
    expect(await changeIds()).toEqual(Array.from({ length: 51 }, (_, i) => i + 1));

    // Now every row is older than the retention. Row 53 commits behind the held row 52: the poller
    // acks only a checkpoint up to 51 (it draws no bound past an open writer), so 53 must stay.
    clock = Date.now() + 2 * 3_600_000;
    const held = await openTransaction();
    await insert(held, 52);
    await insert(db, 53);
    await waitFor(async () => (await changeIds())[0] !== 1, 'the prune of change 1');
    expect(await changeIds()).toEqual([53]);

    await held.commit();
    expect(await changes(insertOf(53n))).toHaveLength(53);
    // 52 and 53 may be acked in one batch or in two (a transaction elsewhere in the cluster can hold
    // 53's bound back a moment), and the second ack comes too soon after the first to prune. So the
    // clock moves past pruneIntervalMs once both are committed, and change 54 brings the next ack.
    await waitFor(async () => (await committedPosition())?.after === '53', 'the commit of change 53');
    clock += 1000;
    await insert(db, 54);
    expect(await changes(insertOf(54n))).toHaveLength(54);
    await waitFor(async () => (await changeIds()).every((id: number) => id > 53), 'the prune of changes 52 and 53');
  });

  it('does not pass a writer that is still running when the database reuses its last snapshot', async () => {
    // PostgreSQL 14+ hands out the same snapshot while no transaction ends, so its xmax can be
    // older than a writer that already drew an id: the bound must not trust it.
    await migrateChangelogs(db, dialect, [`${schema}.users`]);
    const table = await dialect.describeTable(db, { schema, name: 'users' });
    const idle = await dialect.readChanges(db, table, undefined, 100, Date.now());
    const writer = await openTransaction();
    await writer.raw(`INSERT INTO ${schema}.users (id, email) VALUES (1, 'slow@example.com')`);
    const during = await dialect.readChanges(db, table, idle.position, 100, Date.now());
    expect(during.rows).toEqual([]);
    await writer.commit();
    // Another session's transaction (a test beside this one) can hold the bound back a while: read
    // until the row comes, as the poller would.
    let after = await dialect.readChanges(db, table, during.position, 100, Date.now());
    const rows = [...after.rows];
    await waitFor(async () => {
      if (rows.length) return true;
      after = await dialect.readChanges(db, table, after.position, 100, Date.now());
      rows.push(...after.rows);
      return rows.length > 0;
    }, 'the committed row to pass the bound');
    expect(rows.map((r) => r.after?.id)).toEqual(['1']);
  });
});
