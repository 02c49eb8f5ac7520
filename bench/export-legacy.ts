import type { Kafka } from 'kafkajs';
import type { Knex } from 'knex';
import pino from 'pino';
import { createKnex } from '../src/clients/database';
import type { BanyanConfig, DatabaseConfig } from '../src/config';
import { createDialect } from '../src/dialects';
import { registerDomainSchemas } from '../src/domain';
import type { EventCatalog } from '../src/domain/catalog';
import type { DomainEvent } from '../src/domain/event';
import { createPublisher } from '../src/domain/publish';
import { legacySinkSchema } from '../src/export/legacy/config';
import { createLegacySink } from '../src/export/module';
import { migrateChangelogs } from '../src/import/changelog/migrate';
import { AvroEncoder } from '../src/runtime/avro';
import { createChangeTypes } from '../src/runtime/change-types';
import { createKafka, ensureTopics } from '../src/runtime/kafka';
import { componentLogger, createRootLogger } from '../src/runtime/logger';
import { createSchemaRegistry } from '../src/runtime/registry';
import { runnerKafka, runnerOptions } from '../src/runtime/source-runner';
import { reverseMapping } from '../src/transforms/mappings';
import { catalogOf } from '../src/transforms/module';
import { ADDRESS_CHANGES, pick, random, serviceEvent, USER_CHANGES, value } from './domain-events';
import { median, type BenchResult } from './report';

/**
 * The legacy sink writing domain events back into a legacy users table. Not timed: a fresh table
 * (PostgreSQL: in a fresh schema, so the sink's guard and offsets tables are fresh too; MariaDB: in
 * a fresh database) holding M = N/3 rows, its changelog installed, fresh topics, the change types
 * `user` and `address` in `dual`, and N domain events already committed to the domain topics: 60%
 * UserChanged, 40% AddressChanged, over the M rows (so most rows change several times, with
 * increasing commit times), 3% of them UserChanged of new ids carrying every NOT NULL column
 * (inserts). Timed: a LegacySink built as `banyan run` builds it (the reverse of the config's
 * legacy-users mapping) from its start until it has handled all N events.
 */
export type ExportLegacyDialect = 'postgres' | 'mariadb';

/** The config dialect each bench dialect runs against (MariaDB is the `mysql` dialect). */
const CONFIG_DIALECT: Record<ExportLegacyDialect, DatabaseConfig['dialect']> = { postgres: 'postgres', mariadb: 'mysql' };

/** Share of the events that are UserChanged (the rest are AddressChanged), and of those that insert a new row. */
const USER_SHARE = 0.6;
const INSERT_SHARE = 0.03;
/** Events a domain-service transaction publishes. */
const PUBLISH_CHUNK = 5_000;

interface Prepared {
  db: Knex;
  dbConfig: DatabaseConfig;
  table: string;
  /** The table as the log names it. */
  where: string;
  cleanup(): Promise<void>;
}

/** Where a run's table lives, how it is filled, and how it goes. */
const DATABASES: Record<ExportLegacyDialect, { prepare(admin: Knex, dbConfig: DatabaseConfig, id: string): Promise<Prepared>; fill(db: Knex, table: string, rows: number): Promise<void> }> = {
  postgres: {
    async prepare(admin, dbConfig, id) {
      await admin.raw(`CREATE SCHEMA ${id}`);
      const table = `${id}.users`;
      await admin.raw(`CREATE TABLE ${table} (
        id integer PRIMARY KEY, first_name varchar(50), last_name varchar(50) NOT NULL, email varchar(40),
        street varchar(100), city varchar(60), postal_code varchar(10), state varchar(30), country char(2),
        updated_at timestamp(3) NOT NULL DEFAULT now())`);
      return { db: admin, dbConfig, table, where: `table ${table}`, cleanup: async () => void (await admin.raw(`DROP SCHEMA IF EXISTS ${id} CASCADE`)) };
    },
    async fill(db, table, rows) {
      for (let from = 1; from <= rows; from += 20_000) {
        await db.raw(`INSERT INTO ${table} (id, first_name, last_name, email, street, city, postal_code, state, country)
          SELECT i, 'First' || i, 'Last' || i, 'u' || i || '@example.com', i || ' Main St', 'City ' || (i % 100), lpad((i % 9999)::text, 4, '0'), 'ZH', 'CH'
            FROM generate_series(${from}, ${Math.min(from + 19_999, rows)}) AS i`);
      }
      // Bulk inserts would wake autovacuum in the middle of the timed run.
      await db.raw(`VACUUM ANALYZE ${table}`);
    },
  },
  mariadb: {
    async prepare(admin, dbConfig, id) {
      await admin.raw(`CREATE DATABASE \`${id}\` CHARACTER SET utf8mb4`);
      const runConfig = { ...dbConfig, database: id };
      const db = createKnex(runConfig);
      await db.raw(`CREATE TABLE users (
        id int PRIMARY KEY, first_name varchar(50), last_name varchar(50) NOT NULL, email varchar(40),
        street varchar(100), city varchar(60), postal_code varchar(10), state varchar(30), country char(2),
        updated_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))`);
      return {
        db,
        dbConfig: runConfig,
        table: 'users',
        where: `table ${id}.users`,
        cleanup: async () => {
          await db.destroy();
          await admin.raw(`DROP DATABASE IF EXISTS \`${id}\``);
        },
      };
    },
    async fill(db, table, rows) {
      for (let from = 1; from <= rows; from += 20_000) {
        await db.raw(`INSERT INTO ${table} (id, first_name, last_name, email, street, city, postal_code, state, country)
          SELECT seq, CONCAT('First', seq), CONCAT('Last', seq), CONCAT('u', seq, '@example.com'), CONCAT(seq, ' Main St'),
                 CONCAT('City ', seq % 100), LPAD(seq % 9999, 4, '0'), 'ZH', 'CH'
            FROM seq_${from}_to_${Math.min(from + 19_999, rows)}`);
      }
      await db.raw(`ANALYZE TABLE ${table}`);
    },
  },
};

