import type { Knex } from 'knex';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config';
import { createDialect } from '../../src/dialects';
import { parseTableName } from '../../src/dialects/shared-catalog';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { LEGACY_DATABASES } from '../legacy-databases';

/**
 * `banyan migrate` installs each table in a transaction of its own, its lock waits bounded: a table
 * the application holds locked (an open transaction that updated a row) fails its install within the
 * lock timeout, naming the table, while the tables before it are installed and recorded; once the
 * application's transaction ends, migrate finishes the rest.
 */
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

for (const dbKind of LEGACY_DATABASES) {
  describe(`banyan migrate on ${dbKind.name}`, () => {
    it('installs each table in its own transaction; a table another session holds locked fails within lockMs, named, and the tables before it stay installed', async () => {
      const prepared = await dbKind.prepare();
      cleanups.push(prepared.cleanup);
      const first = prepared.table;
      const busy = dbKind.beside(prepared.table, 'orders');
      await prepared.db.raw(dbKind.ddl(first));
      await prepared.db.raw(dbKind.ddl(busy));
      await prepared.db(busy).insert({ id: 1, last_name: 'Busy' });
      const config = parseConfig(`kafka: { brokers: "unused:9092" }\nschemaRegistry: { url: "http://unused" }\n${prepared.yaml}`, 'migrate-locks.yaml');
      const dialect = createDialect(config.databases.legacy!);

      // The application's transaction: it updated a row of the busy table and has not committed.
      const app: Knex.Transaction = await prepared.db.transaction();
      cleanups.push(async () => (app.isCompleted() ? undefined : app.rollback()));
      await app(busy).where({ id: 1 }).update({ city: 'Locked' });

      const failed = await migrateChangelogs(prepared.db, dialect, [first, busy], 'up', { lockMs: 500 }).catch((e: unknown) => e as Error);
      expect(failed).toBeInstanceOf(Error);
      expect((failed as Error).message).toMatch(/^table .*orders.*: a lock it needs was not granted within 500 ms/);
      expect((failed as Error).message).toContain('the tables before it are done');
      // The first table is installed; the busy one has no trigger (its install never got its lock).
      expect((await dialect.changelogState(prepared.db, parseTableName(first))).missingTriggers).toEqual([]);
      const blocked = await dialect.changelogState(prepared.db, parseTableName(busy));
      expect(blocked.triggers.length).toBeGreaterThan(0);
      expect(blocked.missingTriggers).toEqual(blocked.triggers);

      // The application commits: migrate installs the busy table alone (the first one is recorded).
      await app.commit();
      const { migrations } = await migrateChangelogs(prepared.db, dialect, [first, busy], 'up', { lockMs: 500 });
      expect(migrations).toHaveLength(1);
      expect(migrations[0]).toContain('orders');
      expect((await dialect.changelogState(prepared.db, parseTableName(busy))).missingTriggers).toEqual([]);
    });
  });
}

// knex's lock row lives in the database's banyan_migrations_lock: on MariaDB each test has a database
// of its own, so holding the lock there stops no other test's migrate.
describe('banyan migrate while another holds knex’s migration lock (MariaDB)', () => {
  const mariadb = LEGACY_DATABASES.find((d) => d.name === 'mariadb')!;

  it('waits for the lock instead of failing at once, and says whose lock it may be when it is never freed', async () => {
    const prepared = await mariadb.prepare();
    cleanups.push(prepared.cleanup);
    await prepared.db.raw(mariadb.ddl(prepared.table));
    const config = parseConfig(`kafka: { brokers: "unused:9092" }\nschemaRegistry: { url: "http://unused" }\n${prepared.yaml}`, 'migrate-locks.yaml');
    const dialect = createDialect(config.databases.legacy!);
    // A first migrate makes knex's tables; then another migrate "holds" the lock.
    await prepared.db.raw(mariadb.ddl('other_table'));
    await migrateChangelogs(prepared.db, dialect, ['other_table']);
    expect(await prepared.db('banyan_migrations_lock').update({ is_locked: 1 })).toBe(1);

    const never = await migrateChangelogs(prepared.db, dialect, [prepared.table], 'up', { lockWaitMs: 300 }).catch((e: unknown) => e as Error);
    expect((never as Error).message).toBe(
      'another banyan migrate has held banyan_migrations_lock for 0.3 s; if none runs (one that crashed leaves it set), clear it with UPDATE banyan_migrations_lock SET is_locked = 0',
    );

    // Freed while this migrate waits: it goes on and installs.
    const waiting = migrateChangelogs(prepared.db, dialect, [prepared.table], 'up', { lockWaitMs: 60_000 });
    await prepared.db('banyan_migrations_lock').update({ is_locked: 0 });
    const { migrations } = await waiting;
    expect(migrations).toHaveLength(1);
    expect((await dialect.changelogState(prepared.db, parseTableName(prepared.table))).missingTriggers).toEqual([]);
  });
});
