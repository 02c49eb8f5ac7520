import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Connection } from 'jsforce';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { createSalesforceCdcSource, type SalesforceCdcSource } from '../../src/import/salesforce-cdc';
import type { CdcOptions } from '../../src/import/salesforce-cdc/config';
import { AvroDecoder, AvroEncoder } from '../../src/runtime/avro';
import { parseConfig, type BanyanConfig, type SalesforceCdcSourceConfig } from '../../src/runtime/config';
import { createKafka } from '../../src/runtime/kafka';
import { createRootLogger } from '../../src/runtime/logger';
import { KafkaOffsetStore } from '../../src/runtime/offsets';
import { createSchemaRegistry } from '../../src/runtime/registry';
import { runnerOptions, SourceRunner } from '../../src/runtime/source-runner';
import { startEmulator, type Emulator } from '../../src/salesforce-emulator/index.js';
import { freshName, loginToEmulator, readTopic, withAdmin } from '../helpers';

/**
 * The Salesforce CDC source against the emulator, through a real SourceRunner, Kafka transactions
 * and the registry: what it writes is read back read_committed and decoded.
 */

interface Change {
  op: string;
  entity: string;
  recordId: string;
  fields: Record<string, unknown>;
  changedFields: string[];
  nulledFields: string[];
  header: { changeType: string; changeOrigin: string | null; commitTimestamp: bigint | null };
  replayId: bigint | null;
  echo: boolean;
  reconciled: boolean;
}

interface LogLine {
  level: number;
  event?: string;
  [key: string]: unknown;
}

let emulator: Emulator | undefined;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  await emulator?.close();
  emulator = undefined;
});

async function freshEmulator(): Promise<Emulator> {
  emulator = await startEmulator({ port: 0, cometd: { longPollTimeoutMs: 1000 } });
  // Secrets reach the config only as ${ENV} references, as in a user's file.
  process.env.SFCDC_TEST_PASSWORD = emulator.credentials.password;
  process.env.SFCDC_TEST_CLIENT_SECRET = emulator.credentials.clientSecret;
  return emulator;
}

function cdcYaml(em: Emulator, opts: { topic: string; batchSize?: number; pollIntervalMs?: number }): string {
  return `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${freshName('sfcdc')}
  topics: { offsets: ${freshName('offsets')}, deadLetter: ${freshName('dlq')}, partitions: 3 }
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
log: { level: warn }
salesforce:
  loginUrl: ${em.url}
  username: ${em.credentials.username}
  password: \${SFCDC_TEST_PASSWORD}
  clientId: ${em.credentials.clientId}
  clientSecret: \${SFCDC_TEST_CLIENT_SECRET}

sources:
  - name: contacts
    type: salesforce-cdc
    object: Contact
    topic: ${opts.topic}
    batchSize: ${opts.batchSize ?? 100}
    pollIntervalMs: ${opts.pollIntervalMs ?? 50}
`;
}

function sourceConfig(config: BanyanConfig): SalesforceCdcSourceConfig {
  return config.sources[0] as SalesforceCdcSourceConfig;
}

interface Running {
  source: SalesforceCdcSource;
  runner: SourceRunner;
  logs: LogLine[];
}

/** A SourceRunner around a fresh source, as `banyan run` would build it. */
async function startRunner(config: BanyanConfig, options: Partial<CdcOptions> = {}): Promise<Running> {
  const logs: LogLine[] = [];
  const logger = createRootLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const kafka = createKafka(config.kafka, createRootLogger('silent'));
  const source = createSalesforceCdcSource(config.salesforce!, sourceConfig(config), {
    logger,
    options: { gapWindowMs: 200, ...options },
    clientOptions: { retry: { minMs: 20, maxMs: 200, rateLimitMinMs: 50 } },
  });
  const runner = new SourceRunner(
    source, kafka, new AvroEncoder(createSchemaRegistry(config.schemaRegistry)),
    new KafkaOffsetStore(kafka, config.kafka.topics.offsets, 1), logger,
    { ...runnerOptions(config), backoffMs: { min: 100, max: 1000 } },
  );
  await runner.start();
  cleanups.push(() => runner.stop());
  return { source, runner, logs };
}

const salesforce = loginToEmulator;

async function readChanges(config: BanyanConfig, topic: string, count: number, timeoutMs = 10_000): Promise<Array<Change & { key: string }>> {
  const kafka = createKafka(config.kafka, createRootLogger('silent'));
  const messages = await readTopic(kafka, topic, count, timeoutMs);
  return decodeAll(config, messages);
}

