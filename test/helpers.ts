import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from 'jsforce';
import type { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { Knex } from 'knex';
import { parseDocument } from 'yaml';
import type { Dialect } from '../src/dialects/dialect';
import { ChangelogSource } from '../src/import/changelog/source';
import { AvroDecoder } from '../src/runtime/avro';
import { parseConfig, type BanyanConfig, type ChangelogSourceConfig } from '../src/config';
import { createKafka, ensureTopics, readToEnd } from '../src/runtime/kafka';
import { createRootLogger } from '../src/runtime/logger';
import { createSourceRunner, type SourceRunner } from '../src/runtime/source-runner';
import type { Emulator } from '../tools/salesforce-emulator';

/** Every name freshName made in this test file: what deleteWhatThisFileMade may delete. */
const freshNames = new Set<string>();

/** A name no other test (or earlier run) has used: topics, groups, subjects, tables. */
export function freshName(prefix: string): string {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  freshNames.add(name);
  return name;
}

/** Whether `name` is, or is built from (`legacy.pg.<table>`, `<topic>-value`), a fresh name of this file. */
function madeHere(name: string): boolean {
  for (const fresh of freshNames) if (name.includes(fresh)) return true;
  return false;
}

/** Whether this test file made any fresh name yet (a file that made none has nothing to clean up). */
export function madeAnything(): boolean {
  return freshNames.size > 0;
}

/**
 * Deletes the topics, consumer groups and registry subjects whose names hold a fresh name of this
 * test file, and nothing else: other test runs share the broker at the same time, so "whatever was
 * not there at the start" would take their topics from under them. With `countLeft`, also how many
 * of its topics the broker still lists afterwards.
 */
export async function deleteWhatThisFileMade(
  kafka: Kafka,
  registryUrl: string,
  countLeft = false,
): Promise<{ topics: string[]; groups: number; subjects: number; left?: number }> {
  const { topics, groups, left } = await withAdmin(kafka, async (admin) => {
    const topics = (await admin.listTopics()).filter(madeHere);
    if (topics.length) await admin.deleteTopics({ topics });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter(madeHere);
    // A group still in use cannot go (NON_EMPTY_GROUP); it holds no partitions, so let it be.
    if (groups.length) await admin.deleteGroups(groups).catch(() => undefined);
    const left = countLeft ? (await admin.listTopics()).filter(madeHere).length : undefined;
    return { topics, groups: groups.length, left };
  });
  const subjects = ((await (await fetch(`${registryUrl}/subjects`)).json()) as string[]).filter(madeHere);
  for (const subject of subjects) {
    // A soft delete first: the registry refuses a permanent delete of a live subject.
    await fetch(`${registryUrl}/subjects/${encodeURIComponent(subject)}`, { method: 'DELETE' });
    await fetch(`${registryUrl}/subjects/${encodeURIComponent(subject)}?permanent=true`, { method: 'DELETE' });
  }
  return { topics, groups, subjects: subjects.length, ...(left === undefined ? {} : { left }) };
}

export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the integration global setup should have loaded .banyan/stack.env`);
  return value;
}

/**
 * A config for tests, built through the real schema from YAML as a user would write it.
 * `extra` is appended YAML (databases, sources…).
 */
export function testConfig(extra = ''): BanyanConfig {
  const yaml = `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${freshName('banyan-test')}
  encodedProduce: \${BANYAN_TEST_ENCODED_PRODUCE:-true}
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
log:
  level: \${BANYAN_TEST_LOG_LEVEL:-silent}
${extra}`;
  return parseConfig(yaml, 'test config');
}

export function testKafka(config: BanyanConfig = testConfig()): Kafka {
  return createKafka(config.kafka, createRootLogger(config.log.level));
}

export async function withAdmin<T>(kafka: Kafka, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

async function topicReady(kafka: Kafka, topic: string): Promise<boolean> {
  return withAdmin(kafka, async (admin) => {
    if (!(await admin.listTopics()).includes(topic)) return false;
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    return topics[0]!.partitions.length > 0 && topics[0]!.partitions.every((p) => p.leader >= 0 && p.partitionErrorCode === 0);
  });
}

export async function createTopic(kafka: Kafka, topic: string, numPartitions = 1): Promise<void> {
  // ensureTopics retries the metadata answers a topic created a moment ago can give under load.
  await ensureTopics(kafka, [{ topic, numPartitions, replicationFactor: 1 }]);
}

type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/** How long waitFor waits before it fails. Only a failing test waits this long, so it is generous. */
const WAIT_FOR_MS = 60_000;

/**
 * Resolves with the value of `condition` once it is truthy, polled every 20 ms: for a state the
 * test can observe (a record, a log line, a row, a status answer), never for time to pass. Fails
 * after `timeoutMs` naming `what` it waited for (a function: told as it stands then); a condition that throws (a topic whose leader is
 * still being elected, a server not listening yet) counts as not yet, and its last error is told.
 */
export async function waitFor<T>(condition: () => T | Promise<T>, what: string | (() => string), timeoutMs = WAIT_FOR_MS): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as Truthy<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const cause = lastError === undefined ? '' : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      throw new Error(`waited ${timeoutMs / 1000} s for ${typeof what === 'string' ? what : what()}, in vain${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export type ReadMessage = KafkaMessage & { partition: number };

/**
 * Reads `topic` from the beginning with read_committed until `count` messages arrived or
 * `timeoutMs` passed, and returns what it read. To show that nothing more came, use readAll or
 * readUntil instead: waiting out a timeout proves nothing on a busy machine.
 */
export async function readTopic(kafka: Kafka, topic: string, count: number, timeoutMs = 15_000): Promise<ReadMessage[]> {
  let seen = 0;
  return (await consumeUntil(kafka, topic, timeoutMs, () => ++seen >= count)).messages;
}

/**
 * Everything in `topic` now (none if it does not exist), read_committed up to the end offsets it
 * has when the read begins (src/runtime/kafka.ts readToEnd: a partition whose last transaction was
 * aborted ends on markers, and that counts). For a topic no transaction is still open on (its writer
 * committed or was fenced), so that those offsets are final: then an exact count proves nothing else came.
 */
export async function readAll(kafka: Kafka, topic: string, timeoutMs = 30_000): Promise<ReadMessage[]> {
  if (!(await withAdmin(kafka, async (admin) => (await admin.listTopics()).includes(topic)))) return [];
  const messages: ReadMessage[] = [];
  await readToEnd(kafka, topic, (message, partition) => messages.push({ ...message, partition }), timeoutMs);
  return messages;
}

/**
 * Every message of `topic` up to a marker the test wrote after the last change it expects (the
 * first message for which `isLast` is true): waits for the marker, then reads all that was
 * committed with it (partitions are read in no set order, so the marker alone proves nothing).
 */
export async function readUntil(
  kafka: Kafka,
  topic: string,
  isLast: (message: ReadMessage) => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<ReadMessage[]> {
  const { messages, stopped } = await consumeUntil(kafka, topic, timeoutMs, isLast);
  if (!stopped) throw new Error(`reading ${topic}: no marker within ${timeoutMs} ms, after ${messages.length} messages`);
  return readAll(kafka, topic, timeoutMs);
}

/** Consumes `topic` from the beginning, read_committed, until `stop` is true of a message or `timeoutMs` passed. */
async function consumeUntil(
  kafka: Kafka,
  topic: string,
  timeoutMs: number,
  stop: (message: ReadMessage) => boolean | Promise<boolean>,
): Promise<{ messages: ReadMessage[]; stopped: boolean }> {
  const deadline = Date.now() + timeoutMs;
  const messages: ReadMessage[] = [];
  // The topic may not exist yet: a source creates its topic with its first records. A consumer
  // that joins before every partition has a leader can resolve "earliest" too late and miss the
  // first messages of a partition, so wait for the leaders as well.
  while (!(await topicReady(kafka, topic))) {
    if (Date.now() > deadline) return { messages, stopped: false };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const consumer: Consumer = kafka.consumer({ groupId: freshName('reader'), readUncommitted: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const stopped = await new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => resolve(false), Math.max(deadline - Date.now(), 0));
      void consumer.run({
        eachMessage: async ({ message, partition }) => {
          const m = { ...message, partition };
          messages.push(m);
          if (await Promise.resolve(stop(m)).catch((error) => (reject(error), false))) {
            clearTimeout(timer);
            resolve(true);
          }
        },
      });
    });
    return { messages, stopped };
  } finally {
    await consumer.disconnect();
  }
}

/** Writes a config for the `banyan` CLI to a fresh temporary file and returns its path. */
export function writeConfigFile(yaml: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'banyan-test-')), 'banyan.yaml');
  writeFileSync(file, yaml);
  return file;
}

