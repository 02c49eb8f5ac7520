import type { Knex } from 'knex';
import { createKnex } from '../src/clients/database';
import { createDialect } from '../src/dialects';
import { migrateChangelogs } from '../src/import/changelog/migrate';
import { parseTableName } from '../src/dialects';
import { ChangelogSource } from '../src/import/changelog/source';
import { changelogSourceSchema, type BanyanConfig, type ChangelogSourceConfig, type DatabaseConfig } from '../src/config';
import { createKafka } from '../src/runtime/kafka';
import { createRootLogger } from '../src/runtime/logger';
import { createSourceRunner } from '../src/runtime/source-runner';
import { median, type BenchResult } from './report';

/**
 * Makes N changes in a legacy table of a dozen columns (inserts, then updates and deletes of some
 * of those rows; not timed), then times the changelog poller draining all of them into Kafka,
 * committed, through the real registry.
 */
const DATABASES = {
  postgres: {
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

/** The config dialect each bench dialect runs against (MariaDB is the `mysql` dialect). */
const CONFIG_DIALECT: Record<ImportDialect, DatabaseConfig['dialect']> = { postgres: 'postgres', mariadb: 'mysql' };

export interface ImportOptions {
  /** The product's config: its kafka, schemaRegistry and the chosen database are used. */
  config: BanyanConfig;
  /** Where the config came from, for messages. */
  configFile: string;
  dialect?: ImportDialect;
  /** A key of the config's `databases`; by default the only one of the dialect. */
  database?: string;
  rows: number;
  warmups: number;
  runs: number;
}

/** One run's figures. */
export type ImportRun = {
  seconds: number;
  rows_per_s: number;
  transactions: number;
  dead_letters: number;
};

/**
 * Runs `warmups` warm-up runs (printed, left out of the result), then `runs` timed ones, each on a
 * fresh table and fresh topics, and reports their median with every run. One run is not enough:
 * the first after a broker start meets a cold JIT, and runs vary by several percent.
 */
export async function benchImport(options: ImportOptions, log: (line: string) => void): Promise<BenchResult> {
  const { databaseName, dbConfig, dialectName } = chooseDatabase(options);
  const spec = DATABASES[dialectName];
  const db = createKnex(dbConfig);
  const dialect = createDialect(dbConfig);
  log(`${dialectName} database "${databaseName}" of ${options.configFile}: ${dbConfig.host}${dbConfig.port ? `:${dbConfig.port}` : ''}/${dbConfig.database} as ${dbConfig.user}`);
  try {
    const warmup: ImportRun[] = [];
    const runs: ImportRun[] = [];
    for (let i = 1; i <= options.warmups + options.runs; i++) {
      const label = i <= options.warmups ? `warm-up ${i}/${options.warmups}` : `run ${i - options.warmups}/${options.runs}`;
      const run = await runOnce({ config: options.config, rows: options.rows, spec, db, dialect, databaseName, dbConfig, dialectName }, (line) => log(`${label}: ${line}`));
      log(
        `${label}: ${options.rows} changes in ${run.seconds.toFixed(2)} s = ${run.rows_per_s.toLocaleString('en')} rows/s` +
          ` (${run.transactions} transactions, ${run.dead_letters} dead letters)${i <= options.warmups ? ', not counted' : ''}`,
      );
      (i <= options.warmups ? warmup : runs).push(run);
    }
    const rate = Math.round(median(runs.map((r) => r.rows_per_s)));
    const spread = runs.length > 1 ? Math.max(...runs.map((r) => r.rows_per_s)) - Math.min(...runs.map((r) => r.rows_per_s)) : 0;
    log(`median of ${runs.length} run${runs.length === 1 ? '' : 's'}: ${rate.toLocaleString('en')} rows/s (${runs.map((r) => r.rows_per_s.toLocaleString('en')).join(' / ')})`);
    return {
      bench: 'import',
      dialect: dialectName,
      database: databaseName,
      rows: options.rows,
      median_rows_per_s: rate,
      median_seconds: round(median(runs.map((r) => r.seconds)), 3),
      spread_pct: round((100 * spread) / rate, 1),
      dead_letters: runs.reduce((n, r) => n + r.dead_letters, 0),
      runs,
      warmup,
    };
  } finally {
    await db.destroy();
  }
}

/** The database the bench writes to: named by --database, or the config's only one of the dialect. */
function chooseDatabase(options: ImportOptions): { databaseName: string; dbConfig: DatabaseConfig; dialectName: ImportDialect } {
  const databases = Object.entries(options.config.databases);
  if (options.database !== undefined) {
    const dbConfig = options.config.databases[options.database];
    if (!dbConfig) {
      throw new Error(`${options.configFile} has no database "${options.database}" (configured: ${databases.map(([n]) => n).join(', ') || 'none'})`);
    }
    const fits = (Object.keys(CONFIG_DIALECT) as ImportDialect[]).filter((d) => CONFIG_DIALECT[d] === dbConfig.dialect);
    const dialectName = options.dialect ?? fits[0];
    if (!dialectName) throw new Error(`database "${options.database}" of ${options.configFile} is ${dbConfig.dialect}; the bench runs on postgres and mariadb`);
    if (!fits.includes(dialectName)) {
      throw new Error(`database "${options.database}" of ${options.configFile} is ${dbConfig.dialect}, not ${CONFIG_DIALECT[dialectName]} as --dialect ${dialectName} needs`);
    }
    return { databaseName: options.database, dbConfig, dialectName };
  }
  const dialectName = options.dialect ?? 'postgres';
  const candidates = databases.filter(([, d]) => d.dialect === CONFIG_DIALECT[dialectName]);
  if (candidates.length !== 1) {
    throw new Error(
      `${options.configFile} has ${candidates.length === 0 ? 'no' : candidates.length} ${CONFIG_DIALECT[dialectName]} database${candidates.length === 1 ? '' : 's'}` +
        `${candidates.length > 1 ? ` (${candidates.map(([n]) => n).join(', ')})` : ''}: name one with --database`,
    );
  }
  const [databaseName, dbConfig] = candidates[0]!;
  return { databaseName, dbConfig, dialectName };
}

interface RunContext {
  config: BanyanConfig;
  rows: number;
  spec: (typeof DATABASES)[ImportDialect];
  db: Knex;
  dialect: ReturnType<typeof createDialect>;
  databaseName: string;
  dbConfig: DatabaseConfig;
  dialectName: ImportDialect;
}

async function runOnce(context: RunContext, log: (line: string) => void): Promise<ImportRun> {
  const { spec, db, dialect, rows } = context;
  const name = `bench_${Date.now().toString(36)}`;
  const table = spec.table(name);
  const config = benchConfig(context, name, table);
  try {
    await db.raw(spec.ddl(table));
    await migrateChangelogs(db, dialect, [table]);
    // 70% inserts, 20% updates, 10% deletes.
    const inserts = Math.round(rows * 0.7);
    const updates = Math.round(rows * 0.2);
    const deletes = rows - inserts - updates;
    log(`making ${rows} changes in table ${table} (${inserts} inserts, ${updates} updates, ${deletes} deletes)`);
    for (let from = 1; from <= inserts; from += 20_000) await db.raw(spec.insert(table, from, Math.min(from + 19_999, inserts)));
    await db.raw(`UPDATE ${table} SET balance = balance + 1, city = 'Moved' WHERE id <= ?`, [updates]);
    await db.raw(`DELETE FROM ${table} WHERE id > ? AND id <= ?`, [inserts - deletes, inserts]);
    const changelog = dialect.changelogTable(parseTableName(table));
    const made = await countRows(db, [changelog.schema, changelog.name].filter(Boolean).join('.'));
    if (made !== rows) throw new Error(`expected ${rows} changelog rows, found ${made}`);
    for (const statement of spec.settle([table, [changelog.schema, changelog.name].filter(Boolean).join('.')])) await db.raw(statement);

    const logger = createRootLogger('warn');
    const sourceConfig = config.sources[0] as ChangelogSourceConfig;
    const source = new ChangelogSource(sourceConfig, {
      db,
      dialect,
      databaseName: context.databaseName,
      originTag: config.originTag,
      logger,
    });
    const runner = createSourceRunner(source, config, logger);
    log(`draining ${rows} changes into Kafka topic ${name}`);
    const started = process.hrtime.bigint();
    await runner.start();
    log(`runner started in ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(2)} s`);
    // Done when every change is committed: each delete also writes its tombstone (tombstonesOnDelete).
    const records = rows + (sourceConfig.tombstonesOnDelete ? deletes : 0);
    while (runner.status.records + runner.status.deadLetters < records) await new Promise((r) => setTimeout(r, 5));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const { transactions, deadLetters } = runner.status;
    await runner.stop();
    return { seconds: round(seconds, 3), rows_per_s: Math.round(rows / seconds), transactions, dead_letters: deadLetters };
  } finally {
    // Its topics go too: hundreds of leftover partitions on the local broker slowed later runs
    // (24–29k rows/s against 29–34k on a fresh broker).
    await deleteTopics(config.kafka, [name, config.kafka.topics.offsets, config.kafka.topics.deadLetter]).catch((error: Error) =>
      log(`could not delete topics ${name}, ${config.kafka.topics.offsets}, ${config.kafka.topics.deadLetter}: ${error.message}`),
    );
    for (const statement of dialect.uninstallChangelog(parseTableName(table))) await db.raw(statement).catch(() => undefined);
    await db.raw(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  }
}

/** The product's config with one changelog source on the bench table and topics of its own. */
function benchConfig(context: RunContext, name: string, table: string): BanyanConfig {
  const base = context.config;
  const producerThread = process.env.BANYAN_PRODUCER_THREAD;
  return {
    ...base,
    kafka: {
      ...base.kafka,
      clientId: name,
      topics: { ...base.kafka.topics, offsets: `${name}.offsets`, deadLetter: `${name}.dlq` },
      ...(producerThread ? { producerThread: producerThread !== 'false' } : {}),
    },
    databases: { [context.databaseName]: context.dbConfig },
    sources: [
      changelogSourceSchema.parse({ name: 'bench', type: 'changelog', database: context.databaseName, table, topic: name, snapshot: false }),
    ],
  };
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
    // Only those it made: a run that failed early created none.
    const existing = new Set(await admin.listTopics());
    const made = topics.filter((t) => existing.has(t));
    if (made.length > 0) await admin.deleteTopics({ topics: made });
  } finally {
    await admin.disconnect();
  }
}