async function decodeAll(config: BanyanConfig, messages: KafkaMessage[]): Promise<Array<Change & { key: string }>> {
  const decoder = new AvroDecoder(config.schemaRegistry);
  const changes = [];
  for (const m of messages) {
    const key = (await decoder.decode(m.key!)) as { Id: string };
    changes.push({ ...((await decoder.decode(m.value!)) as Change), key: key.Id, headers: m.headers });
  }
  // Partitions interleave: the order that matters is per record, and replayIds give it (re-reads after an expired replayId have none: last).
  const order = (c: Change) => (c.replayId === null ? Number.MAX_SAFE_INTEGER : Number(c.replayId));
  return changes.sort((a, b) => order(a) - order(b));
}

const header = (m: { headers?: KafkaMessage['headers'] }, name: string) => m.headers?.[name]?.toString();

describe('Salesforce CDC source', () => {
  it('writes CREATE, UPDATE (changed fields only, nulls named) and DELETE in order, keyed by record id', async () => {
    const em = await freshEmulator();
    const topic = freshName('salesforce.Contact');
    const config = parseConfig(cdcYaml(em, { topic }), 'salesforce-cdc test');
    const { source } = await startRunner(config);
    const conn = await salesforce(em);

    const { id } = (await conn.sobject('Contact').create({ FirstName: 'Ada', LastName: 'Lovelace', Email: 'ada@example.com', MailingStreet: '1 Main St', MailingCity: 'London' })) as { id: string };
    await conn.sobject('Contact').update({ Id: id, Email: null, MailingCity: 'Paris', Phone: '+33 1' });
    await conn.sobject('Contact').destroy(id);

    const changes = await readChanges(config, topic, 3);
    expect(changes.map((c) => c.op)).toEqual(['create', 'update', 'delete']);
    expect(new Set(changes.map((c) => c.key))).toEqual(new Set([id]));
    const [created, updated, deleted] = changes;
    expect(created?.fields).toMatchObject({
      'Name.FirstName': 'Ada', 'Name.LastName': 'Lovelace', 'Name.Salutation': null, Email: 'ada@example.com',
      'MailingAddress.Street': '1 Main St', 'MailingAddress.City': 'London', 'MailingAddress.Country': null, Phone: null,
    });
    // Only what changed; Email is present as null (set to null), FirstName is absent (unchanged).
    expect(updated?.fields).toEqual({ Email: null, 'MailingAddress.City': 'Paris', Phone: '+33 1', LastModifiedDate: expect.stringMatching(/Z$/) });
    expect([...(updated?.changedFields ?? [])].sort()).toEqual(['Email', 'LastModifiedDate', 'MailingAddress.City', 'Phone']);
    expect(updated?.nulledFields).toEqual(['Email']);
    expect(deleted?.fields).toEqual({});
    expect(changes.every((c) => !c.echo && !c.reconciled && c.entity === 'Contact')).toBe(true);
    expect(created?.header).toMatchObject({ changeType: 'CREATE', changeOrigin: 'com/salesforce/api/rest/62.0' });
    expect(header(changes[0] as never, 'banyan.origin')).toBe('salesforce');
    expect(changes.map((c) => header(c as never, 'banyan.operation'))).toEqual(['insert', 'update', 'delete']);
    expect(header(changes[1] as never, 'banyan.source.position')).toBe(String(updated?.replayId));
    expect(source.status()).toMatchObject({ events: 3, records: 3, echoes: 0, deadLetters: 0 });
  });

  it('marks changes made under Banyan’s client id as echoes', async () => {
    const em = await freshEmulator();
    const topic = freshName('salesforce.Contact');
    const config = parseConfig(cdcYaml(em, { topic }), 'salesforce-cdc test');
    const { source } = await startRunner(config);
    const own = await salesforce(em, { client: 'banyan' });
    const other = await salesforce(em, { client: 'banyan-other' });

    const { id } = (await other.sobject('Contact').create({ LastName: 'Echo' })) as { id: string };
    await own.sobject('Contact').update({ Id: id, Phone: '1' });
    const changes = await readChanges(config, topic, 2);
    expect(changes.map((c) => [c.op, c.echo, header(c as never, 'banyan.echo')])).toEqual([['create', false, undefined], ['update', true, 'true']]);
    expect(changes[1]?.header.changeOrigin).toBe('com/salesforce/api/rest/62.0;client=banyan');
    expect(source.status().echoes).toBe(1);
  });

  it('reconciles GAP events into full records read through REST in one micro-batch, deletes included', async () => {
    const em = await freshEmulator();
    const topic = freshName('salesforce.Contact');
    const config = parseConfig(cdcYaml(em, { topic }), 'salesforce-cdc test');
    const conn = await salesforce(em);
    const created = await conn.sobject('Contact').create([{ LastName: 'A', Email: 'a@example.com' }, { LastName: 'B' }, { LastName: 'C' }]);
    const [a, b, c] = created.map((r) => r.id as string);
    const { source } = await startRunner(config);

    em.admin.gapNextChanges(3);
    await conn.sobject('Contact').update([{ Id: a!, Phone: '111', MailingCity: 'Oslo' }, { Id: b!, Email: 'b@example.com' }]);
    await conn.sobject('Contact').destroy(c!);
    await conn.sobject('Contact').update({ Id: a!, Phone: '222' });

    const changes = await readChanges(config, topic, 4);
    expect(changes.map((x) => [x.op, x.header.changeType, x.key])).toEqual([
      ['reconciled', 'GAP_UPDATE', a], ['reconciled', 'GAP_UPDATE', b], ['delete', 'GAP_DELETE', c], ['update', 'UPDATE', a],
    ]);
    const [ra, rb, rc] = changes;
    // Full records, read after the gap: every field, named as CDC names them.
    expect(ra?.fields).toMatchObject({ 'Name.LastName': 'A', Email: 'a@example.com', 'MailingAddress.City': 'Oslo', 'MailingAddress.Street': null, Phone: expect.any(String) });
    expect(ra?.fields).not.toHaveProperty('MailingCity');
    expect(rb?.fields).toMatchObject({ 'Name.LastName': 'B', Email: 'b@example.com' });
    expect([ra, rb, rc].every((x) => x?.reconciled)).toBe(true);
    expect(ra?.header.commitTimestamp).toEqual(expect.any(BigInt));
    const status = source.status();
    expect(status).toMatchObject({ gapEvents: 3, reconciledRecords: 3 });
    // One window, one `Id IN (…)` query for the three ids.
    expect(status.apiCalls.gap).toBe(1);
  });

  it('re-reads the entity by SystemModstamp after a GAP_OVERFLOW', async () => {
    const em = await freshEmulator();
    const topic = freshName('salesforce.Contact');
    const config = parseConfig(cdcYaml(em, { topic }), 'salesforce-cdc test');
    const conn = await salesforce(em);
    const { source, logs } = await startRunner(config);
    const { id: before } = (await conn.sobject('Contact').create({ LastName: 'Before' })) as { id: string };
    await readChanges(config, topic, 1);

    em.admin.overflowNextChanges(3);
    const records = Array.from({ length: 4 }, (_, i) => ({ Banyan_Id__c: `o-${i}`, LastName: `O${i}`, Email: `o${i}@example.com` }));
    const ids = (await conn.sobject('Contact').upsert(records, 'Banyan_Id__c')).map((r) => r.id as string);

    // Events: CREATE Before, CREATE o-3, GAP_OVERFLOW (o-0…o-2 folded). The re-read reaches back to
    // the last known commit time minus the look-back (60 s): Before and all four o-* come back whole.
    const changes = await readChanges(config, topic, 7);
    expect(changes).toHaveLength(7);
    const reread = changes.filter((x) => x.reconciled);
    expect(reread.map((x) => x.key).sort()).toEqual([before, ...ids].sort());
    expect(reread.every((x) => x.op === 'reconciled' && x.header.changeType === 'GAP_OVERFLOW' && !x.echo)).toBe(true);
    expect(reread.find((x) => x.key === ids[0])?.fields).toMatchObject({ 'Name.LastName': 'O0', Email: 'o0@example.com', Banyan_Id__c: 'o-0' });
    expect(changes.filter((x) => !x.reconciled).map((x) => [x.op, x.key])).toEqual([['create', before], ['create', ids[3]]]);
    expect(source.status().overflowEvents).toBe(1);
    expect(source.status().apiCalls.overflow).toBe(1);
    expect(logs.some((l) => l.event === 'cdc.reread_started' && l.cause === 'GAP_OVERFLOW')).toBe(true);
  });

  it('applies the expired-replayId policy loudly: re-reads what changed while stopped, then follows new events', async () => {
    const em = await freshEmulator();
    const topic = freshName('salesforce.Contact');
    const config = parseConfig(cdcYaml(em, { topic }), 'salesforce-cdc test');
    const conn = await salesforce(em);
    const first = await startRunner(config);
    const { id: a } = (await conn.sobject('Contact').create({ LastName: 'Kept' })) as { id: string };
    await readChanges(config, topic, 1);
    await first.runner.stop();

    // Stopped for longer than the 72-hour retention: the change made right after the stop is gone
    // from the stream, and with it the position after the stored replayId.
    await conn.sobject('Contact').update({ Id: a, Email: 'kept@example.com' });
    em.admin.advanceClock(72 * 60 * 60 * 1000 + 60_000);
    const { id: b } = (await conn.sobject('Contact').create({ LastName: 'Missed' })) as { id: string };

    const second = await startRunner(config);
    const reread = await readChanges(config, topic, 3);
    expect(reread.slice(1).map((x) => [x.op, x.key, x.header.changeType]).sort()).toEqual(
      [['reconciled', a, 'REPLAY_EXPIRED'], ['reconciled', b, 'REPLAY_EXPIRED']].sort(),
    );
    expect(reread.find((x) => x.key === a && x.reconciled)?.fields).toMatchObject({ Email: 'kept@example.com', 'Name.LastName': 'Kept' });
    const expired = second.logs.find((l) => l.event === 'cdc.replay_expired');
    expect(expired).toMatchObject({ level: 50, policy: 'reread', replayId: Number(reread[0]?.replayId) });
    expect(second.source.status()).toMatchObject({ replayExpired: 1, rereadRecords: 2 });
    expect(second.source.status().apiCalls.reread).toBe(1);

    // Nothing stalls: new changes flow, and once one is stored a restart needs no second re-read.
    const { id: c } = (await conn.sobject('Contact').create({ LastName: 'After' })) as { id: string };
    const withNew = await readChanges(config, topic, 4);
    expect(withNew.filter((x) => !x.reconciled).map((x) => [x.op, x.key])).toEqual([['create', a], ['create', c]]);
    await second.runner.stop();
    const third = await startRunner(config);
    await conn.sobject('Contact').update({ Id: c, Phone: '3' });
    const more = await readChanges(config, topic, 5);
    expect(more.filter((x) => !x.reconciled).map((x) => [x.op, x.key])).toEqual([['create', a], ['create', c], ['update', c]]);
    expect(third.source.status().replayExpired).toBe(0);
    expect(third.logs.some((l) => l.event === 'cdc.replay_expired')).toBe(false);
  });

  it('survives an ended session and rate limits: logs in again, backs off, and loses nothing', async () => {
    const em = await freshEmulator();
    const topic = freshName('salesforce.Contact');
    const config = parseConfig(cdcYaml(em, { topic }), 'salesforce-cdc test');
    const conn = await salesforce(em);
    const { id } = (await conn.sobject('Contact').create({ LastName: 'Session' })) as { id: string };
    const { source, logs } = await startRunner(config);
    await conn.sobject('Contact').update({ Id: id, Phone: '0' });
    await readChanges(config, topic, 1);

    // Every token stops working (REST 401, CometD 401::Authentication invalid); the next REST calls are refused for the rate limit.
    em.admin.expireSessions();
    const again = await salesforce(em);
    em.admin.gapNextChanges(1);
    await again.sobject('Contact').update({ Id: id, Phone: '1' });
    em.admin.rateLimitNextCalls(2);
    await readChanges(config, topic, 2);
    await again.sobject('Contact').update({ Id: id, Phone: '2' });
    const changes = await readChanges(config, topic, 3);
    expect(changes.map((x) => [x.op, x.fields.Phone])).toEqual([['update', '0'], ['reconciled', '1'], ['update', '2']]);

    await until(async () => logs.some((l) => l.event === 'cdc.stream_failed'), 5000);
    expect(logs.find((l) => l.event === 'cdc.stream_failed')).toMatchObject({ kind: 'auth' });
    expect(logs.some((l) => l.event === 'salesforce.session_refreshed')).toBe(true);
    expect(logs.filter((l) => l.event === 'salesforce.retry' && l.errorCode === 'REQUEST_LIMIT_EXCEEDED')).toHaveLength(2);
    // The refused calls count (one more when the gap query met the ended session first).
    expect(source.status().apiCalls.gap).toBeGreaterThanOrEqual(3);
    expect(source.status().apiCalls.gap).toBeLessThanOrEqual(4);
  });
});