/** `banyan --config <file> <command…>` as a child process, its stderr on the test's. */
export function spawnBanyan(configFile: string, command: string[], stdout: 'ignore' | 'pipe' = 'ignore'): ChildProcess {
  return spawn('node', ['bin/banyan.mjs', '--config', withTestSettings(configFile), ...command], { stdio: ['ignore', stdout, 'inherit'] });
}

/**
 * The Kafka-facing tests run twice (vitest.config.ts), the second time with
 * BANYAN_TEST_ENCODED_PRODUCE=false: a config a test wrote itself gets that kafka.encodedProduce
 * too, in a copy beside it, unless it sets the field.
 */
function withTestSettings(configFile: string): string {
  const encoded = process.env.BANYAN_TEST_ENCODED_PRODUCE;
  if (encoded === undefined) return configFile;
  const doc = parseDocument(readFileSync(configFile, 'utf8'));
  if (doc.hasIn(['kafka', 'encodedProduce'])) return configFile;
  doc.setIn(['kafka', 'encodedProduce'], encoded !== 'false');
  const copy = `${configFile}.encodedProduce-${encoded}.yaml`;
  writeFileSync(copy, doc.toString());
  return copy;
}

/** `banyan --config <file> <args…>` run to its end, as a user would from a shell. */
export function runBanyan(configFile: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('node', ['bin/banyan.mjs', '--config', configFile, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A local TCP port nobody listens on: one the OS just handed out, closed again. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * The status URL a `banyan run` child (spawned with stdout piped, log level info or lower) logs
 * once its HTTP server listens. Its stdout stays drained, so the child never blocks on a full pipe.
 */
export function listeningUrl(child: ChildProcess): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let seen = '';
    let found = false;
    child.stdout!.on('data', (chunk: Buffer) => {
      if (found) return;
      seen += chunk.toString();
      const match = /"event":"http.listening","url":"([^"]+)"/.exec(seen);
      if (match) {
        found = true;
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`banyan run exited ${code}: ${seen}`)));
  });
}

