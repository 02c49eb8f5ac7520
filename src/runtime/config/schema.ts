import { z } from 'zod';

/**
 * The one configuration schema. Descriptions, defaults and examples live here; the TypeScript type
 * is inferred. Secrets never appear literally in the YAML: fields listed in SECRET_FIELDS must be
 * `${ENV_VAR}` references (checked by the loader before interpolation).
 */
export const SECRET_FIELDS = ['password', 'clientSecret', 'privateKey', 'securityToken'] as const;

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();
const bool = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);
const identifier = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'use letters, digits, "_", "." and "-" only, starting with a letter or "_"');

const brokerList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((b) => b.trim()).filter(Boolean))
  .pipe(z.array(z.string().regex(/^[^:\s]+:\d+$/, 'a broker is host:port')).min(1, 'at least one broker'))
  .describe('Kafka bootstrap brokers, as a list or a comma-separated string. Example: "127.0.0.1:19092"');

export const kafkaSchema = z.strictObject({
  brokers: brokerList,
  clientId: z.string().default('banyan').describe('Kafka client id; also the prefix of transactional ids'),
  ssl: bool.default(false),
  sasl: z
    .strictObject({
      mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
      username: z.string(),
      password: z.string(),
    })
    .optional(),
  maxMessageBytes: positiveInt
    .default(1_000_000)
    .describe('a record larger than this goes to the dead-letter topic; match the broker’s message.max.bytes'),
  maxRequestBytes: positiveInt.default(768_000).describe('one transaction’s records are sent in requests of about this size'),
  producerThread: bool
    .default(true)
    .describe('encode and send to Kafka in a worker thread, so reading the next batch and producing use two cores'),
  encodedProduce: bool
    .default(true)
    .describe('write record batches with Banyan’s own encoder (fast); false sends through kafkajs’s own producer (see docs/performance.md)'),
  topics: z
    .strictObject({
      offsets: z.string().default('banyan.offsets').describe('compacted topic holding source positions'),
      deadLetter: z.string().default('banyan.dlq').describe('where records that cannot be processed go, with the reason in headers'),
      partitions: positiveInt.default(3).describe('partitions of the data topics Banyan creates'),
      replicationFactor: positiveInt.default(1),
    })
    .prefault({}),
});

export const schemaRegistrySchema = z.strictObject({
  url: z.url().describe('Confluent-compatible API base URL. Example: http://127.0.0.1:18081/apis/ccompat/v7'),
  username: z.string().optional(),
  password: z.string().optional(),
});

export const DIALECTS = ['mssql', 'postgres', 'mysql'] as const;
export type DialectName = (typeof DIALECTS)[number];

export const databaseSchema = z.strictObject({
  dialect: z
    .enum([...DIALECTS, 'mariadb'])
    .transform((d): DialectName => (d === 'mariadb' ? 'mysql' : d))
    .describe('mssql (SQL Server), postgres, or mysql (MySQL and MariaDB)'),
  host: z.string().default('127.0.0.1'),
  port: port.optional().describe('defaults to the dialect’s usual port'),
  database: z.string().min(1),
  user: z.string().min(1),
  password: z.string().optional(),
  ssl: bool.default(false),
  pool: z.strictObject({ min: z.coerce.number().int().min(0).default(0), max: positiveInt.default(4) }).prefault({}),
  gapWaitMs: positiveInt
    .default(2000)
    .describe('MySQL/MariaDB: how long a gap in the changelog sequence (an uncommitted transaction) is waited for before the poller passes it'),
  gapRetainMs: positiveInt
    .default(600_000)
    .describe('MySQL/MariaDB: how long a passed gap is still re-checked, so a very late commit is delivered, not lost'),
});

export const salesforceSchema = z.strictObject({
  loginUrl: z.url().describe('https://login.salesforce.com, https://test.salesforce.com, or the emulator'),
  apiVersion: z.string().regex(/^\d+\.\d$/, 'like "62.0"').default('62.0'),
  username: z.string().optional(),
  password: z.string().optional().describe('password followed by the security token, if the org requires one'),
  clientId: z.string(),
  clientSecret: z.string(),
  callOptionsClient: z
    .string()
    .optional()
    .describe('sent as Sforce-Call-Options client=…; CDC reports it as changeOrigin, which marks echoes. Defaults to originTag'),
});

const sourceCommon = {
  name: identifier.describe('unique name of this source; keys its offsets and names it in logs'),
  topic: z.string().optional().describe('target topic; defaults per source type'),
  pollIntervalMs: positiveInt.default(500),
  batchSize: positiveInt.default(5000),
};

export const changelogSourceSchema = z.strictObject({
  ...sourceCommon,
  type: z.literal('changelog'),
  database: identifier.describe('a key of `databases`'),
  table: z.string().min(1).describe('the legacy table, optionally schema-qualified. Example: dbo.Users'),
  snapshot: bool.default(true).describe('emit the rows that already exist once, before the changes'),
  retentionHours: z.coerce.number().positive().default(24).describe('changelog rows already in Kafka are deleted after this long'),
  pruneIntervalMs: positiveInt.default(60_000).describe('how often committed changelog rows are pruned'),
  tombstonesOnDelete: bool
    .default(true)
    .describe('follow each delete with a tombstone (same key, null value), so a compacted topic forgets the key (Debezium’s tombstones.on.delete)'),
  invalidDates: z
    .enum(['dead-letter', 'null'])
    .default('dead-letter')
    .describe('a date/timestamp that is no calendar date (MySQL zero or invalid date, PostgreSQL infinity): dead-letter the row, or write null in a nullable column and name it in the banyan.nulled header (docs/import.md)'),
  autoMigrate: bool
    .default(false)
    .describe('when the table’s columns no longer match its changelog triggers (ALTER TABLE … ADD COLUMN), recreate them at once, as `banyan migrate` would, instead of only reporting it'),
  schemaCheckIntervalMs: positiveInt
    .default(10_000)
    .describe('while no changes arrive, how often the table is compared with its changelog triggers (every batch of changes is compared anyway)'),
});