export interface ExportLegacyOptions {
  /** The product's config: its kafka, schemaRegistry, the chosen database and its legacy-users transform are used. */
  config: BanyanConfig;
  configFile: string;
  dialect?: ExportLegacyDialect;
  /** A key of the config's `databases`; by default the only one of the dialect. */
  database?: string;
  events: number;
  warmups: number;
  runs: number;
}

/** One run's figures. */
export type ExportLegacyRun = {
  seconds: number;
  events_per_s: number;
  rows_written: number;
  rows_per_s: number;
  noops: number;
  transactions: number;
  stale: number;
  dead_letters: number;
};

export async function benchExportLegacy(options: ExportLegacyOptions, log: (line: string) => void): Promise<BenchResult> {
  const { databaseName, dbConfig, dialectName } = chooseDatabase(options);
  const admin = createKnex(dbConfig);
  log(`${dialectName} database "${databaseName}" of ${options.configFile}: ${dbConfig.host}${dbConfig.port ? `:${dbConfig.port}` : ''}/${dbConfig.database} as ${dbConfig.user}`);
  try {
    const warmup: ExportLegacyRun[] = [];
    const runs: ExportLegacyRun[] = [];
    for (let i = 1; i <= options.warmups + options.runs; i++) {
      const label = i <= options.warmups ? `warm-up ${i}/${options.warmups}` : `run ${i - options.warmups}/${options.runs}`;
      const run = await runOnce({ options, admin, databaseName, dbConfig, dialectName }, (line) => log(`${label}: ${line}`));
      log(
        `${label}: ${options.events} events in ${run.seconds.toFixed(2)} s = ${run.events_per_s.toLocaleString('en')} events/s, ` +
          `${run.rows_written} rows written = ${run.rows_per_s.toLocaleString('en')} rows/s (${run.noops} no-ops, ${run.transactions} transactions)` +
          `${i <= options.warmups ? ', not counted' : ''}`,
      );
      (i <= options.warmups ? warmup : runs).push(run);
    }
    const rowsRate = Math.round(median(runs.map((r) => r.rows_per_s)));
    const eventsRate = Math.round(median(runs.map((r) => r.events_per_s)));
    log(
      `median of ${runs.length} run${runs.length === 1 ? '' : 's'}: ${rowsRate.toLocaleString('en')} rows/s (${runs.map((r) => r.rows_per_s.toLocaleString('en')).join(' / ')}), ` +
        `${eventsRate.toLocaleString('en')} events/s (${runs.map((r) => r.events_per_s.toLocaleString('en')).join(' / ')})`,
    );
    return {
      bench: 'export-legacy',
      dialect: dialectName,
      database: databaseName,
      events: options.events,
      existing_rows: existingRows(options.events),
      rows_per_s: rowsRate,
      events_per_s: eventsRate,
      median_seconds: Math.round(median(runs.map((r) => r.seconds)) * 1000) / 1000,
      median_rows_written: median(runs.map((r) => r.rows_written)),
      dead_letters: runs.reduce((n, r) => n + r.dead_letters, 0),
      runs,
      warmup,
    };
  } finally {
    await admin.destroy();
  }
}

