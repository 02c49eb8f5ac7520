import { z } from 'zod';
import type { DatabaseSettings } from '../../clients/database';
import type { SalesforceSettings } from '../../clients/salesforce/session';
import { DIALECTS, type DialectName, type DialectSettings } from '../../dialects';
import { bool, identifier, port, positiveInt } from './primitives';

/**
 * The runtime's sections of the configuration: Kafka, the registry, the databases and Salesforce
 * that connectors reach, the status server and logging. Descriptions, defaults and examples live
 * here; the TypeScript types are inferred. Each connector's own section sits next to the
 * connector; the whole file's schema is put together in src/config.
 */
const brokerList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((b) => b.trim()).filter(Boolean))
  .pipe(z.array(z.string().regex(/^[^:\s]+:\d+$/, 'a broker is host:port')).min(1, 'at least one broker'))
  .describe('Kafka bootstrap brokers, as a list or a comma-separated string. Example: "127.0.0.1:19092"');

/** The lifecycle of a change type, in order (docs/lifecycle.md). */
export const changeTypeState = z
  .enum(['legacy-owned', 'dual', 'new-owned', 'decommissioned'])
  .describe('legacy-owned → dual → new-owned → decommissioned');

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
      control: z
        .string()
        .default('banyan.control')
        .describe('compacted topic holding each change type’s lifecycle state (docs/lifecycle.md); every instance follows it'),
      controlAudit: z
        .string()
        .default('banyan.control.audit')
        .describe('every change-type transition ever made (who, when, from, to, why); never compacted, kept forever'),
      domainPrefix: identifier
        .default('domain')
        .describe('the prefix of the domain topics: domain.user, domain.address… (another prefix keeps several bridges apart on one cluster)'),
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

export const databaseSchema = z.strictObject({
  dialect: z
    .enum([...DIALECTS, 'mariadb'])
    .transform((d): DialectName => (d === 'mariadb' ? 'mysql' : d))
    .describe('mssql (SQL Server), postgres, or mysql (MySQL and MariaDB)'),
  host: z.string().default('127.0.0.1'),
  port: port.optional().describe('defaults to the dialect’s usual port'),
  database: z.string().min(1),
  user: z.string().min(1),
  originUser: z
    .string()
    .min(1)
    .optional()
    .describe(
      'the writer whose origin tag marks Banyan’s own writes, as the changelog trigger records it: PostgreSQL session_user, MySQL/MariaDB USER() (name, name@host or \'name\'@\'host\', wildcards % and _), SQL Server ORIGINAL_LOGIN() (e.g. CORP\\svc_banyan). A tag written by anyone else is forged: a normal change, counted and logged. Default: user',
    ),
  password: z.string().optional(),
  ssl: bool.default(false),
  pool: z.strictObject({ min: z.coerce.number().int().min(0).default(0), max: positiveInt.default(4) }).prefault({}),
  gapWaitMs: positiveInt
    .default(2000)
    .describe('MySQL/MariaDB: how long a gap in the changelog sequence (an uncommitted transaction) is waited for before the poller passes it'),
  gapRetainMs: positiveInt
    .default(600_000)
    .describe('MySQL/MariaDB: how long a passed gap is still re-checked, so a very late commit is delivered, not lost'),
  timeouts: z
    .strictObject({
      lockMs: positiveInt
        .default(10_000)
        .describe('banyan migrate: how long each table’s install waits for its schema lock (SQL Server LOCK_TIMEOUT, PostgreSQL lock_timeout, MySQL/MariaDB lock_wait_timeout, rounded up to seconds) before it fails, naming the table'),
      requestMs: positiveInt.default(30_000).describe('SQL Server: the request timeout of a statement of no kind below (tedious’s default is 15 s)'),
      readMs: positiveInt.default(30_000).describe('SQL Server: reading one batch of changes'),
      snapshotPageMs: positiveInt.default(300_000).describe('SQL Server: reading one snapshot page'),
      pruneMs: positiveInt.default(120_000).describe('SQL Server: one prune statement'),
      migrateMs: positiveInt.default(600_000).describe('SQL Server: one statement of banyan migrate (its locks are bounded by lockMs)'),
    })
    .prefault({})
    .describe('how long statements may take; see docs/dialect-mssql.md, Timeouts'),
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

export const runtimeSections = {
  kafka: kafkaSchema,
  schemaRegistry: schemaRegistrySchema,
  databases: z.record(identifier, databaseSchema).default({}),
  salesforce: salesforceSchema.optional(),
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
  changeTypes: z
    .record(
      identifier,
      z.preprocess(
        (v) => v ?? {},
        z.strictObject({
          initial: changeTypeState
            .default('legacy-owned')
            .describe('its state until a transition is recorded in the control topic (`banyan changetypes set`)'),
          description: z.string().optional(),
        }),
      ),
    )
    .default({ user: { initial: 'legacy-owned' }, address: { initial: 'legacy-owned' } })
    .describe('the change types and their lifecycle (docs/lifecycle.md); the live state is in kafka.topics.control. Default: user and address'),
  log: z
    .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
    .prefault({}),
};

/** The `salesforce` section; `callOptionsClient` is filled from `originTag` when not written. */
export type SalesforceConfig = z.infer<typeof salesforceSchema> & { callOptionsClient: string };

/** The configuration as the runtime sees it: everything but the stages' own sections. */
export type RuntimeConfig = Omit<z.infer<z.ZodObject<typeof runtimeSections>>, 'salesforce'> & { salesforce?: SalesforceConfig | undefined };
export type KafkaConfig = RuntimeConfig['kafka'];
export type DatabaseConfig = z.infer<typeof databaseSchema>;

// The clients and dialects read these sections through interfaces of their own (so they do not
// depend on the runtime); these lines fail to compile when the schema stops satisfying them.
type Satisfies<T extends U, U> = T;
export type DatabaseConfigIsReadable = Satisfies<DatabaseConfig, DatabaseSettings & DialectSettings>;
export type SalesforceConfigIsReadable = Satisfies<SalesforceConfig, SalesforceSettings>;