export const salesforceCdcSourceSchema = z.strictObject({
  ...sourceCommon,
  type: z.literal('salesforce-cdc'),
  object: z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'an SObject API name such as Contact'),
  replayFrom: z
    .union([z.literal(-1), z.literal(-2)])
    .default(-1)
    .describe('with no stored replayId: -1 = changes from now on (Salesforce’s default), -2 = every event still retained (72 h)'),
  replayExpiredPolicy: z
    .enum(['reread', 'latest', 'fail'])
    .default('reread')
    .describe(
      'the stored replayId is no longer retained: reread = re-read records modified since the last commit time (bounded) as reconciled, then go on; latest = go on with new events only; fail = stop until an operator decides. Always logged at error level and counted',
    ),
  rereadMaxRecords: positiveInt.default(50_000).describe('most records one re-read (expired replayId, GAP_OVERFLOW) may emit; beyond it the re-read is cut short, loudly'),
  rereadLookbackMs: z.coerce.number().int().min(0).default(60_000).describe('re-reads start this long before the last known commit time'),
  gapWindowMs: z.coerce.number().int().min(0).default(1_000).describe('GAP_* events: how long record ids are collected before they are read'),
  reconcileBatchSize: z.coerce.number().int().min(1).max(200).default(200).describe('ids per `WHERE Id IN (…)` query when reconciling GAP_* events'),
  queueCapacity: z.coerce.number().int().min(2).default(10_000).describe('events buffered between polls; when full, the stream pauses and resumes from the last buffered replayId'),
  subscribeTimeoutMs: positiveInt.default(30_000).describe('how long a subscription may take to be acknowledged'),
});

export const sourceSchema = z.discriminatedUnion('type', [changelogSourceSchema, salesforceCdcSourceSchema]);

export const configSchema = z.strictObject({
    kafka: kafkaSchema,
    schemaRegistry: schemaRegistrySchema,
    databases: z.record(identifier, databaseSchema).default({}),
    salesforce: salesforceSchema.optional(),
    sources: z.array(sourceSchema).default([]),
    originTag: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/)
      .default('banyan')
      .describe('the tag Banyan’s own writes carry at the target (session value, Salesforce client id); records that carry it are echoes'),
    http: z
      .strictObject({
        host: z.string().default('127.0.0.1'),
        port: z.coerce.number().int().min(0).max(65535).default(8086).describe('0 picks a free port (logged at start)'),
      })
      .prefault({})
      .describe('the status server of `banyan run`: /healthz, /readyz, /metrics, /status and a status page'),
    log: z
      .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .prefault({}),
  })
  // One name for Banyan's own writes everywhere, unless Salesforce's must differ.
  .transform((config) => ({
    ...config,
    salesforce: config.salesforce && {
      ...config.salesforce,
      callOptionsClient: config.salesforce.callOptionsClient ?? config.originTag,
    },
  }));

/**
 * Checks between sections (a source naming a database that is not configured…). Runs on the raw
 * input even when other fields are wrong, so one run reports every mistake.
 */
export function crossReferenceIssues(raw: unknown): Array<{ path: Array<string | number>; message: string }> {
  const issues: Array<{ path: Array<string | number>; message: string }> = [];
  const root = (raw ?? {}) as { databases?: unknown; sources?: unknown; salesforce?: unknown };
  const databases = root.databases && typeof root.databases === 'object' ? Object.keys(root.databases) : [];
  const sources = Array.isArray(root.sources) ? (root.sources as Array<Record<string, unknown>>) : [];
  const seen = new Set<unknown>();
  sources.forEach((source, i) => {
    if (!source || typeof source !== 'object') return;
    if (source.name !== undefined && seen.has(source.name)) {
      issues.push({ path: ['sources', i, 'name'], message: `duplicate source name "${String(source.name)}"` });
    }
    seen.add(source.name);
    if (source.type === 'changelog' && typeof source.database === 'string' && !databases.includes(source.database)) {
      issues.push({
        path: ['sources', i, 'database'],
        message: `no database named "${source.database}" (configured: ${databases.join(', ') || 'none'})`,
      });
    }
    if (source.type === 'salesforce-cdc' && !root.salesforce) {
      issues.push({ path: ['sources', i], message: 'a salesforce-cdc source needs the `salesforce` section' });
    }
  });
  return issues;
}

export type BanyanConfig = z.infer<typeof configSchema>;
export type DatabaseConfig = BanyanConfig['databases'][string];
export type SourceConfig = BanyanConfig['sources'][number];
export type ChangelogSourceConfig = Extract<SourceConfig, { type: 'changelog' }>;
export type SalesforceCdcSourceConfig = Extract<SourceConfig, { type: 'salesforce-cdc' }>;
export type SalesforceConfig = NonNullable<BanyanConfig['salesforce']>;