/** The database the bench writes to: named by --database, or the config's only one of the dialect. */
function chooseDatabase(options: ExportLegacyOptions): { databaseName: string; dbConfig: DatabaseConfig; dialectName: ExportLegacyDialect } {
  const databases = Object.entries(options.config.databases);
  const dialectName = options.dialect ?? (options.database !== undefined && options.config.databases[options.database]?.dialect === 'mysql' ? 'mariadb' : 'postgres');
  const candidates = databases.filter(([name, d]) => d.dialect === CONFIG_DIALECT[dialectName] && (options.database === undefined || name === options.database));
  if (candidates.length !== 1) {
    const what = options.database !== undefined ? `database "${options.database}" of dialect ${CONFIG_DIALECT[dialectName]}` : `exactly one ${CONFIG_DIALECT[dialectName]} database`;
    throw new Error(`${options.configFile} has no ${what} (configured: ${databases.map(([n, d]) => `${n} (${d.dialect})`).join(', ') || 'none'}): name one with --database`);
  }
  const [databaseName, dbConfig] = candidates[0]!;
  return { databaseName, dbConfig, dialectName };
}

/** The rows the table holds before the run: a third of the events, so most rows change several times. */
function existingRows(events: number): number {
  return Math.max(1, Math.round(events / 3));
}

interface RunContext {
  options: ExportLegacyOptions;
  admin: Knex;
  databaseName: string;
  dbConfig: DatabaseConfig;
  dialectName: ExportLegacyDialect;
}

async function runOnce(context: RunContext, log: (line: string) => void): Promise<ExportLegacyRun> {
  const { options, databaseName, dialectName } = context;
  const base = options.config;
  const id = `bench_sk_${Date.now().toString(36)}`;
  const transform = base.transforms.find((t) => t.name === 'legacy-users');
  if (!transform) throw new Error(`${options.configFile} has no transform named legacy-users (the bench writes its mapping back)`);
  // The pipeline's warnings go to stderr: stdout is for the result.
  const logger = createRootLogger('warn', pino.destination(2));
  const kafka = createKafka(base.kafka, logger);
  let prepared: Prepared | undefined;
  let running: { stop(): Promise<void> } | undefined;
  try {
    prepared = await DATABASES[dialectName].prepare(context.admin, context.dbConfig, id);
    const { db, table } = prepared;
    const sink = legacySinkSchema.parse({ name: 'bench-users', type: 'legacy', mapping: transform.name, database: databaseName, table });
    const config: BanyanConfig = {
      ...base,
      kafka: {
        ...base.kafka,
        clientId: id,
        topics: { ...base.kafka.topics, offsets: `${id}.offsets`, deadLetter: `${id}.dlq`, control: `${id}.control`, controlAudit: `${id}.control.audit`, domainPrefix: id },
      },
      databases: { [databaseName]: prepared.dbConfig },
      changeTypes: { user: { initial: 'dual' }, address: { initial: 'dual' } },
      sinks: [sink],
    };
    const catalog = catalogOf(config);
    const dialect = createDialect(prepared.dbConfig);
    const rows = existingRows(options.events);
    await DATABASES[dialectName].fill(db, table, rows);
    await migrateChangelogs(db, dialect, [table]);
    // The publisher's own client logs only errors: kafkajs warns once about its default partitioner.
    const made = await publishEvents(options.events, rows, { kafka: createKafka(base.kafka, createRootLogger('error', pino.destination(2))), config, catalog, id });
    log(`${prepared.where}: ${rows} rows; ${options.events} events in ${id}.user and ${id}.address (${made.users} UserChanged, ${made.addresses} AddressChanged, ${made.inserts} of them new rows)`);

    const changeTypes = createChangeTypes(config, kafka, logger);
    const mapping = reverseMapping(transform, catalog);
    const topics = [...new Set(mapping.blocks.map((b) => catalog.definition(b.event)!.topic))];
    const legacySink = createLegacySink(config, catalog, sink, { mapping, database: databaseName, table, topics }, {
      kafka,
      runnerKafka: runnerKafka(kafka, runnerOptions(config), logger),
      encoder: new AvroEncoder(createSchemaRegistry(config.schemaRegistry)),
      db,
      changeTypes,
      logger: componentLogger(logger, `sink:${sink.name}`, 'export'),
    });
    running = { stop: async () => void (await Promise.all([legacySink.stop(), changeTypes.stop()])) };
    // What `beforeConsume` does, done before the clock starts (it finds both done).
    await registerDomainSchemas(config.schemaRegistry, catalog);
    await changeTypes.start();
    const started = process.hrtime.bigint();
    await legacySink.start();
    await untilHandled(legacySink, options.events);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const status = legacySink.status;
    await running.stop();
    running = undefined;

    const details = status.details as { written: { updated: number; inserted: number; deleted: number }; noops: number; stale: number };
    const written = details.written.updated + details.written.inserted + details.written.deleted;
    const [count] = await db(table).count({ n: '*' });
    if (Number(count?.n) !== rows + made.inserts || details.written.inserted !== made.inserts || status.deadLetters > 0) {
      log(`unexpected: ${Number(count?.n)} rows in ${table} (expected ${rows + made.inserts}), ${details.written.inserted} inserted, ${status.deadLetters} dead letters`);
    }
    return {
      seconds: Math.round(seconds * 1000) / 1000,
      events_per_s: Math.round(options.events / seconds),
      rows_written: written,
      rows_per_s: Math.round(written / seconds),
      noops: details.noops,
      transactions: status.transactions,
      stale: details.stale,
      dead_letters: status.deadLetters,
    };
  } finally {
    // A run that failed leaves its sink running: stopped before its topics and tables go.
    await running?.stop().catch(() => undefined);
    await deleteTopics(kafka, id).catch((error: Error) => log(`could not delete the topics of ${id}: ${error.message}`));
    await prepared?.cleanup().catch((error: Error) => log(`could not drop ${prepared!.where}: ${error.message}`));
  }
}

