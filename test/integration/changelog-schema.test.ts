import type { Knex } from 'knex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import type { Dialect } from '../../src/dialects/dialect';
import { MysqlDialect } from '../../src/dialects/mysql.dialect';
import { PostgresDialect } from '../../src/dialects/postgres.dialect';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { ChangelogSource } from '../../src/import/changelog/source';
import type { BanyanConfig, ChangelogSourceConfig, DatabaseConfig } from '../../src/config';
import { StatusServer } from '../../src/runtime/http-server';
import { createRootLogger } from '../../src/runtime/logger';
import { createSourceRunner, type SourceRunner } from '../../src/runtime/source-runner';
import { freshName, readDecoded, runBanyan, testConfig, waitFor, writeConfigFile } from '../helpers';

interface Engine {
  label: string;
  dialect: Dialect;
  /** The `databases.legacy` block, indented for the YAML. */
  database(name: string): string;
  /** Makes a fresh place for tables; returns the qualifier tables are named with and a knex on it. */
  create(): Promise<{ qualifier: string; db: Knex; drop(): Promise<void> }>;
  /** A table name in `qualifier` holding the dialect's own quote character, in a statement-breaking way. */
  hostileName(qualifier: string): string;
}

const POSTGRES: DatabaseConfig = testConfig(`
databases:
  pg:
    dialect: postgres
    database: postgres
    user: postgres
`).databases.pg!;

const MARIADB: DatabaseConfig = testConfig(`
databases:
  maria:
    dialect: mariadb
    database: mysql
    user: root
`).databases.maria!;

