import type { Knex } from 'knex';
import { afterEach, describe, expect, it } from 'vitest';
import { createKnex, defaultPort } from '../../src/clients/database';
import type { Dialect } from '../../src/dialects/dialect';
import { MysqlDialect } from '../../src/dialects/mysql.dialect';
import { PostgresDialect } from '../../src/dialects/postgres.dialect';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { ChangelogSource } from '../../src/import/changelog/source';
import { createSalesforceCdcSource } from '../../src/import/salesforce-cdc';
import { AvroDecoder, AvroEncoder } from '../../src/runtime/avro';
import { parseConfig, type BanyanConfig, type ChangelogSourceConfig, type SalesforceCdcSourceConfig } from '../../src/config';
import { createKafka } from '../../src/runtime/kafka';
import { createRootLogger, type Logger } from '../../src/runtime/logger';
import { KafkaOffsetStore } from '../../src/runtime/offsets';
import { createSchemaRegistry } from '../../src/runtime/registry';
import { createSourceRunner, runnerOptions, SourceRunner } from '../../src/runtime/source-runner';
import { startEmulator } from '../../tools/salesforce-emulator/index.js';
import { decodeMessages, freshName, loginToEmulator, readAll, readUntil, testConfig, testKafka, type ReadMessage } from '../helpers';
import { TcpProxy } from '../tcp-proxy';

/**
 * Faults that land while a source reconnects, not only while it polls: a TCP proxy between
 * Banyan and the database (or Salesforce) refuses the reconnect's connection, at the moment the
 * runner makes it. Every test ends with exact counts read back read_committed, and the source
 * running again. Data topics have one partition, so a sentinel written last proves nothing else
 * is still to come.
 */

interface LogLine {
  event?: string;
  [key: string]: unknown;
}

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
});

/** A logger whose lines reach `hook` synchronously, as they are written. */
function hookedLogger(hook: (line: LogLine) => void): Logger {
  return createRootLogger('info', {
    write: (text: string) => {
      const line = JSON.parse(text) as LogLine;
      if (process.env.BANYAN_TEST_LOG_LEVEL === 'info') process.stderr.write(text);
      hook(line);
    },
  });
}

/** Messages of one partition, decoded in order; a delete's tombstone reads as op 'tombstone' with its key. */
async function decodeAll<T>(config: BanyanConfig, messages: ReadMessage[]): Promise<T[]> {
  return (await decodeMessages<T, Record<string, unknown>>(config, messages)).map(({ key, value }) => value ?? ({ op: 'tombstone', before: null, after: null, key } as T));
}

/** Everything committed to `topic` up to the first value `isLast` picks (see readUntil in test/helpers.ts), decoded. */
async function readDecodedUntil<T>(config: BanyanConfig, topic: string, isLast: (value: T) => boolean): Promise<T[]> {
  const decoder = new AvroDecoder(config.schemaRegistry);
  const messages = await readUntil(testKafka(config), topic, async (m) => m.value !== null && isLast((await decoder.decode(m.value)) as T));
  return decodeAll<T>(config, messages);
}

/** Everything committed to `topic`, decoded: call it once its writer has stopped, so the count is final. */
async function readAllDecoded<T>(config: BanyanConfig, topic: string): Promise<T[]> {
  return decodeAll<T>(config, await readAll(testKafka(config), topic));
}

/**
 * The runner's events from the first step that failed after `from`: that failure, at least one
 * refused reconnect, and the source started again, in that order and nothing else; and no poll ever reached an unconnected
 * source (it would fail with NOT_CONNECTED).
 */
function expectRefusedReconnect(lines: LogLine[], from: number): void {
  const RUNNER = new Set(['source.failed', 'source.connect_failed', 'source.started', 'source.start_failed', 'source.fenced']);
  const events = lines.slice(from).map((l) => l.event).filter((e) => e !== undefined && RUNNER.has(e));
  expect(events.slice(events.indexOf('source.failed')).join(' ')).toMatch(/^source\.failed( source\.connect_failed)+ source\.started$/);
  expect(lines.filter((l) => JSON.stringify(l).includes('NOT_CONNECTED'))).toEqual([]);
}

interface Change {
  op: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  key?: Record<string, unknown>;
}

const idOf = (c: Change) => Number((c.after ?? c.before ?? c.key)!.id);

interface DialectCase {
  name: string;
  dialect: Dialect;
  databaseYaml(port: number, database: string): string;
  /** Creates the place the test's table lives in; returns the table name and how to drop it. */
  prepare(direct: BanyanConfig['databases'][string]): Promise<{ db: Knex; table: string; drop: () => Promise<void> }>;
}

