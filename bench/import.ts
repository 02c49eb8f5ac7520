import type { Knex } from 'knex';
import { createKnex } from '../src/clients/database';
import { createDialect } from '../src/dialects';
import { migrateChangelogs } from '../src/import/changelog/migrate';
import { ChangelogSource, parseTableName } from '../src/import/changelog/source';
import { parseConfig, type BanyanConfig, type ChangelogSourceConfig } from '../src/runtime/config';
import { createKafka } from '../src/runtime/kafka';
import { createRootLogger } from '../src/runtime/logger';
import { createSourceRunner } from '../src/runtime/source-runner';
import type { BenchResult } from './report';

/**
 * Makes N changes in a legacy table of a dozen columns (inserts, then updates and deletes of some
 * of those rows; not timed), then times the changelog poller draining all of them into Kafka,
 * committed, through the real registry.
 */
const DATABASES = {
  postgres: {
    yaml: 'dialect: postgres\n    database: postgres\n    user: postgres',
    table: (n: string) => `public.${n}`,
    ddl: (t: string) => `CREATE TABLE ${t} (
      id bigint PRIMARY KEY, customer_no varchar(20) NOT NULL, first_name varchar(50), last_name varchar(50),
      email varchar(120), phone varchar(30), street varchar(100), city varchar(60), postal_code varchar(10),
      balance numeric(12,2), active boolean NOT NULL, updated_at timestamp(3) NOT NULL)`,
    insert: (t: string, from: number, to: number) => `INSERT INTO ${t}
      SELECT i, 'C' || i, 'First' || i, 'Last' || i, 'user' || i || '@example.com', '+41 44 ' || i, i || ' Main Street',
             'City ' || (i % 100), lpad((i % 9999)::text, 4, '0'), (i % 100000) / 100.0, i % 3 <> 0, now()
        FROM generate_series(${from}, ${to}) AS i`,
    // The bulk changes above would wake autovacuum in the middle of the timed drain.
    settle: (tables: string[]) => tables.map((t) => `VACUUM ANALYZE ${t}`),
  },
  mariadb: {
    yaml: 'dialect: mariadb\n    database: test\n    user: root',
    table: (n: string) => n,
    ddl: (t: string) => `CREATE TABLE ${t} (
      id bigint PRIMARY KEY, customer_no varchar(20) NOT NULL, first_name varchar(50), last_name varchar(50),
      email varchar(120), phone varchar(30), street varchar(100), city varchar(60), postal_code varchar(10),
      balance decimal(12,2), active boolean NOT NULL, updated_at datetime(3) NOT NULL)`,
    insert: (t: string, from: number, to: number) => `INSERT INTO ${t}
      SELECT seq, CONCAT('C', seq), CONCAT('First', seq), CONCAT('Last', seq), CONCAT('user', seq, '@example.com'),
             CONCAT('+41 44 ', seq), CONCAT(seq, ' Main Street'), CONCAT('City ', seq % 100), LPAD(seq % 9999, 4, '0'),
             (seq % 100000) / 100.0, seq % 3 <> 0, NOW(3)
        FROM seq_${from}_to_${to}`,
    settle: (tables: string[]) => tables.map((t) => `ANALYZE TABLE ${t}`),
  },
} as const;

export type ImportDialect = keyof typeof DATABASES;

export async function benchImport(dialectName: ImportDialect, rows: number, log: (line: string) => void): Promise<BenchResult> {
  const spec = DATABASES[dialectName];
  const name = `bench_${Date.now().toString(36)}`;
  const table = spec.table(name);
  const config = parseConfig(
    `
kafka:
  brokers: \${KAFKA_BROKERS:-127.0.0.1:19092}
  clientId: ${name}
  topics: { offsets: ${name}.offsets, deadLetter: ${name}.dlq }
  producerThread: \${BANYAN_PRODUCER_THREAD:-true}
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL:-http://127.0.0.1:18081/apis/ccompat/v7}
databases:
  legacy:
    ${spec.yaml}
sources:
  - { name: bench, type: changelog, database: legacy, table: ${table}, topic: ${name}, snapshot: false }
`,
    'bench config',
  );
  const dbConfig = config.databases.legacy!;
  const db = createKnex(dbConfig);
  const dialect = createDialect(dbConfig);
  try {
    await db.raw(spec.ddl(table));
    await migrateChangelogs(db, dialect, [table]);
    // 70% inserts, 20% updates, 10% deletes.
    const inserts = Math.round(rows * 0.7);
    const updates = Math.round(rows * 0.2);
    const deletes = rows - inserts - updates;
    log(`making ${rows} changes in ${dialectName} table ${table} (${inserts} inserts, ${updates} updates, ${deletes} deletes)`);
    for (let from = 1; from <= inserts; from += 20_000) await db.raw(spec.insert(table, from, Math.min(from + 19_999, inserts)));
    await db.raw(`UPDATE ${table} SET balance = balance + 1, city = 'Moved' WHERE id <= ?`, [updates]);
    await db.raw(`DELETE FROM ${table} WHERE id > ? AND id <= ?`, [inserts - deletes, inserts]);
    const changelog = dialect.changelogTable(parseTableName(table));
    const made = await countRows(db, [changelog.schema, changelog.name].filter(Boolean).join('.'));
    if (made !== rows) throw new Error(`expected ${rows} changelog rows, found ${made}`);
    for (const statement of spec.settle([table, [changelog.schema, changelog.name].filter(Boolean).join('.')])) await db.raw(statement);

    const logger = createRootLogger('warn');
    const source = new ChangelogSource(config.sources[0] as ChangelogSourceConfig, {
      db,
      dialect,
      databaseName: 'legacy',
      originTag: config.originTag,
      logger,
    });
    const runner = createSourceRunner(source, config, logger);
    log(`draining ${rows} changes into Kafka topic ${name}`);
    const started = process.hrtime.bigint();
    await runner.start();
    log(`runner started in ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(2)} s`);
    while (runner.status.records + runner.status.deadLetters < rows) await new Promise((r) => setTimeout(r, 5));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const { transactions, deadLetters } = runner.status;
    await runner.stop();
    return {
      bench: 'import',
      dialect: dialectName,
      rows,
      seconds: round(seconds, 3),
      rows_per_s: Math.round(rows / seconds),
      transactions,
      dead_letters: deadLetters,
    };
  } finally {
    // Its topics go too: hundreds of leftover partitions on the local broker slowed later runs
    // (24–29k rows/s against 29–34k on a fresh broker).
    await deleteTopics(config.kafka, [name, config.kafka.topics.offsets, config.kafka.topics.deadLetter]).catch(() => undefined);
    for (const statement of dialect.uninstallChangelog(parseTableName(table))) await db.raw(statement).catch(() => undefined);
    await db.raw(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    await db.destroy();
  }
}

async function countRows(db: Knex, table: string): Promise<number> {
  const [row] = await db(table).count({ n: '*' });
  return Number(row?.n);
}

function round(n: number, digits: number): number {
  return Math.round(n * 10 ** digits) / 10 ** digits;
}

async function deleteTopics(kafkaConfig: BanyanConfig['kafka'], topics: string[]): Promise<void> {
  const admin = createKafka(kafkaConfig, createRootLogger('error')).admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics });
  } finally {
    await admin.disconnect();
  }
}