/** Waits until the sink has handled `events` inputs; a sink that makes no progress for two minutes fails the run. */
async function untilHandled(sink: ReturnType<typeof createLegacySink>, events: number): Promise<void> {
  let last = -1;
  let since = Date.now();
  for (;;) {
    const status = sink.status;
    const inputs = Number(status.details.inputs);
    if (inputs >= events) return;
    if (inputs !== last) {
      last = inputs;
      since = Date.now();
    } else if (Date.now() - since > 120_000) {
      throw new Error(`the sink handled ${inputs} of ${events} events and made no progress for 120 s (state ${status.state}, last error: ${(status.lastError ?? 'none').slice(0, 300)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * N events committed to the domain topics by a domain service, a few thousand a transaction: 60%
 * UserChanged (a subset of its fields), 40% AddressChanged, over the rows 1..`rows` at random, with
 * commit times rising with the event's place; 3% are UserChanged of new ids with every field (inserts).
 */
async function publishEvents(
  events: number,
  rows: number,
  c: { kafka: Kafka; config: BanyanConfig; catalog: EventCatalog; id: string },
): Promise<{ users: number; addresses: number; inserts: number }> {
  const { config, catalog } = c;
  const partitions = config.kafka.topics.partitions;
  const replicationFactor = config.kafka.topics.replicationFactor;
  await ensureTopics(c.kafka, ['UserChanged', 'AddressChanged'].map((e) => ({ topic: catalog.definition(e)!.topic, numPartitions: partitions, replicationFactor })));
  const rng = random(events);
  const inserts = Math.round(events * INSERT_SHARE);
  const users = Math.round(events * USER_SHARE);
  const kinds: Array<'insert' | 'user' | 'address'> = [
    ...Array.from({ length: inserts }, () => 'insert' as const),
    ...Array.from({ length: users - inserts }, () => 'user' as const),
    ...Array.from({ length: events - users }, () => 'address' as const),
  ];
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const publisher = await createPublisher({ kafka: c.kafka, schemaRegistry: config.schemaRegistry, catalog }, `${c.id}.publisher`);
  try {
    const base = Date.now();
    let nextNew = rows + 1;
    for (let from = 0; from < events; from += PUBLISH_CHUNK) {
      const chunk: DomainEvent[] = [];
      for (let i = from; i < Math.min(from + PUBLISH_CHUNK, events); i++) {
        const kind = kinds[i]!;
        const id = kind === 'insert' ? nextNew++ : 1 + Math.floor(rng() * rows);
        const fields = kind === 'insert' ? ['firstName', 'lastName', 'email'] : pick(rng, kind === 'user' ? USER_CHANGES : ADDRESS_CHANGES);
        const data = Object.fromEntries(fields.map((f) => [f, value(f, id, i)]));
        chunk.push(serviceEvent(kind === 'address' ? 'AddressChanged' : 'UserChanged', id, data, base + i, i));
      }
      await publisher.publish(chunk);
    }
  } finally {
    await publisher.close();
  }
  return { users, addresses: events - users, inserts };
}

/** Every topic the run made (its names all start with the run id), and its consumer group. */
async function deleteTopics(kafka: Kafka, id: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const made = (await admin.listTopics()).filter((t) => t.startsWith(`${id}.`));
    if (made.length) await admin.deleteTopics({ topics: made });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`${id}.`));
    if (groups.length) await admin.deleteGroups(groups).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}