const CASES: DialectCase[] = [
  {
    name: 'PostgreSQL',
    dialect: new PostgresDialect(),
    databaseYaml: (port) => `{ dialect: postgres, host: 127.0.0.1, port: ${port}, database: postgres, user: postgres }`,
    async prepare(direct) {
      const db = createKnex(direct);
      const schema = freshName('banyan_rc');
      await db.raw(`CREATE SCHEMA ${schema}`);
      return {
        db,
        table: `${schema}.items`,
        drop: async () => {
          await db.raw(`DROP SCHEMA ${schema} CASCADE`);
          await db.destroy();
        },
      };
    },
  },
  {
    name: 'MariaDB',
    dialect: new MysqlDialect(),
    databaseYaml: (port, database) => `{ dialect: mariadb, host: 127.0.0.1, port: ${port}, database: ${database}, user: root }`,
    async prepare(direct) {
      const admin = createKnex({ ...direct, database: 'mysql' });
      await admin.raw(`CREATE DATABASE \`${direct.database}\` CHARACTER SET utf8mb4`);
      const db = createKnex(direct);
      return {
        db,
        table: 'items',
        drop: async () => {
          await db.destroy();
          await admin.raw(`DROP DATABASE IF EXISTS \`${direct.database}\``);
          await admin.destroy();
        },
      };
    },
  },
];