describe('Salesforce CDC source killed with SIGKILL mid-stream', () => {
  it('writes every change exactly once after a restart', async () => {
    const em = await freshEmulator();
    const topic = freshName('salesforce.Contact');
    const yaml = cdcYaml(em, { topic, batchSize: 3, pollIntervalMs: 20 });
    const dir = mkdtempSync(join(tmpdir(), 'banyan-sfcdc-'));
    const configFile = join(dir, 'banyan.yaml');
    writeFileSync(configFile, yaml);
    const script = join(dir, 'run-cdc.mts');
    writeFileSync(script, childScript());
    const config = parseConfig(yaml, configFile);
    const kafka = createKafka(config.kafka, createRootLogger('silent'));
    const conn = await salesforce(em);

    let child = await startChild(script, configFile);
    const created = await conn.sobject('Contact').create(Array.from({ length: 5 }, (_, i) => ({ LastName: `K${i}` })));
    const ids = created.map((r) => r.id as string);
    const writes = (async () => {
      for (let i = 0; i < 40; i++) {
        await conn.sobject('Contact').update({ Id: ids[i % ids.length]!, Phone: String(i), Email: i % 3 === 0 ? null : `k${i}@example.com` });
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    writes.catch(() => undefined); // awaited below; a failed test must not leave it unhandled
    await until(async () => (await highWatermarks(kafka, topic)) >= 12, 15_000);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // Killed mid-stream: changes were still being made, and some were already in Kafka.
    expect(em.admin.changeEvents().length).toBeLessThan(45);
    await writes;
    const total = em.admin.changeEvents().filter((e) => e.entityName === 'Contact').length;
    expect(total).toBe(45);

    child = await startChild(script, configFile);
    // Everything, then a short wait for anything written twice.
    const changes = await decodeAll(config, await readSettled(kafka, topic, total, 1000, 20_000));
    const replayIds = changes.map((c) => Number(c.replayId));
    expect(replayIds).toHaveLength(total);
    expect(new Set(replayIds)).toEqual(new Set(em.admin.changeEvents().map((e) => e.replayId)));
    // The last change of every record is its last update.
    for (const [i, id] of ids.entries()) {
      const last = changes.filter((c) => c.key === id).at(-1);
      expect(last?.fields.Phone).toBe(String(35 + i));
    }
  }, 40_000);
});

/** A `banyan run`-like process for one CDC source: what a deployment runs, so SIGKILL kills it for real. */
function childScript(): string {
  const src = (path: string) => JSON.stringify(pathToFileURL(resolve(path)).href);
  return `
import { createSalesforceCdcSource } from ${src('src/import/salesforce-cdc/index.ts')};
import { AvroEncoder } from ${src('src/runtime/avro.ts')};
import { loadConfigFile } from ${src('src/runtime/config/index.ts')};
import { createKafka } from ${src('src/runtime/kafka.ts')};
import { createRootLogger } from ${src('src/runtime/logger.ts')};
import { KafkaOffsetStore } from ${src('src/runtime/offsets.ts')};
import { createSchemaRegistry } from ${src('src/runtime/registry.ts')};
import { runnerOptions, SourceRunner } from ${src('src/runtime/source-runner.ts')};

const config = loadConfigFile(process.argv[2]);
const logger = createRootLogger('warn', { write: (line) => process.stderr.write(line) });
const kafka = createKafka(config.kafka, logger);
const source = createSalesforceCdcSource(config.salesforce, config.sources[0], { logger });
const runner = new SourceRunner(source, kafka, new AvroEncoder(createSchemaRegistry(config.schemaRegistry)),
  new KafkaOffsetStore(kafka, config.kafka.topics.offsets, 1), logger, runnerOptions(config));
await runner.start();
process.stdout.write('ready\\n');
`;
}

async function startChild(script: string, configFile: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, configFile], { cwd: resolve('.'), stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  cleanups.push(() => child.kill('SIGKILL'));
  child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error('the CDC child process did not start within 15 s')), 15_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) {
        clearTimeout(timer);
        ready();
      }
    });
    child.once('exit', (code) => fail(new Error(`the CDC child process exited with ${code}`)));
  });
  return child;
}

async function highWatermarks(kafka: Kafka, topic: string): Promise<number> {
  return withAdmin(kafka, async (admin) => {
    if (!(await admin.listTopics()).includes(topic)) return 0;
    return (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);
  });
}

/** Reads `topic` (read_committed) until `count` messages arrived, then `settleMs` longer, to see any extra. */
async function readSettled(kafka: Kafka, topic: string, count: number, settleMs: number, timeoutMs: number): Promise<KafkaMessage[]> {
  await until(async () => (await withAdmin(kafka, (admin) => admin.listTopics())).includes(topic), timeoutMs);
  const consumer = kafka.consumer({ groupId: freshName('reader'), readUncommitted: false, maxWaitTimeInMs: 100 });
  const messages: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void messages.push(message) });
    await until(async () => messages.length >= count, timeoutMs).catch(() => undefined);
    await new Promise((r) => setTimeout(r, settleMs));
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // A check that throws (a topic whose leader is still being elected) counts as not yet.
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
