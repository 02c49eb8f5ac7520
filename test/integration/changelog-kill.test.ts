import type { ChildProcess } from 'node:child_process';
import type { Knex } from 'knex';
import { afterEach, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import { createDialect } from '../../src/dialects';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { AvroDecoder } from '../../src/runtime/avro';
import { parseConfig, type BanyanConfig, type DatabaseConfig } from '../../src/runtime/config';
import { freshName, readTopic, spawnBanyan, testKafka, withAdmin, writeConfigFile } from '../helpers';

/**
 * The poller is killed with SIGKILL (no polite stop, no chance to flush) in the middle of its work
 * and started again: the topic must hold every change exactly once, read_committed.
 */
const DATABASES: Record<string, { yaml: string; table: (name: string) => string; ddl: (t: string) => string }> = {
  postgres: {
    yaml: `dialect: postgres\n    database: postgres\n    user: postgres`,
    table: (name) => `public.${name}`,
    ddl: (t) => `CREATE TABLE ${t} (id integer PRIMARY KEY, n integer NOT NULL, note varchar(100))`,
  },
  mariadb: {
    yaml: `dialect: mariadb\n    database: test\n    user: root\n    gapWaitMs: 500`,
    table: (name) => name,
    ddl: (t) => `CREATE TABLE ${t} (id integer PRIMARY KEY, n integer NOT NULL, note varchar(100))`,
  },
};

const CHANGES = 3000;

describe.each(Object.keys(DATABASES))('%s poller killed with SIGKILL mid-stream', (dbName) => {
  const spec = DATABASES[dbName]!;
  let child: ChildProcess | undefined;
  let db: Knex | undefined;
  let table = '';

  afterEach(async () => {
    child?.kill('SIGKILL');
    if (db) {
      await db.raw(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      await db.destroy();
    }
  });

  it('writes every change exactly once after a restart', async () => {
    const name = freshName('killed');
    table = spec.table(name);
    const topic = freshName('legacy.kill');
    const yaml = `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${freshName('kill')}
  topics: { offsets: ${freshName('offsets')}, deadLetter: ${freshName('dlq')} }
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
log: { level: warn }
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

    // Inserts, then updates of the same rows, so order per key matters too.
    for (let i = 0; i < CHANGES / 2; i += 100) {
      const rows = Array.from({ length: 100 }, (_, j) => ({ id: i + j, n: 0, note: `row ${i + j}` }));
      await db(table).insert(rows);
    }
    for (let i = 0; i < CHANGES / 2; i += 100) await db(table).whereBetween('id', [i, i + 99]).update({ n: 1 });

    const kafka = testKafka(config);
    child = spawnBanyan(file, ['run']);
    // Kill it once some, but not all, batches are written (high watermarks count markers too).
    await waitFor(async () => (await highWatermarks(kafka, topic)) >= 400, 30_000);
    child.kill('SIGKILL');
    await new Promise((resolve) => child!.once('exit', resolve));
    const before = (await readTopic(kafka, topic, CHANGES, 2000)).length;
    expect(before).toBeGreaterThanOrEqual(300);
    expect(before).toBeLessThan(CHANGES);

    child = spawnBanyan(file, ['run']);
    // Exactly CHANGES messages with CHANGES distinct positions: a duplicate would push a change out.
    const messages = await readTopic(kafka, topic, CHANGES, 30_000);
    child.kill('SIGTERM');

    const decoder = new AvroDecoder(config.schemaRegistry);
    const changes = (await Promise.all(messages.map((m) => decoder.decode(m.value!)))) as Array<{
      op: string;
      after: { id: number; n: number };
      source: { position: string };
    }>;
    expect(changes).toHaveLength(CHANGES);
    expect(new Set(changes.map((c) => c.source.position)).size).toBe(CHANGES);
    const lastById = new Map<number, { op: string; n: number }>();
    for (const c of changes.sort((a, b) => a.source.position.localeCompare(b.source.position))) {
      lastById.set(c.after.id, { op: c.op, n: c.after.n });
    }
    expect(lastById.size).toBe(CHANGES / 2);
    expect([...lastById.values()].every((v) => v.op === 'update' && v.n === 1)).toBe(true);
  }, 120_000);
});

async function highWatermarks(kafka: ReturnType<typeof testKafka>, topic: string): Promise<number> {
  return withAdmin(kafka, async (admin) => {
    if (!(await admin.listTopics()).includes(topic)) return 0;
    // A topic just created may not have its leaders yet: count it as empty until it does.
    const offsets = await admin.fetchTopicOffsets(topic).catch(() => []);
    return offsets.reduce((sum, p) => sum + Number(p.high), 0);
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
