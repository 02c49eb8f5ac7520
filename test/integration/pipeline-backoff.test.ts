import type { ChildProcess } from 'node:child_process';
import type { Knex } from 'knex';
import { afterEach, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import { PostgresDialect } from '../../src/dialects/postgres.dialect';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { parseConfig } from '../../src/config';
import { freshName, listeningUrl, readAll, requireEnv, runBanyan, spawnBanyan, testKafka, writeConfigFile } from '../helpers';
import { TcpProxy } from '../tcp-proxy';

interface Status {
  sources: Array<{ name: string; state: string; records: number; lastError: string | null }>;
}

describe('banyan run with a source whose database is down at start', () => {
  let child: ChildProcess | undefined;
  let db: Knex | undefined;
  let proxy: TcpProxy | undefined;
  let schema = '';

  afterEach(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await proxy?.close();
    await db?.raw(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await db?.destroy();
  });

  it('runs the other sources, shows it backing off in /status and /readyz, and starts it once its database answers', async () => {
    schema = freshName('banyan_bo');
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: 5432 });
    proxy.refuse();
    const [upTopic, downTopic] = [freshName('legacy.up'), freshName('legacy.down')];
    const yaml = `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${freshName('backoff')}
  topics: { offsets: ${freshName('offsets')}, deadLetter: ${freshName('dlq')} }
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
http: { port: 0 }
databases:
  up: { dialect: postgres, database: postgres, user: postgres }
  down: { dialect: postgres, port: ${proxy.port}, database: postgres, user: postgres }
sources:
  - { name: reachable, type: changelog, database: up, table: ${schema}.a, topic: ${upTopic}, pollIntervalMs: 50 }
  - { name: unreachable, type: changelog, database: down, table: ${schema}.b, topic: ${downTopic}, pollIntervalMs: 50 }
`;
    const file = writeConfigFile(yaml);
    const config = parseConfig(yaml, file);
    db = createKnex(config.databases.up!);
    await db.raw(`CREATE SCHEMA ${schema}`);
    for (const table of ['a', 'b']) {
      await db.raw(`CREATE TABLE ${schema}.${table} (id integer PRIMARY KEY, name text)`);
      await db.raw(`INSERT INTO ${schema}.${table} SELECT i, 'row ' || i FROM generate_series(1, 5) i`);
    }
    // `banyan migrate` would stop at the database that is down; the test installs the changelogs itself.
    await migrateChangelogs(db, new PostgresDialect(), [`${schema}.a`, `${schema}.b`]);

    child = spawnBanyan(file, ['run'], 'pipe');
    const url = await listeningUrl(child);
    const status = async () => ((await (await fetch(`${url}/status`)).json()) as Status).sources;
    const source = async (name: string) => (await status()).find((s) => s.name === name)!;

    // The reachable source delivers while the other backs off, its last error shown.
    await expect.poll(() => source('reachable'), { timeout: 30_000, interval: 200 }).toMatchObject({ state: 'running', records: 5 });
    await expect
      .poll(() => source('unreachable'), { timeout: 30_000, interval: 200 })
      .toMatchObject({ state: 'backing-off', records: 0, lastError: expect.stringContaining('ECONNRESET') });
    expect(proxy.attempts.length).toBeGreaterThan(0);
    expect(proxy.attempts.every((a) => a.refused)).toBe(true);
    const notReady = await fetch(`${url}/readyz`);
    expect(notReady.status).toBe(503);
    // Between two attempts it backs off; during one it shows connecting, the last error kept.
    expect(await notReady.text()).toMatch(/^not ready: unreachable: (backing-off|connecting) \(.*ECONNRESET.*\)\n$/);
    expect(await (await fetch(`${url}/metrics`)).text()).toContain('banyan_source_up{source="unreachable"} 0');

    // Once its database answers, it starts and delivers, and the process is ready.
    proxy.restore();
    await expect.poll(() => source('unreachable'), { timeout: 45_000, interval: 200 }).toMatchObject({ state: 'running', records: 5 });
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(child.exitCode).toBeNull();

    // Stopped, nothing more can be committed: each topic holds its five rows exactly once.
    const exited = new Promise<number | null>((resolve) => child!.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const kafka = testKafka(config);
    for (const topic of [upTopic, downTopic]) {
      const ids = (await readAll(kafka, topic)).map((m) => m.key!.toString('hex'));
      expect([topic, ids.length, new Set(ids).size]).toEqual([topic, 5, 5]);
    }
  }, 90_000);

  it('backs off while Kafka cannot be reached at start, shown in /status, and delivers once it can', async () => {
    schema = freshName('banyan_bo');
    const brokers = requireEnv('KAFKA_BROKERS').split(',')[0]!;
    const [host, port] = [brokers.slice(0, brokers.lastIndexOf(':')), Number(brokers.slice(brokers.lastIndexOf(':') + 1))];
    // The bootstrap goes through the proxy; once it answers, the broker's advertised address is used.
    proxy = await TcpProxy.start({ host, port });
    proxy.refuse();
    const topic = freshName('legacy.nokafka');
    const yaml = `
kafka:
  brokers: [ '127.0.0.1:${proxy.port}' ]
  clientId: ${freshName('backoff')}
  topics: { offsets: ${freshName('offsets')}, deadLetter: ${freshName('dlq')} }
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
http: { port: 0 }
databases:
  up: { dialect: postgres, database: postgres, user: postgres }
sources:
  - { name: waiting, type: changelog, database: up, table: ${schema}.a, topic: ${topic}, pollIntervalMs: 50 }
`;
    const file = writeConfigFile(yaml);
    const config = parseConfig(yaml, file);
    db = createKnex(config.databases.up!);
    await db.raw(`CREATE SCHEMA ${schema}`);
    await db.raw(`CREATE TABLE ${schema}.a (id integer PRIMARY KEY, name text)`);
    await db.raw(`INSERT INTO ${schema}.a SELECT i, 'row ' || i FROM generate_series(1, 5) i`);
    await migrateChangelogs(db, new PostgresDialect(), [`${schema}.a`]);

    child = spawnBanyan(file, ['run'], 'pipe');
    const url = await listeningUrl(child);
    const source = async () => ((await (await fetch(`${url}/status`)).json()) as Status).sources[0]!;
    // kafkajs gives up on the refused bootstrap (KafkaJSNumberOfRetriesExceeded): backing off, not out.
    await expect
      .poll(source, { timeout: 60_000, interval: 200 })
      .toMatchObject({ state: 'backing-off', records: 0, lastError: expect.stringMatching(/ECONNRESET|Connection|connect/i) });
    expect(child.exitCode).toBeNull();
    expect((await fetch(`${url}/readyz`)).status).toBe(503);

    proxy.restore();
    await expect.poll(source, { timeout: 90_000, interval: 200 }).toMatchObject({ state: 'running', records: 5 });
    const exited = new Promise<number | null>((resolve) => child!.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const ids = (await readAll(testKafka(config), topic)).map((m) => m.key!.toString('hex'));
    expect([ids.length, new Set(ids).size]).toEqual([5, 5]);
  }, 180_000);

  it('still fails at once, naming the source, when a source cannot work (its table does not exist)', async () => {
    schema = freshName('banyan_bo');
    const yaml = `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${freshName('backoff')}
  topics: { offsets: ${freshName('offsets')}, deadLetter: ${freshName('dlq')} }
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
http: { port: 0 }
databases:
  up: { dialect: postgres, database: postgres, user: postgres }
sources:
  - { name: fine, type: changelog, database: up, table: ${schema}.a, pollIntervalMs: 50 }
  - { name: missing, type: changelog, database: up, table: ${schema}.no_such_table, pollIntervalMs: 50 }
`;
    const file = writeConfigFile(yaml);
    db = createKnex(parseConfig(yaml, file).databases.up!);
    await db.raw(`CREATE SCHEMA ${schema}`);
    await db.raw(`CREATE TABLE ${schema}.a (id integer PRIMARY KEY, name text)`);
    await migrateChangelogs(db, new PostgresDialect(), [`${schema}.a`]);

    // A table that does not exist is a mistake in the config, not an outage: `banyan run` refuses
    // it before starting anything, naming the source and its line, without a stack trace.
    const { code, stderr } = await runBanyan(file, ['run']);
    // A config problem: exit code 2 (docs/operations.md), as for any invalid configuration.
    expect(code).toBe(2);
    expect(stderr).toContain('source "missing"');
    expect(stderr).toMatch(/sources\[1\]\.table \(line \d+\)/);
    expect(stderr).toContain('no_such_table');
    expect(stderr).not.toMatch(/^\s+at /m);
  });
});