const ENGINES: Engine[] = [
  {
    label: 'PostgreSQL',
    dialect: new PostgresDialect(),
    database: () => `    dialect: postgres\n    database: postgres\n    user: postgres`,
    async create() {
      const schema = freshName('banyan_s');
      const db = createKnex(POSTGRES);
      await db.raw(`CREATE SCHEMA ${schema}`);
      return {
        qualifier: schema,
        db,
        async drop() {
          await db.raw(`DROP SCHEMA ${schema} CASCADE`);
          await db.destroy();
        },
      };
    },
    hostileName: (q) => `${q}."order_lines";DROP TABLE ${q}.canary;--`,
  },
  {
    label: 'MariaDB',
    dialect: new MysqlDialect(),
    database: (name) => `    dialect: mariadb\n    database: ${name}\n    user: root`,
    async create() {
      const name = freshName('banyan_d');
      const admin = createKnex(MARIADB);
      await admin.raw(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
      const db = createKnex({ ...MARIADB, database: name });
      return {
        qualifier: name,
        db,
        async drop() {
          await db.destroy();
          await admin.raw(`DROP DATABASE IF EXISTS \`${name}\``);
          await admin.destroy();
        },
      };
    },
    hostileName: (q) => `${q}.\`order_lines\`;DROP TABLE ${q}.canary;--`,
  },
];

describe.each(ENGINES)('$label: tables a config names but the database lacks', (engine) => {
  let place: Awaited<ReturnType<Engine['create']>>;

  beforeEach(async () => {
    place = await engine.create();
  });
  afterEach(async () => {
    await place.drop();
  });

  /** A config whose sources are `[name, table]` pairs; returns its file and each source's table line. */
  function configFile(sources: Array<[string, string]>): { file: string; lines: number[] } {
    const text = [
      'kafka:',
      '  brokers: ${KAFKA_BROKERS}',
      'schemaRegistry:',
      '  url: ${SCHEMA_REGISTRY_URL}',
      'databases:',
      '  legacy:',
      engine.database(place.qualifier),
      'sources:',
    ].join('\n').split('\n');
    const lines: number[] = [];
    for (const [name, table] of sources) {
      text.push(`  - name: ${name}`, '    type: changelog', '    database: legacy');
      text.push(`    table: ${table}`);
      lines.push(text.length);
    }
    return { file: writeConfigFile(`${text.join('\n')}\n`), lines };
  }

  it('migrate, run and doctor name every missing table and unmigrated changelog with its source and line, and exit non-zero without a stack trace', async () => {
    const q = place.qualifier;
    await place.db.raw(`CREATE TABLE ${q}.good (id int PRIMARY KEY, note varchar(20))`);
    await place.db.raw(`CREATE TABLE ${q}.unmigrated (id int PRIMARY KEY, note varchar(20))`);
    await migrateChangelogs(place.db, engine.dialect, [`${q}.good`]);
    const { file, lines } = configFile([
      ['good', `${q}.good`],
      ['first', `${q}.missing_one`],
      ['unmigrated', `${q}.unmigrated`],
      ['second', `${q}.missing_two`],
    ]);
    const missing = (i: number, source: string, table: string) =>
      `  - sources[${i}].table (line ${lines[i]}): source "${source}" (database legacy): table ${q}.${table} does not exist (or this user cannot see its columns)`;
    const unmigrated = `  - sources[2].table (line ${lines[2]}): source "unmigrated" (database legacy): the changelog of table ${q}.unmigrated is not installed (missing: changelog table banyan_cl_unmigrated, ${
      engine.dialect.name === 'postgres' ? 'trigger banyan_cl_unmigrated_trg' : 'trigger banyan_cl_unmigrated_ins, trigger banyan_cl_unmigrated_upd, trigger banyan_cl_unmigrated_del'
    }): run \`banyan migrate\``;

    const migrate = await runBanyan(file, ['migrate']);
    expect(migrate.stderr).toBe(
      [`invalid configuration in ${file} (2 problems):`, missing(1, 'first', 'missing_one'), missing(3, 'second', 'missing_two'), ''].join('\n'),
    );
    expect(migrate.code).toBe(2);
    // Every table is checked before anything is changed: the table that exists got no changelog.
    expect((await engine.dialect.changelogState(place.db, { schema: q, name: 'unmigrated' })).table).toBe(false);

    const run = await runBanyan(file, ['run']);
    expect(run.stderr).toBe(
      [`invalid configuration in ${file} (3 problems):`, missing(1, 'first', 'missing_one'), unmigrated, missing(3, 'second', 'missing_two'), ''].join('\n'),
    );
    expect(run.code).toBe(2);

    const doctor = await runBanyan(file, ['doctor', '--json']);
    const checks = (JSON.parse(doctor.stdout) as { checks: Array<{ name: string; ok: boolean; detail: string }> }).checks;
    expect(checks.filter((c) => c.name.startsWith('source:'))).toEqual([
      { name: 'source:good', ok: true, detail: `table ${q}.good (key id): changelog and triggers installed, current for its 2 columns` },
      { name: 'source:first', ok: false, detail: missing(1, 'first', 'missing_one').replace(/^ {2}- /, '').replace(' source "first" (database legacy):', '') },
      { name: 'source:unmigrated', ok: false, detail: unmigrated.replace(/^ {2}- /, '').replace(' source "unmigrated" (database legacy):', '') },
      { name: 'source:second', ok: false, detail: missing(3, 'second', 'missing_two').replace(/^ {2}- /, '').replace(' source "second" (database legacy):', '') },
    ]);
    expect(doctor.code).toBe(1);
    for (const out of [migrate, run, doctor]) expect(`${out.stdout}${out.stderr}`).not.toMatch(/^\s+at /m);
  });

  it('shows a table name holding quotes as the config wrote it, and runs nothing it holds', async () => {
    await place.db.raw(`CREATE TABLE ${place.qualifier}.canary (id int PRIMARY KEY)`);
    const hostile = engine.hostileName(place.qualifier);
    const { file, lines } = configFile([['hostile', `'${hostile}'`]]);
    const migrate = await runBanyan(file, ['migrate']);
    expect(migrate.stderr).toBe(
      [
        `invalid configuration in ${file} (1 problem):`,
        `  - sources[0].table (line ${lines[0]}): source "hostile" (database legacy): table ${hostile} does not exist (or this user cannot see its columns)`,
        '',
      ].join('\n'),
    );
    expect(migrate.code).toBe(2);
    expect((await engine.dialect.describeTable(place.db, { schema: place.qualifier, name: 'canary' })).primaryKey).toEqual(['id']);
  });
});

interface LogLine {
  event?: string;
  msg: string;
  [key: string]: unknown;
}

interface Change {
  op: string;
  after: Record<string, unknown> | null;
  source: { position: string };
}

describe.each(ENGINES)('$label: a column added after `banyan migrate`', (engine) => {
  let place: Awaited<ReturnType<Engine['create']>>;
  let runner: SourceRunner | undefined;
  let server: StatusServer | undefined;
  let config: BanyanConfig;
  const logs: LogLine[] = [];

  beforeEach(async () => {
    place = await engine.create();
    logs.length = 0;
  });
  afterEach(async () => {
    await runner?.stop();
    runner = undefined;
    await server?.stop();
    server = undefined;
    // Its topics (fresh names) go with the file's, in test/integration/setup.ts.
    await place.drop();
  });

  async function start(autoMigrate: boolean, schemaCheckIntervalMs = 3_600_000): Promise<string> {
    const q = place.qualifier;
    await place.db.raw(`CREATE TABLE ${q}.orders (id int PRIMARY KEY, note varchar(20))`);
    await migrateChangelogs(place.db, engine.dialect, [`${q}.orders`]);
    const topic = freshName('legacy.schema.orders');
    config = testConfig(`
databases:
  legacy:
${engine.database(q)}
sources:
  - name: orders
    type: changelog
    database: legacy
    table: ${q}.orders
    topic: ${topic}
    pollIntervalMs: 50
    autoMigrate: ${autoMigrate}
    schemaCheckIntervalMs: ${schemaCheckIntervalMs}
`);
    config.kafka.topics.offsets = freshName('offsets');
    config.kafka.topics.deadLetter = freshName('dlq');
    const logger = createRootLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
    const source = new ChangelogSource(config.sources[0] as ChangelogSourceConfig, {
      db: place.db,
      dialect: engine.dialect,
      databaseName: 'legacy',
      originTag: config.originTag,
      logger,
    });
    runner = createSourceRunner(source, config, logger);
    await runner.start();
    return topic;
  }

  const changes = (topic: string, count: number) => readDecoded<Change>(config, topic, count);
  const events = (name: string) => logs.filter((l) => l.event === name);

  it('flags the changes recorded without it and reports the drift in the log, /status and /metrics', async () => {
    // No idle check (the default interval is an hour here): the ALTER is noticed through the row written after it.
    const topic = await start(false);
    const q = place.qualifier;
    await place.db.raw(`INSERT INTO ${q}.orders (id, note) VALUES (1, 'before')`);
    // Read before the ALTER: a change read after it is flagged whenever it was written (docs/import.md).
    expect(await changes(topic, 1)).toHaveLength(1);
    await place.db.raw(`ALTER TABLE ${q}.orders ADD COLUMN extra varchar(20)`);
    await place.db.raw(`INSERT INTO ${q}.orders (id, note, extra) VALUES (2, 'after', 'lost')`);

    const [first, second] = await changes(topic, 2);
    expect(first!.after).toEqual({ id: 1, note: 'before' });
    expect(first!.headers['banyan.missing.columns']).toBeUndefined();
    expect(second!.after).toEqual({ id: 2, note: 'after' });
    expect(second!.headers['banyan.missing.columns']).toBe('extra');

    const message = `table ${q}.orders has column(s) extra that its changelog triggers do not record: every change is recorded without them until \`banyan migrate\` runs (or set autoMigrate: true)`;
    expect(events('schema.drift').map((l) => [l.level, l.msg, l.missingColumns])).toEqual([[50, message, ['extra']]]);
    expect(events('schema.incomplete_records').map((l) => [l.records, l.columns])).toEqual([[1, ['extra']]]);
    expect(runner!.status.details).toMatchObject({ schemaDrift: message, missingColumns: ['extra'], incompleteRecords: 1 });

    server = new StatusServer(() => [runner!.status]);
    const url = await server.start('127.0.0.1', 0);
    const status = (await (await fetch(`${url}/status`)).json()) as { sources: Array<{ details: Record<string, unknown> }> };
    expect(status.sources[0]!.details).toMatchObject({ schemaDrift: message, incompleteRecords: 1 });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('banyan_source_schema_drift{source="orders"} 1\n');
    expect(metrics).toContain('banyan_source_incomplete_records_total{source="orders"} 1\n');
  });

  it('with autoMigrate recreates the triggers itself, flags the change written before, and carries the new column after', async () => {
    const topic = await start(true);
    const q = place.qualifier;
    await place.db.raw(`ALTER TABLE ${q}.orders ADD COLUMN extra varchar(20)`);
    await place.db.raw(`INSERT INTO ${q}.orders (id, note, extra) VALUES (1, 'between', 'lost')`);
    const [between] = await changes(topic, 1);
    expect(between!.after).toEqual({ id: 1, note: 'between' });
    expect(between!.headers['banyan.missing.columns']).toBe('extra');
    // The record is committed after the poller migrated, so the triggers are new by now.
    expect(events('schema.auto_migrated').map((l) => l.columns)).toEqual([['id', 'note', 'extra']]);

    await place.db.raw(`INSERT INTO ${q}.orders (id, note, extra) VALUES (2, 'after', 'kept')`);
    const all = await changes(topic, 2);
    expect(all).toHaveLength(2);
    expect(all[1]!.after).toEqual({ id: 2, note: 'after', extra: 'kept' });
    expect(all[1]!.headers['banyan.missing.columns']).toBeUndefined();
    expect(events('schema.drift')).toEqual([]);
    expect(runner!.status.details).toMatchObject({ incompleteRecords: 1, autoMigrations: 1 });
    expect(runner!.status.details.schemaDrift).toBeUndefined();
  });

  it('notices an ALTER while no changes arrive, and with autoMigrate records the new column from the first change', async () => {
    const q = place.qualifier;
    // The idle check runs every 50 ms: wait for its log line, which is what the test observes.
    const seen = (name: string) => waitFor(() => events(name).length > 0 && events(name), `a ${name} log event`);
    const topic = await start(false, 50);
    await place.db.raw(`ALTER TABLE ${q}.orders ADD COLUMN extra varchar(20)`);
    const message = `the changelog triggers of table ${q}.orders were made for other columns than it has now (id, note, extra): rows written now are recorded without any column added since \`banyan migrate\` last ran; run it again, or set autoMigrate: true`;
    expect((await seen('schema.drift')).map((l) => l.msg)).toEqual([message]);
    expect(runner!.status.details).toMatchObject({ schemaDrift: message, missingColumns: [] });
    await runner!.stop();

    // The same table, now with autoMigrate: the triggers are made again at connect, before any row.
    logs.length = 0;
    const source = new ChangelogSource({ ...(config.sources[0] as ChangelogSourceConfig), autoMigrate: true }, {
      db: place.db,
      dialect: engine.dialect,
      databaseName: 'legacy',
      originTag: config.originTag,
      logger: createRootLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) }),
    });
    runner = createSourceRunner(source, config, createRootLogger('silent'));
    await runner.start();
    expect(events('schema.auto_migrated').map((l) => l.columns)).toEqual([['id', 'note', 'extra']]);
    await place.db.raw(`INSERT INTO ${q}.orders (id, note, extra) VALUES (1, 'first', 'kept')`);
    const [first] = await changes(topic, 1);
    expect(first!.after).toEqual({ id: 1, note: 'first', extra: 'kept' });
    expect(first!.headers['banyan.missing.columns']).toBeUndefined();
  });
});