describe.each(CASES)('$name changelog poller: the database cut during a reconnect', ({ dialect, databaseYaml, prepare }) => {
  interface Setup {
    config: BanyanConfig;
    /** The same, with the registry reached directly: what the test reads with. */
    readConfig: BanyanConfig;
    db: Knex;
    table: string;
    topic: string;
    dbProxy: TcpProxy;
    registryProxy: TcpProxy;
  }

  async function setup(opts: { snapshot: boolean }): Promise<Setup> {
    const dbProxy = await TcpProxy.start();
    cleanups.push(() => dbProxy.close());
    const database = freshName('banyan_rc');
    const topic = freshName('legacy.reconnect');
    const yaml = (port: number) => `
databases:
  legacy: ${databaseYaml(port, database)}
sources:
  - { name: items, type: changelog, database: legacy, table: TABLE, topic: ${topic}, pollIntervalMs: 50, batchSize: 10, snapshot: ${opts.snapshot} }
`;
    const readConfig = testConfig(yaml(dbProxy.port));
    const dialectName = readConfig.databases.legacy!.dialect;
    const direct = { ...readConfig.databases.legacy!, port: defaultPort(dialectName) };
    dbProxy.forwardTo({ host: direct.host, port: direct.port! });
    const { db, table, drop } = await prepare(direct);
    cleanups.push(drop);
    (readConfig.sources[0] as ChangelogSourceConfig).table = table;
    Object.assign(readConfig.kafka.topics, { offsets: freshName('offsets'), deadLetter: freshName('dlq'), partitions: 1 });
    await db.raw(`CREATE TABLE ${table} (id bigint PRIMARY KEY, name varchar(100))`);

    const registry = new URL(readConfig.schemaRegistry.url);
    const registryProxy = await TcpProxy.start({ host: registry.hostname, port: Number(registry.port) });
    cleanups.push(() => registryProxy.close());
    const config: BanyanConfig = {
      ...readConfig,
      schemaRegistry: { ...readConfig.schemaRegistry, url: `${registryProxy.url}${registry.pathname}` },
    };
    return { config, readConfig, db, table, topic, dbProxy, registryProxy };
  }

  async function startRunner(s: Setup, lines: LogLine[], hook: (line: LogLine) => void): Promise<SourceRunner> {
    const logger = hookedLogger((line) => {
      lines.push(line);
      hook(line);
    });
    const db = createKnex(s.config.databases.legacy!);
    cleanups.push(() => db.destroy());
    const source = new ChangelogSource(s.config.sources[0] as ChangelogSourceConfig, {
      db, dialect, databaseName: 'legacy', originTag: s.config.originTag, logger,
    });
    const runner = createSourceRunner(source, s.config, logger);
    cleanups.push(() => runner.stop());
    await runner.start();
    return runner;
  }

  const insert = (s: Setup, from: number, to: number) =>
    s.db.raw(`INSERT INTO ${s.table} (id, name) VALUES ${Array.from({ length: to - from + 1 }, (_, i) => `(${from + i}, 'item ${from + i}')`).join(', ')}`);

  it('mid-snapshot: the snapshot is taken again from the start, not abandoned for the change stream', async () => {
    const s = await setup({ snapshot: true });
    await insert(s, 1, 50);
    await migrateChangelogs(s.db, dialect, [s.table]);

    // Once the first page is read, the database goes away: the next page fails, and the
    // reconnect that follows is refused its connection; service is back right after.
    let refused: Promise<unknown> | undefined;
    const lines: LogLine[] = [];
    const runner = await startRunner(s, lines, (line) => {
      if (line.event === 'snapshot.progress' && !refused) {
        s.dbProxy.cut();
        s.dbProxy.refuse();
        refused = s.dbProxy.nextAttempt().then((attempt) => {
          s.dbProxy.restore();
          return attempt;
        });
      }
    });

    // Page 1 (ids 1–10) was committed before the cut; the snapshot restarts, so those ten come twice.
    let snapshots = 0;
    await readDecodedUntil<Change>(s.readConfig, s.topic, (c) => c.op === 'snapshot' && ++snapshots >= 60);
    expect(await refused).toMatchObject({ refused: true });
    await s.db.raw(`UPDATE ${s.table} SET name = 'changed' WHERE id = 1`);
    await s.db.raw(`DELETE FROM ${s.table} WHERE id = 2`);
    await insert(s, 51, 51);
    await insert(s, 999, 999); // the sentinel: once it is read, nothing written before it is missing

    await readDecodedUntil<Change>(s.readConfig, s.topic, (c) => idOf(c) === 999);
    await expect.poll(() => runner.status.state).toBe('running');
    // Stopped, nothing more can be committed: the counts below are final, a duplicate would show.
    await runner.stop();
    const all = await readAllDecoded<Change>(s.readConfig, s.topic);
    const snapshotIds = all.filter((c) => c.op === 'snapshot').map(idOf);
    expect(snapshotIds.length).toBe(60);
    const counts = new Map<number, number>();
    for (const id of snapshotIds) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (let id = 1; id <= 50; id++) expect([id, counts.get(id)]).toEqual([id, id <= 10 ? 2 : 1]);
    expect(all.filter((c) => c.op !== 'snapshot').map((c) => [c.op, idOf(c)])).toEqual([
      ['update', 1], ['delete', 2], ['tombstone', 2], ['insert', 51], ['insert', 999],
    ]);
    expect(all).toHaveLength(65);
    expect(runner.status).toMatchObject({ records: 65, deadLetters: 0 });
    expectRefusedReconnect(lines, 0);
  });

  it('mid-changes: nothing read past the last commit is skipped when the reconnect is refused', async () => {
    const s = await setup({ snapshot: false });
    await migrateChangelogs(s.db, dialect, [s.table]);
    let armed = false;
    let armedAt = 0;
    let refused: Promise<unknown> | undefined;
    const lines: LogLine[] = [];
    const runner = await startRunner(s, lines, (line) => {
      // The registry refused a batch that was read (and the one read after it): the step fails.
      // The reconnect that follows finds the database gone; both are back right after.
      if (line.event === 'source.failed' && armed && !refused) {
        s.dbProxy.cut();
        s.dbProxy.refuse();
        refused = s.dbProxy.nextAttempt().then((attempt) => {
          s.dbProxy.restore();
          s.registryProxy.restore();
          return attempt;
        });
      }
    });
    await insert(s, 1, 10);
    expect((await readDecodedUntil<Change>(s.readConfig, s.topic, (c) => idOf(c) === 10)).map(idOf)).toEqual(range(1, 10));

    // A query cut in flight makes the runner reconnect (accepted); the source describes the
    // table again, so its next batch registers its schema again, with the registry now down.
    s.registryProxy.cut();
    s.registryProxy.refuse();
    const cut = s.dbProxy.cutAtNextRequest();
    await cut;
    expect(await s.dbProxy.nextAttempt()).toMatchObject({ refused: false });
    armedAt = lines.length;
    armed = true;
    await insert(s, 11, 30);

    await expect.poll(() => refused, { timeout: 30_000 }).toBeDefined();
    expect(await refused).toMatchObject({ refused: true });
    await insert(s, 999, 999);
    await readDecodedUntil<Change>(s.readConfig, s.topic, (c) => idOf(c) === 999);
    await expect.poll(() => runner.status.state).toBe('running');
    await runner.stop();
    const all = await readAllDecoded<Change>(s.readConfig, s.topic);
    expect(all.map(idOf)).toEqual([...range(1, 30), 999]);
    expect(all.every((c) => c.op === 'insert')).toBe(true);
    // The registry outage failed the step; it sent no record to the dead-letter topic.
    expect(runner.status).toMatchObject({ records: 31, deadLetters: 0 });
    expect(await readAll(testKafka(s.readConfig), s.readConfig.kafka.topics.deadLetter)).toHaveLength(0);
    expectRefusedReconnect(lines, armedAt);
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('Salesforce CDC source: Salesforce cut during a reconnect', () => {
  interface CdcChange {
    op: string;
    recordId: string;
    replayId: bigint | null;
  }

  it('logs in and subscribes again from the committed replayId once it can, losing nothing', async () => {
    const proxy = await TcpProxy.start();
    cleanups.push(() => proxy.close());
    // Login and instance URL both lead through the proxy, as a real org's do through the network.
    const em = await startEmulator({ port: 0, cometd: { longPollTimeoutMs: 1000 }, instanceUrl: proxy.url });
    cleanups.push(() => em.close());
    proxy.forwardTo({ host: '127.0.0.1', port: Number(new URL(em.url).port) });
    process.env.RECONNECT_TEST_SF_PASSWORD = em.credentials.password;
    process.env.RECONNECT_TEST_SF_SECRET = em.credentials.clientSecret;
    const topic = freshName('salesforce.Contact');
    const config = testConfig(`
salesforce:
  loginUrl: ${proxy.url}
  username: ${em.credentials.username}
  password: \${RECONNECT_TEST_SF_PASSWORD}
  clientId: ${em.credentials.clientId}
  clientSecret: \${RECONNECT_TEST_SF_SECRET}
sources:
  - { name: contacts, type: salesforce-cdc, object: Contact, topic: ${topic}, batchSize: 100, pollIntervalMs: 50 }
`);
    Object.assign(config.kafka.topics, { offsets: freshName('offsets'), deadLetter: freshName('dlq'), partitions: 1 });

    // The ended session fails the step; the reconnect must log in again, and that login is refused.
    let armed = false;
    let armedAt = 0;
    let refused: Promise<unknown> | undefined;
    const lines: LogLine[] = [];
    const logger = hookedLogger((line) => {
      lines.push(line);
      if (line.event === 'source.failed' && armed && !refused) {
        proxy.cut();
        proxy.refuse();
        refused = proxy.nextAttempt().then((attempt) => {
          proxy.restore();
          return attempt;
        });
      }
    });
    const kafka = createKafka(config.kafka, createRootLogger('silent'));
    const source = createSalesforceCdcSource(config.salesforce!, config.sources[0] as SalesforceCdcSourceConfig, {
      logger,
      clientOptions: { retry: { minMs: 20, maxMs: 200, rateLimitMinMs: 50 } },
    });
    const runner = new SourceRunner(
      source, kafka, new AvroEncoder(createSchemaRegistry(config.schemaRegistry)),
      new KafkaOffsetStore(kafka, config.kafka.topics.offsets, 1), logger,
      { ...runnerOptions(config), backoffMs: { min: 100, max: 1000 } },
    );
    cleanups.push(() => runner.stop());
    await runner.start();

    let conn = await loginToEmulator(em);
    const { id: a } = (await conn.sobject('Contact').create({ LastName: 'Before' })) as { id: string };
    expect((await readDecodedUntil<CdcChange>(config, topic, (c) => c.recordId === a)).map((c) => [c.op, c.recordId])).toEqual([['create', a]]);

    armedAt = lines.length;
    armed = true;
    em.admin.expireSessions();
    await expect.poll(() => refused, { timeout: 30_000 }).toBeDefined();
    expect(await refused).toMatchObject({ refused: true });

    // Made while the source is disconnected: only the replay from the committed replayId brings them.
    conn = await loginToEmulator(em);
    await conn.sobject('Contact').update({ Id: a, Phone: '1' });
    await conn.sobject('Contact').update({ Id: a, Phone: '2' });
    const { id: b } = (await conn.sobject('Contact').create({ LastName: 'Sentinel' })) as { id: string };

    await readDecodedUntil<CdcChange>(config, topic, (c) => c.recordId === b);
    await expect.poll(() => runner.status.state).toBe('running');
    await runner.stop();
    const all = await readAllDecoded<CdcChange>(config, topic);
    expect(all.map((c) => [c.op, c.recordId])).toEqual([['create', a], ['update', a], ['update', a], ['create', b]]);
    const events = em.admin.changeEvents().filter((e) => e.entityName === 'Contact').map((e) => e.replayId);
    expect(all.map((c) => Number(c.replayId))).toEqual(events);
    expect(runner.status).toMatchObject({ records: 4, deadLetters: 0 });
    expectRefusedReconnect(lines, armedAt);
  });
});
