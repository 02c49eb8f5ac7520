import type { Knex } from 'knex';
import { createKnex } from '../src/clients/database';
import { changelogSourceSchema, type BanyanConfig } from '../src/config';
import { createDialect, parseTableName } from '../src/dialects';
import { migrateChangelogs } from '../src/import/changelog/migrate';
import { ChangelogSource } from '../src/import/changelog/source';
import { AvroDecoder, AvroEncoder } from '../src/runtime/avro';
import { readerType } from '../src/runtime/avro-logical';
import { createChangeTypes } from '../src/runtime/change-types';
import { createKafka } from '../src/runtime/kafka';
import { KafkaOffsetStore } from '../src/runtime/offsets';
import { createRootLogger } from '../src/runtime/logger';
import { createSchemaRegistry } from '../src/runtime/registry';
import { createSourceRunner, runnerKafka, runnerOptions } from '../src/runtime/source-runner';
import { buildMapping } from '../src/transforms/mappings';
import { catalogOf, servedTransform } from '../src/transforms/module';
import { TransformRunner } from '../src/transforms/runner';
import { registerDomainSchemas } from '../src/domain';
import { median, type BenchResult } from './report';

/**
 * N legacy change records of a `users` table (user and address columns in one row) are made by
 * the real changelog source into a fresh input topic (not timed): inserts, then updates of user
 * columns only, of address columns only, and of both, over overlapping id ranges, so some users
 * change several times. Then the transform runner (the config's legacy-users mapping, banyan.yaml's
 * declarative block by default, the lifecycle gate, transactions on) is timed turning all of them into domain
 * events, committed.
 */
export interface TransformBenchOptions {
  config: BanyanConfig;
  configFile: string;
  /** A key of the config's databases, a PostgreSQL one (the input is made by its changelog). */
  database?: string;
  events: number;
  warmups: number;
  runs: number;
}

export type TransformRun = {
  seconds: number;
  events_per_s: number;
  events_out: number;
  events_out_per_s: number;
  transactions: number;
  dead_letters: number;
};

export async function benchTransform(options: TransformBenchOptions, log: (line: string) => void): Promise<BenchResult> {
  const databases = Object.entries(options.config.databases).filter(([name, d]) => d.dialect === 'postgres' && (options.database === undefined || name === options.database));
  if (databases.length !== 1) throw new Error(`${options.configFile}: name one PostgreSQL database with --database (found ${databases.map(([n]) => n).join(', ') || 'none'})`);
  const [databaseName, dbConfig] = databases[0]!;
  const db = createKnex(dbConfig);
  try {
    const warmup: TransformRun[] = [];
    const runs: TransformRun[] = [];
    for (let i = 1; i <= options.warmups + options.runs; i++) {
      const label = i <= options.warmups ? `warm-up ${i}/${options.warmups}` : `run ${i - options.warmups}/${options.runs}`;
      const run = await runOnce(options, databaseName, db, (line) => log(`${label}: ${line}`));
      log(
        `${label}: ${options.events} change records in ${run.seconds.toFixed(2)} s = ${run.events_per_s.toLocaleString('en')} events/s in, ` +
          `${run.events_out_per_s.toLocaleString('en')} events/s out (${run.events_out} events, ${run.transactions} transactions)${i <= options.warmups ? ', not counted' : ''}`,
      );
      (i <= options.warmups ? warmup : runs).push(run);
    }
    const rate = Math.round(median(runs.map((r) => r.events_per_s)));
    log(`median of ${runs.length} run${runs.length === 1 ? '' : 's'}: ${rate.toLocaleString('en')} events/s (${runs.map((r) => r.events_per_s.toLocaleString('en')).join(' / ')})`);
    return {
      bench: 'transform',
      events: options.events,
      events_per_s: rate,
      events_out_per_s: Math.round(median(runs.map((r) => r.events_out_per_s))),
      median_seconds: Math.round(median(runs.map((r) => r.seconds)) * 1000) / 1000,
      dead_letters: runs.reduce((n, r) => n + r.dead_letters, 0),
      runs,
      warmup,
    };
  } finally {
    await db.destroy();
  }
}

