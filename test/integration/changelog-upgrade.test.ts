import type { Knex } from 'knex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS_TABLE } from '../../migrations/changelog';
import { createKnex } from '../../src/clients/database';
import { PostgresDialect } from '../../src/dialects/postgres.dialect';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { ChangelogSource } from '../../src/import/changelog/source';
import type { BanyanConfig, ChangelogSourceConfig } from '../../src/config';
import { createRootLogger } from '../../src/runtime/logger';
import { createSourceRunner, type SourceRunner } from '../../src/runtime/source-runner';
import { freshName, readDecoded, runBanyan, testConfig, waitFor, writeConfigFile } from '../helpers';

interface LogLine {
  event?: string;
  msg: string;
}

interface Change {
  op: string;
  after: Record<string, unknown> | null;
  source: { position: string };
}

const DATABASE = '    dialect: postgres\n    database: postgres\n    user: postgres';

describe('PostgreSQL: triggers installed by an older Banyan', () => {
  const dialect = new PostgresDialect();
  let schema: string;
  let db: Knex;
  let runner: SourceRunner | undefined;
  let config: BanyanConfig | undefined;
  const logs: LogLine[] = [];

  beforeEach(async () => {
    schema = freshName('banyan_up');
    db = createKnex(testConfig(`databases:\n  pg:\n${DATABASE}`).databases.pg!);
    await db.raw(`CREATE SCHEMA ${schema}`);
    logs.length = 0;
  });
  afterEach(async () => {
    await runner?.stop();
    runner = undefined;
    await db.raw(`DROP SCHEMA ${schema} CASCADE`);
    await db(MIGRATIONS_TABLE).where('name', 'like', `changelog.${schema}.%`).delete();
    // Its topics (fresh names) go with the file's, in test/integration/setup.ts.
    await db.destroy();
  });

  it('are not current for doctor and the schema watch, and `banyan migrate` replaces them, keeping the changelog rows', async () => {
    const table = `${schema}.orders`;
    await db.raw(`CREATE TABLE ${table} (id int PRIMARY KEY, note varchar(20))`);
    await migrateChangelogs(db, dialect, [table]);
    const recorded = async () =>
      ((await db(MIGRATIONS_TABLE).where('name', 'like', `changelog.${schema}.%`).orderBy('name')) as Array<{ name: string }>).map((r) => r.name);
    const [current] = await recorded();
    // What an older Banyan left: a name hashing the columns only (changelog.<schema>.<table>.<hash>), and
    // a trigger function that records `note` as NULL (as older triggers did with PostgreSQL's infinity timestamps).
    const older = current!.split('.').slice(0, 4).join('.');
    await db(MIGRATIONS_TABLE).where('name', current).update({ name: older });
    await db.raw(`CREATE OR REPLACE FUNCTION ${schema}.banyan_cl_orders_fn() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO ${schema}.banyan_cl_orders (op, after_image) VALUES ('I', json_build_object('id', NEW.id::text, 'note', NULL));
        RETURN NULL;
      END $$`);
    await db.raw(`INSERT INTO ${table} (id, note) VALUES (1, 'by old trigger')`);

    const topic = freshName('legacy.upgrade.orders');
    const text = [
      'kafka:',
      '  brokers: ${KAFKA_BROKERS}',
      'schemaRegistry:',
      '  url: ${SCHEMA_REGISTRY_URL}',
      'databases:',
      '  legacy:',
      DATABASE,
      'sources:',
      '  - name: orders',
      '    type: changelog',
      '    database: legacy',
      `    table: ${table}`,
      `    topic: ${topic}`,
      '    snapshot: false',
      '    pollIntervalMs: 50',
      '    schemaCheckIntervalMs: 50',
    ];
    const file = writeConfigFile(`${text.join('\n')}\n`);
    const tableLine = text.join('\n').split('\n').indexOf(`    table: ${table}`) + 1;
    const message = `the changelog triggers of table ${table} were made by another version of Banyan, whose triggers record changes differently: run \`banyan migrate\` to replace them (the changelog's rows are kept), or set autoMigrate: true`;
    const sourceCheck = async () => {
      const doctor = await runBanyan(file, ['doctor', '--json']);
      return (JSON.parse(doctor.stdout) as { checks: Array<{ name: string; ok: boolean; detail: string }> }).checks.find((c) => c.name === 'source:orders');
    };
    expect(await sourceCheck()).toEqual({ name: 'source:orders', ok: false, detail: `sources[0].table (line ${tableLine}): ${message}` });

    // The running poller's schema watch says the same, loudly.
    config = testConfig(`databases:\n  legacy:\n${DATABASE}\nsources:\n${text.slice(text.indexOf('sources:') + 1).join('\n')}`);
    config.kafka.topics.offsets = freshName('offsets');
    config.kafka.topics.deadLetter = freshName('dlq');
    const logger = createRootLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
    const source = new ChangelogSource(config.sources[0] as ChangelogSourceConfig, { db, dialect, databaseName: 'legacy', originTag: config.originTag, logger });
    runner = createSourceRunner(source, config, logger);
    await runner.start();
    const seen = async (event: string) => {
      // The idle check runs every 50 ms: wait for its log line, which is what the test observes.
      await waitFor(() => logs.some((l) => l.event === event), `a ${event} log event`);
      return logs.filter((l) => l.event === event).map((l) => l.msg);
    };
    expect(await seen('schema.drift')).toEqual([message]);

    const migrate = await runBanyan(file, ['migrate']);
    expect(migrate.code).toBe(0);
    // The older name stays as history beside the one for this Banyan's triggers.
    expect(await recorded()).toEqual([older, current].sort());
    expect(await sourceCheck()).toEqual({
      name: 'source:orders',
      ok: true,
      detail: `table ${table} (key id): changelog and triggers installed, current for its 2 columns`,
    });
    expect(await seen('schema.drift_resolved')).toHaveLength(1);

    await db.raw(`INSERT INTO ${table} (id, note) VALUES (2, 'by new trigger')`);
    const changes = await readDecoded<Change>(config, topic, 2);
    expect(await db(`${schema}.banyan_cl_orders`).count({ n: '*' }).first()).toEqual({ n: '2' });
    // The change the old trigger recorded survived the upgrade; the one after it is complete.
    expect(changes.map((c) => [c.op, c.after])).toEqual([
      ['insert', { id: 1, note: null }],
      ['insert', { id: 2, note: 'by new trigger' }],
    ]);
    expect(runner.status).toMatchObject({ state: 'running' });
  });
});
