import type { ChildProcess } from 'node:child_process';
import type { KafkaMessage } from 'kafkajs';
import type { Knex } from 'knex';
import { afterEach, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import { createDialect } from '../../src/dialects';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { AvroDecoder } from '../../src/runtime/avro';
import { parseConfig, type BanyanConfig, type DatabaseConfig } from '../../src/config';
import { freshName, listeningUrl, readAll, readUntil, spawnBanyan, testKafka, waitFor, writeConfigFile } from '../helpers';

/**
 * The poller is killed with SIGKILL (no polite stop, no chance to flush) in the middle of its work
 * and started again: the topic must hold every change exactly once, read_committed.
 *
 * Where the kill lands is decided by what the test sees, not by speed: a transaction the test
 * holds open stops the poller after the first half of the changes (it passes no open writer), and
 * the kill comes once the child's /status counts 300 committed records. So it lands with
 * 300–1500 of 3002 changes in Kafka on any machine, however busy.
 */
const DATABASES: Record<string, { yaml: string; table: (name: string) => string; ddl: (t: string) => string }> = {
  postgres: {
    yaml: `dialect: postgres\n    database: postgres\n    user: postgres`,
    table: (name) => `public.${name}`,
    ddl: (t) => `CREATE TABLE ${t} (id integer PRIMARY KEY, n integer NOT NULL, note varchar(100))`,
  },
  mariadb: {
    // The held transaction leaves a gap in the change ids: it must not be passed while the test holds it.
    yaml: `dialect: mariadb\n    database: test\n    user: root\n    gapWaitMs: 3600000`,
    table: (name) => name,
    ddl: (t) => `CREATE TABLE ${t} (id integer PRIMARY KEY, n integer NOT NULL, note varchar(100))`,
  },
};

/** Rows inserted, then each updated once; the held transaction and the end marker add a row each. */
const ROWS = 1500;
const HELD_ID = ROWS;
const MARKER_ID = ROWS + 1;
const CHANGES = 2 * ROWS + 2;
const KILL_AFTER = 300;

describe.each(Object.keys(DATABASES))('%s poller killed with SIGKILL mid-stream', (dbName) => {
  const spec = DATABASES[dbName]!;
  let child: ChildProcess | undefined;
  let db: Knex | undefined;
  let held: Knex.Transaction | undefined;
  let table = '';

  afterEach(async () => {
    child?.kill('SIGKILL');
    if (held && !held.isCompleted()) await held.rollback().catch(() => undefined);
    if (db) {
      await db.raw(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      await db.destroy();
    }
  });

  it('writes every change exactly once after a restart', async () => {
    const name = freshName('killed');
    table = spec.table(name);
    const topic = freshName('legacy.kill');
    const clientId = freshName('kill');
    const yaml = `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${clientId}
  topics: { offsets: ${freshName('offsets')}, deadLetter: ${freshName('dlq')} }
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
log: { level: info }
http: { port: 0 }
databases:
  legacy:
    ${spec.yaml}
sources:
  - name: killed
    type: changelog
    database: legacy
    table: ${table}
    topic: ${topic}
    batchSize: 20
    pollIntervalMs: 20
    snapshot: false
`;
    const file = writeConfigFile(yaml);
    const config: BanyanConfig = parseConfig(yaml, file);
    const dbConfig: DatabaseConfig = config.databases.legacy!;
    db = createKnex(dbConfig);
    await db.raw(spec.ddl(table));
    await migrateChangelogs(db, createDialect(dbConfig), [table]);
    for (let i = 0; i < ROWS; i += 100) {
      await db(table).insert(Array.from({ length: 100 }, (_, j) => ({ id: i + j, n: 0, note: `row ${i + j}` })));
    }

    const kafka = testKafka(config);
    child = spawnBanyan(file, ['run'], 'pipe');
    const url = await listeningUrl(child);
    // Once it has committed a record it has read past the inserts (PostgreSQL: its bound covers
    // them); the held transaction then stops it before the updates and the marker.
    await waitFor(async () => (await committedRecords(url)) >= 1, 'a first committed record in /status');
    held = await db.transaction();
    await held(table).insert({ id: HELD_ID, n: 1, note: 'held' });
    // Updates of the same rows, so order per key matters too. By key, not by range: InnoDB would
    // lock the next key above a range, the held row, and wait for the test.
    for (let i = 0; i < ROWS; i += 100) await db(table).whereIn('id', Array.from({ length: 100 }, (_, j) => i + j)).update({ n: 1 });
    await db(table).insert({ id: MARKER_ID, n: 1, note: 'end' });

    await waitFor(async () => (await committedRecords(url)) >= KILL_AFTER, `${KILL_AFTER} committed records in /status`);
    child.kill('SIGKILL');
    await new Promise((resolve) => child!.once('exit', resolve));
    // As its successor would, fence the killed instance: its open transaction is aborted, so the
    // topic's end offsets are final and readAll counts exactly what it committed.
    const successor = kafka.producer({ transactionalId: `${clientId}.source.killed`, idempotent: true, maxInFlightRequests: 1 });
    await successor.connect();
    await successor.disconnect();
    const before = (await readAll(kafka, topic)).length;
    expect(before).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(before).toBeLessThanOrEqual(ROWS);

    await held.commit();
    child = spawnBanyan(file, ['run']);
    const decoder = new AvroDecoder(config.schemaRegistry);
    const decode = async (m: KafkaMessage) =>
      (await decoder.decode(m.value!)) as { op: string; after: { id: number; n: number }; source: { position: string } };
    // Everything up to the marker, the last change: a duplicate would show in the exact count.
    const messages = await readUntil(kafka, topic, async (m) => (await decode(m)).after.id === MARKER_ID, 60_000);
    child.kill('SIGTERM');

    const changes = await Promise.all(messages.map(decode));
    expect(changes).toHaveLength(CHANGES);
    expect(new Set(changes.map((c) => c.source.position)).size).toBe(CHANGES);
    const lastById = new Map<number, { op: string; n: number }>();
    for (const c of changes.sort((a, b) => a.source.position.localeCompare(b.source.position))) {
      lastById.set(c.after.id, { op: c.op, n: c.after.n });
    }
    expect(lastById.size).toBe(ROWS + 2);
    expect([...lastById].filter(([id, v]) => id < ROWS && !(v.op === 'update' && v.n === 1))).toEqual([]);
    expect(lastById.get(HELD_ID)).toEqual({ op: 'insert', n: 1 });
    expect(lastById.get(MARKER_ID)).toEqual({ op: 'insert', n: 1 });
  }, 180_000);
});

/** Records the child's source has committed, by its own /status. */
async function committedRecords(url: string): Promise<number> {
  const status = (await (await fetch(`${url}/status`)).json()) as { sources: Array<{ records: number }> };
  return status.sources[0]?.records ?? 0;
}