async function runOnce(options: TransformBenchOptions, databaseName: string, db: Knex, log: (line: string) => void): Promise<TransformRun> {
  const id = `bench_tr_${Date.now().toString(36)}`;
  const table = `public.${id}`;
  const input = `${id}.in`;
  const base = options.config;
  // The config's own legacy-users mapping (banyan.yaml's: the reference example), on the bench's input.
  const mapping = base.transforms.find((t) => t.name === 'legacy-users');
  if (!mapping) throw new Error(`${options.configFile} has no transform named legacy-users (the bench runs its mapping)`);
  const transforms = [{ ...mapping, name: 'bench-users', from: input }];
  const config: BanyanConfig = {
    ...base,
    transforms,
    kafka: {
      ...base.kafka,
      clientId: id,
      topics: { ...base.kafka.topics, offsets: `${id}.offsets`, deadLetter: `${id}.dlq`, control: `${id}.control`, controlAudit: `${id}.control.audit`, domainPrefix: id },
    },
  };
  const dialect = createDialect(base.databases[databaseName]!);
  const logger = createRootLogger('warn');
  const kafka = createKafka(config.kafka, logger);
  try {
    await makeInput(options.events, { db, dialect, table, input, databaseName, config, logger }, log);

    const catalog = catalogOf(config);
    await registerDomainSchemas(config.schemaRegistry, catalog);
    const changeTypes = createChangeTypes(config, kafka, logger);
    await changeTypes.start();
    const runOptions = { ...runnerOptions(config), name: 'bench-users', topics: [input] };
    const runner = new TransformRunner(
      servedTransform(buildMapping(transforms[0]!, catalog), catalog, (type) => changeTypes.stateOf(type), () => undefined),
      kafka,
      runnerKafka(kafka, runOptions, logger),
      new AvroEncoder(createSchemaRegistry(config.schemaRegistry)),
      new AvroDecoder(config.schemaRegistry, readerType),
      new KafkaOffsetStore(kafka, config.kafka.topics.offsets, config.kafka.topics.replicationFactor),
      logger,
      runOptions,
    );
    log(`transforming ${options.events} change records of ${input}`);
    const started = process.hrtime.bigint();
    await runner.start();
    while (Number(runner.status.details.inputs) < options.events) await new Promise((resolve) => setTimeout(resolve, 5));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const { records, transactions, deadLetters } = runner.status;
    await runner.stop();
    await changeTypes.stop();
    return {
      seconds: Math.round(seconds * 1000) / 1000,
      events_per_s: Math.round(options.events / seconds),
      events_out: records,
      events_out_per_s: Math.round(records / seconds),
      transactions,
      dead_letters: deadLetters,
    };
  } finally {
    const admin = kafka.admin();
    await admin.connect();
    const made = (await admin.listTopics()).filter((t) => t.startsWith(id));
    if (made.length) await admin.deleteTopics({ topics: made }).catch((error: Error) => log(`could not delete topics ${made.join(', ')}: ${error.message}`));
    await admin.disconnect();
    for (const statement of dialect.uninstallChangelog(parseTableName(table))) await db.raw(statement).catch(() => undefined);
    await db.raw(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  }
}

/** N changelog rows of a users table, drained into `input` by the real source (not timed). */
async function makeInput(
  events: number,
  c: { db: Knex; dialect: ReturnType<typeof createDialect>; table: string; input: string; databaseName: string; config: BanyanConfig; logger: ReturnType<typeof createRootLogger> },
  log: (line: string) => void,
): Promise<void> {
  const { db, table } = c;
  await db.raw(`CREATE TABLE ${table} (
    id integer PRIMARY KEY, first_name varchar(50), last_name varchar(50) NOT NULL, email varchar(120),
    street varchar(100), city varchar(60), postal_code varchar(10), state varchar(30), country char(2),
    credit_limit numeric(12,2), updated_at timestamp(3) NOT NULL DEFAULT now())`);
  await migrateChangelogs(db, c.dialect, [table]);
  // 40% inserts (two events each), 25% user-only updates, 25% address-only, 10% both; the update
  // ranges overlap, so a quarter of the users change three or four times.
  const inserts = Math.round(events * 0.4);
  const userOnly = Math.round(events * 0.25);
  const addressOnly = Math.round(events * 0.25);
  const both = events - inserts - userOnly - addressOnly;
  log(`making ${events} changes in ${table}: ${inserts} inserts, ${userOnly} user-only, ${addressOnly} address-only and ${both} user-and-address updates`);
  for (let from = 1; from <= inserts; from += 20_000) {
    await db.raw(
      `INSERT INTO ${table} (id, first_name, last_name, email, street, city, postal_code, state, country, credit_limit)
       SELECT i, 'First' || i, 'Last' || i, 'user' || i || '@example.com', i || ' Main Street', 'City ' || (i % 100),
              lpad((i % 9999)::text, 4, '0'), 'ST', 'CH', (i % 100000) / 100.0
         FROM generate_series(${from}, ${Math.min(from + 19_999, inserts)}) AS i`,
    );
  }
  await db.raw(`UPDATE ${table} SET email = 'changed' || id || '@example.com' WHERE id <= ?`, [userOnly]);
  await db.raw(`UPDATE ${table} SET city = 'Moved ' || (id % 50) WHERE id > ? AND id <= ?`, [inserts - addressOnly, inserts]);
  await db.raw(`UPDATE ${table} SET last_name = 'Renamed' || id, street = id || ' Side Street' WHERE id <= ?`, [both]);
  await db.raw(`VACUUM ANALYZE ${table}`);

  const sourceConfig = changelogSourceSchema.parse({ name: 'bench-users-source', type: 'changelog', database: c.databaseName, table, topic: c.input, snapshot: false });
  const source = new ChangelogSource(sourceConfig, { db, dialect: c.dialect, databaseName: c.databaseName, originTag: c.config.originTag, logger: c.logger });
  const runner = createSourceRunner(source, c.config, c.logger);
  await runner.start();
  while (runner.status.records + runner.status.deadLetters < events) await new Promise((resolve) => setTimeout(resolve, 20));
  await runner.stop();
  log(`${runner.status.records} change records in ${c.input}`);
}