/** jsforce logged in to an emulator through OAuth username-password, as a user would. */
export async function loginToEmulator(emulator: Emulator, callOptions?: { client: string }): Promise<Connection> {
  const { username, password, clientId, clientSecret } = emulator.credentials;
  const conn = new Connection({ oauth2: { loginUrl: emulator.url, clientId, clientSecret }, version: '62.0', ...(callOptions ? { callOptions } : {}) });
  await conn.login(username, password);
  return conn;
}

/** A message with key and value decoded through the registry (a tombstone's value stays null), headers as text. */
export interface DecodedMessage<V = unknown, K = unknown> {
  partition: number;
  offset: string;
  key: K;
  value: V | null;
  headers: Record<string, string>;
}

/** `messages` decoded through the registry of `config`, in the order given. */
export async function decodeMessages<V = unknown, K = unknown>(config: BanyanConfig, messages: ReadMessage[]): Promise<Array<DecodedMessage<V, K>>> {
  const decoder = new AvroDecoder(config.schemaRegistry);
  const decode = async (bytes: Buffer | null) => (bytes === null ? null : await decoder.decode(bytes));
  return Promise.all(
    messages.map(async (m) => ({
      partition: m.partition,
      offset: m.offset,
      key: (await decode(m.key)) as K,
      value: (await decode(m.value)) as V | null,
      headers: textHeaders(m),
    })),
  );
}

/** A message's headers as text. */
export function textHeaders(message: Pick<KafkaMessage, 'headers'>): Record<string, string> {
  return Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
}

/**
 * Reads up to `count` records of a topic (see readTopic), or, given `until`, every record up to
 * the one it picks (see readUntil): their values decoded through the registry and their headers
 * as text, in the order of their changelog position. A tombstone (the null value after a delete)
 * reads as `{ op: 'tombstone', key, source: { position } }` (its key decoded), right after its delete.
 */
export async function readDecoded<T extends { source: { position: string } }>(
  config: BanyanConfig,
  topic: string,
  count: number | { until: (record: T) => boolean },
  timeoutMs?: number,
): Promise<Array<T & { headers: Record<string, string> }>> {
  const decoder = new AvroDecoder(config.schemaRegistry);
  const kafka = testKafka(config);
  const messages =
    typeof count === 'number'
      ? await readTopic(kafka, topic, count, timeoutMs)
      : await readUntil(kafka, topic, async (m) => m.value !== null && count.until((await decoder.decode(m.value)) as T), timeoutMs);
  const decoded = (await decodeMessages<T>(config, messages)).map(({ key, value, headers }) => ({
    ...(value ?? ({ op: 'tombstone', key, before: null, after: null, source: { position: headers['banyan.source.position'] } } as unknown as T)),
    headers,
  }));
  return decoded.sort((a, b) => a.source.position.localeCompare(b.source.position));
}

/** A started runner of the changelog source `config.sources[0]`, built as `banyan run` builds it. */
export async function startChangelogRunner(
  config: BanyanConfig,
  deps: { db: Knex; dialect: Dialect; databaseName: string; now?: () => number },
): Promise<SourceRunner> {
  const logger = createRootLogger(config.log.level);
  const source = new ChangelogSource(config.sources[0] as ChangelogSourceConfig, { ...deps, originTag: config.originTag, logger });
  const runner = createSourceRunner(source, config, logger);
  await runner.start();
  return runner;
}
