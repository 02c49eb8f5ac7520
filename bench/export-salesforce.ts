import os from 'node:os';
import type { Batch, Kafka, KafkaMessage } from 'kafkajs';
import pino from 'pino';
import { SalesforceClient } from '../src/clients/salesforce/client';
import type { BanyanConfig } from '../src/config';
import { salesforceSinkTargets } from '../src/config/sinks';
import { registerDomainSchemas } from '../src/domain';
import type { EventCatalog } from '../src/domain/catalog';
import type { DomainEvent } from '../src/domain/event';
import { createPublisher } from '../src/domain/publish';
import { salesforceSinkSchema, type SalesforceSinkConfig } from '../src/export/salesforce/config';
import type { SalesforceSink } from '../src/export/salesforce/sink';
import { createSalesforceSink } from '../src/export/module';
import { AvroEncoder } from '../src/runtime/avro';
import { createChangeTypes } from '../src/runtime/change-types';
import { createKafka, ensureTopics } from '../src/runtime/kafka';
import { componentLogger, createRootLogger, type Logger } from '../src/runtime/logger';
import { createSchemaRegistry } from '../src/runtime/registry';
import { runnerKafka, runnerOptions } from '../src/runtime/source-runner';
import { transformSchema } from '../src/transforms/config';
import { catalogOf } from '../src/transforms/module';
import { startEmulator, type Emulator } from '../tools/salesforce-emulator/index.js';
import { ADDRESS_CHANGES, pick, random, serviceEvent, shuffle, USER_CHANGES, value } from './domain-events';
import { median, type BenchResult } from './report';

/**
 * The Salesforce sink writing domain events into Contacts (upsert by Banyan_Id__c), in two modes,
 * each in a run of its own: a fresh in-process Salesforce emulator (never the stack's), fresh
 * topics, sink group and state topics (all named after the run id, deleted at the end).
 *
 * Not timed: the emulator holds a Contact for each existing user (upserted through the REST API by
 * a client of the bench's own, so the sink's call count starts at 0), and N domain events are
 * committed to `<id>.user` / `<id>.address` by a domain service (origin `domain`): over about
 * N/1.3 users, each touched at least once and some several times (so a few records of a flush
 * carry several events); 60% UserChanged (a subset of its fields), 40% AddressChanged; 3% of the
 * events are UserChanged of new users carrying first name, last name and email (the Contact is
 * created). Commit times rise with the event's place.
 *
 * Timed: a SalesforceSink built as `banyan run` builds it (`createSalesforceSink`), from `start()`
 * (login and group join included) until its status counts all N inputs committed.
 *
 * - streaming: `bulk.threshold: 0`, every record through sObject Collections (200 a call);
 * - backlog: `bulk.threshold` 2000 (the default), so the backlog goes through Bulk API 2.0 jobs.
 *
 * API calls are the sink's REST calls to Salesforce for its records as its client counts them
 * (`usage().callsByPurpose`, the `sink.*` purposes: `sink.collections`, `sink.bulk`,
 * `sink.limits`; every retry counts, as Salesforce counts it). Not counted: the OAuth login (no
 * REST call) and the one `sink.describe` of the object at start, a cost per start, not per record
 * (reported apart as `startup_calls`).
 */
export interface ExportSalesforceOptions {
  /** The product's config: its kafka and schemaRegistry are used (its salesforce section is not: the bench starts its own emulator). */
  config: BanyanConfig;
  configFile: string;
  events: number;
  warmups: number;
  runs: number;
  /** Overrides of the sink's config (lingerMs, partitionsConsumedConcurrently, bulk…), merged into both modes' sinks; reported in the result. */
  sink?: Record<string, unknown>;
}

export type Mode = 'streaming' | 'backlog';

/** One mode's figures in one run. */
export type ExportSalesforceModeRun = {
  seconds: number;
  events_per_s: number;
  records: number;
  created: number;
  updated: number;
  /** Through Bulk: created or updated, Salesforce's answer not read. */
  upserted: number;
  records_per_s: number;
  /** The sink's REST calls for its records (the sink.* purposes but sink.describe). */
  api_calls: number;
  /** The calls of the sink's start (sink.describe), not in api_calls. */
  startup_calls: number;
  api_calls_per_1000: number;
  /** The same per 1,000 input events (several events of a user in one flush are one record). */
  api_calls_per_1000_events: number;
  /** Time spent waiting for Salesforce's answers to the sink's calls (a Bulk job's polling waits not included). */
  salesforce_seconds: number;
  collections_calls: number;
  bulk_calls: number;
  bulk_jobs: number;
  /** Records per Collections call: the smallest and the median (0 when none). */
  min_records_per_call: number;
  median_records_per_call: number;
  /** Collections calls of fewer than maxRecordsPerCall records. */
  partial_calls: number;
  noops: number;
  dead_letters: number;
};

/** Share of the events that are UserChanged (the rest are AddressChanged), and of those that create a Contact. */
const USER_SHARE = 0.6;
const INSERT_SHARE = 0.03;
/** Events per entity, on average: N events over N/1.3 users. */
const EVENTS_PER_ENTITY = 1.3;
/** Events a domain-service transaction publishes. */
const PUBLISH_CHUNK = 5_000;
/** The code mapping's key: the Contact's external id field. */
const EXTERNAL_ID = 'Banyan_Id__c';

export async function benchExportSalesforce(options: ExportSalesforceOptions, log: (line: string) => void): Promise<BenchResult> {
  const sinkConfig = (mode: Mode): SalesforceSinkConfig =>
    salesforceSinkSchema.parse({
      name: 'bench-contacts',
      type: 'salesforce',
      mapping: 'salesforce-contacts',
      object: 'Contact',
      ...options.sink,
      // The mode decides the bulk threshold: never in streaming, the configured one (default 2000) for a backlog.
      bulk: { ...(options.sink?.bulk as object | undefined), ...(mode === 'streaming' ? { threshold: 0 } : {}) },
    });
  const conditions = { node: process.version, cores: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', loadavg_1m: Math.round(os.loadavg()[0]! * 100) / 100 };
  log(`Kafka ${options.config.kafka.brokers.join(',')} and registry ${options.config.schemaRegistry.url} of ${options.configFile}; an in-process Salesforce emulator per mode`);
  log(`node ${conditions.node}, ${conditions.cores} cores (${conditions.cpu}), load ${conditions.loadavg_1m}`);
  log(`sink: streaming ${JSON.stringify(describeSink(sinkConfig('streaming')))}, backlog ${JSON.stringify(describeSink(sinkConfig('backlog')))}${options.sink ? ' (tuned by --sink)' : ' (the defaults)'}`);

  const warmup: Array<Record<Mode, ExportSalesforceModeRun>> = [];
  const runs: Array<Record<Mode, ExportSalesforceModeRun>> = [];
  for (let i = 1; i <= options.warmups + options.runs; i++) {
    const label = i <= options.warmups ? `warm-up ${i}/${options.warmups}` : `run ${i - options.warmups}/${options.runs}`;
    const run = {} as Record<Mode, ExportSalesforceModeRun>;
    for (const mode of ['streaming', 'backlog'] as const) {
      const figures = await runOnce(options, mode, sinkConfig(mode), (line) => log(`${label} ${mode}: ${line}`));
      log(
        `${label} ${mode}: ${options.events} events in ${figures.seconds.toFixed(2)} s = ${figures.events_per_s.toLocaleString('en')} events/s, ` +
          `${figures.records} Contacts written (${figures.created} created, ${figures.updated} updated, ${figures.upserted} upserted through Bulk) = ${figures.records_per_s.toLocaleString('en')} records/s; ` +
          `${figures.api_calls} API calls (${figures.collections_calls} Collections, ${figures.bulk_calls} Bulk in ${figures.bulk_jobs} jobs; ${figures.startup_calls} describe at start not counted) = ${figures.api_calls_per_1000} per 1,000 records ` +
          `(${figures.api_calls_per_1000_events} per 1,000 events); ${figures.salesforce_seconds.toFixed(2)} s waiting for the emulator's answers` +
          `${figures.collections_calls ? `; records a Collections call: min ${figures.min_records_per_call}, median ${figures.median_records_per_call}, ${figures.partial_calls} calls not full` : ''}` +
          `${i <= options.warmups ? ', not counted' : ''}`,
      );
      run[mode] = figures;
    }
    (i <= options.warmups ? warmup : runs).push(run);
  }

  const med = (mode: Mode, key: keyof ExportSalesforceModeRun) => median(runs.map((r) => r[mode][key]));
  const streamingRate = Math.round(med('streaming', 'records_per_s'));
  const bulkRate = Math.round(med('backlog', 'records_per_s'));
  const streamingCalls = round2(med('streaming', 'api_calls_per_1000'));
  const bulkCalls = round2(med('backlog', 'api_calls_per_1000'));
  const targets = { streaming: 5.5, backlog: 0.5 };
  log(
    `median of ${runs.length} run${runs.length === 1 ? '' : 's'}: streaming ${streamingRate.toLocaleString('en')} records/s, ${streamingCalls} API calls per 1,000 records ` +
      `(target ≤ ${targets.streaming}: ${streamingCalls <= targets.streaming ? 'met' : 'MISSED'}); backlog ${bulkRate.toLocaleString('en')} records/s, ${bulkCalls} API calls per 1,000 records ` +
      `(target ≤ ${targets.backlog}: ${bulkCalls <= targets.backlog ? 'met' : 'MISSED'})`,
  );
  const flat = (list: Array<Record<Mode, ExportSalesforceModeRun>>) =>
    list.map((r) => ({
      seconds: r.streaming.seconds,
      records: r.streaming.records,
      records_per_s: r.streaming.records_per_s,
      api_calls: r.streaming.api_calls,
      api_calls_per_1000: r.streaming.api_calls_per_1000,
      min_records_per_call: r.streaming.min_records_per_call,
      partial_calls: r.streaming.partial_calls,
      salesforce_seconds: r.streaming.salesforce_seconds,
      bulk_seconds: r.backlog.seconds,
      bulk_records: r.backlog.records,
      bulk_records_per_s: r.backlog.records_per_s,
      bulk_api_calls: r.backlog.api_calls,
      bulk_collections_calls: r.backlog.collections_calls,
      bulk_jobs: r.backlog.bulk_jobs,
      bulk_api_calls_per_1000: r.backlog.api_calls_per_1000,
      bulk_salesforce_seconds: r.backlog.salesforce_seconds,
      dead_letters: r.streaming.dead_letters + r.backlog.dead_letters,
    }));
  return {
    bench: 'export-salesforce',
    events: options.events,
    entities: entityCount(options.events),
    records_per_s: streamingRate,
    api_calls_per_1000: streamingCalls,
    bulk_records_per_s: bulkRate,
    bulk_api_calls_per_1000: bulkCalls,
    api_calls_per_1000_events: round2(med('streaming', 'api_calls_per_1000_events')),
    bulk_api_calls_per_1000_events: round2(med('backlog', 'api_calls_per_1000_events')),
    events_per_s: Math.round(med('streaming', 'events_per_s')),
    bulk_events_per_s: Math.round(med('backlog', 'events_per_s')),
    median_seconds: round3(med('streaming', 'seconds')),
    bulk_median_seconds: round3(med('backlog', 'seconds')),
    records: med('streaming', 'records'),
    api_calls: med('streaming', 'api_calls'),
    bulk_records: med('backlog', 'records'),
    bulk_api_calls: med('backlog', 'api_calls'),
    bulk_jobs: med('backlog', 'bulk_jobs'),
    bulk_collections_calls: med('backlog', 'collections_calls'),
    salesforce_seconds: round3(med('streaming', 'salesforce_seconds')),
    bulk_salesforce_seconds: round3(med('backlog', 'salesforce_seconds')),
    dead_letters: runs.reduce((n, r) => n + r.streaming.dead_letters + r.backlog.dead_letters, 0),
    target_api_calls_per_1000: targets.streaming,
    target_bulk_api_calls_per_1000: targets.backlog,
    api_calls_counted: "the sink's SalesforceClient REST calls of the sink.* purposes, retries included; not the login (no REST call) nor the one sink.describe at start (startup_calls)",
    startup_calls: med('streaming', 'startup_calls'),
    sink_config: JSON.stringify({ streaming: describeSink(sinkConfig('streaming')), backlog: describeSink(sinkConfig('backlog')), tuned: options.sink !== undefined }),
    emulator: 'in-process (tools/salesforce-emulator), sharing the bench process and its event loop',
    node: conditions.node,
    cores: conditions.cores,
    cpu: conditions.cpu,
    loadavg_1m: conditions.loadavg_1m,
    runs: flat(runs),
    warmup: flat(warmup),
  };
}

/** The sink settings that shape its calls. */
function describeSink(s: SalesforceSinkConfig): Record<string, unknown> {
  return { lingerMs: s.lingerMs, maxRecordsPerCall: s.maxRecordsPerCall, partitionsConsumedConcurrently: s.partitionsConsumedConcurrently, bulk: s.bulk };
}

function entityCount(events: number): number {
  return Math.max(1, Math.round(events / EVENTS_PER_ENTITY));
}

const round2 = (n: number) => Math.round(n * 100) / 100;
const round3 = (n: number) => Math.round(n * 1000) / 1000;

async function runOnce(options: ExportSalesforceOptions, mode: Mode, sink: SalesforceSinkConfig, log: (line: string) => void): Promise<ExportSalesforceModeRun> {
  const base = options.config;
  const id = `bench_sf_${Date.now().toString(36)}_${mode === 'streaming' ? 's' : 'b'}`;
  // The pipeline's warnings go to stderr: stdout is for the result.
  const logger = createRootLogger('warn', pino.destination(2));
  const kafka = createKafka(base.kafka, logger);
  let emulator: Emulator | undefined;
  let running: { stop(): Promise<void> } | undefined;
  try {
    emulator = await startEmulator({ port: 0 });
    const salesforce = {
      loginUrl: emulator.url,
      apiVersion: '62.0',
      username: emulator.credentials.username,
      password: emulator.credentials.password,
      clientId: emulator.credentials.clientId,
      clientSecret: emulator.credentials.clientSecret,
      callOptionsClient: base.originTag,
    };
    const transform = transformSchema.parse({
      name: 'salesforce-contacts',
      from: `${id}.salesforce.Contact`,
      format: 'salesforce-cdc',
      changeTypes: ['user', 'address'],
      mapping: 'salesforce-contact',
      options: { idField: EXTERNAL_ID },
    });
    const config: BanyanConfig = {
      ...base,
      kafka: {
        ...base.kafka,
        clientId: id,
        topics: { ...base.kafka.topics, offsets: `${id}.offsets`, deadLetter: `${id}.dlq`, control: `${id}.control`, controlAudit: `${id}.control.audit`, domainPrefix: id },
      },
      databases: {},
      salesforce,
      changeTypes: { user: { initial: 'dual' }, address: { initial: 'dual' } },
      sources: [],
      transforms: [transform],
      sinks: [sink],
    };
    const catalog = catalogOf(config);
    const target = salesforceSinkTargets(config, catalog).get(sink.name)!;

    const plan = planEvents(options.events);
    await seedContacts(salesforce, plan.existing, logger);
    // The publisher's own client logs only errors: kafkajs warns once about its default partitioner.
    await publishEvents(plan.events, { kafka: createKafka(base.kafka, createRootLogger('error', pino.destination(2))), config, catalog, id });
    log(
      `${plan.existing} Contacts in the emulator; ${options.events} events in ${id}.user and ${id}.address ` +
        `(${plan.users} UserChanged, ${plan.addresses} AddressChanged over ${plan.existing + plan.inserts} users, ${plan.inserts} of them new)`,
    );

    const client = new SalesforceClient(salesforce, { logger: componentLogger(logger, 'salesforce-client', 'export') });
    const calls = instrumentCalls(client);
    const changeTypes = createChangeTypes(config, kafka, logger);
    const salesforceSink = createSalesforceSink(config, catalog, sink, target, {
      kafka,
      runnerKafka: runnerKafka(kafka, runnerOptions(config), logger),
      encoder: new AvroEncoder(createSchemaRegistry(config.schemaRegistry)),
      client,
      changeTypes,
      logger: componentLogger(logger, `sink:${sink.name}`, 'export'),
    });
    if (process.env.BENCH_TRACE) traceBatches(salesforceSink);
    running = { stop: async () => void (await Promise.all([salesforceSink.stop(), changeTypes.stop()])) };
    // What `beforeConsume` does, done before the clock starts (it finds both done).
    await registerDomainSchemas(config.schemaRegistry, catalog);
    await changeTypes.start();
    const started = process.hrtime.bigint();
    await salesforceSink.start();
    await untilHandled(salesforceSink, options.events);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const status = salesforceSink.status;
    const usage = client.usage();
    await running.stop();
    running = undefined;

    // upserted: written through Bulk, where Salesforce's answer (not read) would tell created from updated.
    const details = status.details as { written: { created: number; updated: number; upserted?: number }; calls: { collections: number; bulk: number }; bulkJobs: number; noops: number; refusedRows: number };
    const records = details.written.created + details.written.updated + (details.written.upserted ?? 0);
    const startupCalls = usage.callsByPurpose['sink.describe'] ?? 0;
    const apiCalls = Object.entries(usage.callsByPurpose).reduce((n, [purpose, calls]) => n + (purpose.startsWith('sink.') && purpose !== 'sink.describe' ? calls : 0), 0);
    const contacts = emulator.admin.state();
    // Through Bulk no record counts as created (the sink does not read a job's successful results): created is checked when streaming.
    if ((mode === 'streaming' && details.written.created !== plan.inserts) || status.deadLetters > 0 || details.refusedRows > 0 || apiCalls + startupCalls !== usage.calls) {
      log(
        `unexpected: ${details.written.created} Contacts created (expected ${plan.inserts}), ${status.deadLetters} dead letters, ${details.refusedRows} refused records, ` +
          `${apiCalls} sink calls of ${usage.calls} REST calls (${JSON.stringify(usage.callsByPurpose)}); emulator ${JSON.stringify(contacts).slice(0, 300)}`,
      );
    }
    const sizes = [...calls.sizes].sort((a, b) => a - b);
    return {
      seconds: round3(seconds),
      events_per_s: Math.round(options.events / seconds),
      records,
      created: details.written.created,
      updated: details.written.updated,
      upserted: details.written.upserted ?? 0,
      records_per_s: Math.round(records / seconds),
      api_calls: apiCalls,
      startup_calls: startupCalls,
      api_calls_per_1000: round2((apiCalls / Math.max(1, records)) * 1000),
      api_calls_per_1000_events: round2((apiCalls / options.events) * 1000),
      salesforce_seconds: round3(calls.seconds),
      collections_calls: details.calls.collections,
      bulk_calls: details.calls.bulk,
      bulk_jobs: details.bulkJobs,
      min_records_per_call: sizes[0] ?? 0,
      median_records_per_call: sizes.length ? median(sizes) : 0,
      partial_calls: sizes.filter((n) => n < sink.maxRecordsPerCall).length,
      noops: details.noops,
      dead_letters: status.deadLetters,
    };
  } finally {
    // A run that failed leaves its sink running: stopped before its topics go.
    await running?.stop().catch(() => undefined);
    await emulator?.close().catch(() => undefined);
    await deleteTopics(kafka, id).catch((error: Error) => log(`could not delete the topics of ${id}: ${error.message}`));
  }
}

/**
 * The records of each Collections call the sink makes, read from the call's description
 * ("upsert of N Contact records by …": the sink counts calls, not their sizes), and the time spent
 * waiting for Salesforce's answers (the emulator's work, as the bench sees it).
 */
function instrumentCalls(client: SalesforceClient): { sizes: number[]; seconds: number } {
  const seen = { sizes: [] as number[], seconds: 0 };
  const call = client.call.bind(client);
  client.call = (async (purpose, what, fn, signal) => {
    if (purpose === 'sink.collections') {
      const n = /^upsert of (\d+) /.exec(what)?.[1];
      if (n) seen.sizes.push(Number(n));
    }
    const t0 = performance.now();
    try {
      return await call(purpose, what, fn, signal);
    } finally {
      const ms = performance.now() - t0;
      seen.seconds += ms / 1000;
      if (process.env.BENCH_TRACE) process.stderr.write(`trace ${(t0 / 1000).toFixed(3)} ${purpose}: ${what}, ${ms.toFixed(0)} ms\n`);
    }
  }) as SalesforceClient['call'];
  return seen;
}

/**
 * BENCH_TRACE=1 (a diagnosis aid, on stderr): when each input batch reaches the sink and is
 * committed, each time a decoded batch joins the waiting ones (`schedule`) and each flush, with
 * the events waiting. It wraps members the sink does not export; one that is renamed is skipped.
 */
function traceBatches(sink: SalesforceSink): void {
  const at = () => (performance.now() / 1000).toFixed(3);
  const inner = sink as unknown as {
    handle?: (batch: Batch, messages: KafkaMessage[], ...rest: unknown[]) => Promise<void>;
    schedule?: () => void;
    flush?: () => Promise<void>;
    pending?: Array<{ events: unknown[] }>;
    flushing?: boolean;
  };
  const waiting = () => `${inner.pending?.length ?? '?'} batches, ${inner.pending?.reduce((n, p) => n + p.events.length, 0) ?? '?'} events`;
  const handle = inner.handle?.bind(sink);
  if (handle) {
    inner.handle = async (batch, messages, ...rest) => {
      const what = `${batch.topic.split('.').at(-1)}/${batch.partition}: ${messages.length} messages, lag ${batch.offsetLag()}`;
      process.stderr.write(`trace ${at()} batch in ${what}\n`);
      await handle(batch, messages, ...rest);
      process.stderr.write(`trace ${at()} batch committed ${what}\n`);
    };
  }
  const schedule = inner.schedule?.bind(sink);
  if (schedule) {
    inner.schedule = () => {
      process.stderr.write(`trace ${at()} schedule: ${waiting()} waiting${inner.flushing ? ' (a flush under way)' : ''}\n`);
      schedule();
    };
  }
  const flush = inner.flush?.bind(sink);
  if (flush) {
    inner.flush = () => {
      process.stderr.write(`trace ${at()} flush of ${waiting()}\n`);
      return flush();
    };
  }
}

/** Waits until the sink has committed `events` inputs; a sink that makes no progress for two minutes fails the run. */
async function untilHandled(sink: SalesforceSink, events: number): Promise<void> {
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

/** The Contacts that exist before the run: one per existing user, upserted 200 a call through a client of the bench's own. */
async function seedContacts(salesforce: ConstructorParameters<typeof SalesforceClient>[0], existing: number, logger: Logger): Promise<void> {
  const client = new SalesforceClient(salesforce, { logger: componentLogger(logger, 'salesforce-seed', 'bench') });
  for (let from = 1; from <= existing; from += 200) {
    const records: Array<Record<string, unknown>> = [];
    for (let i = from; i <= Math.min(from + 199, existing); i++) {
      records.push({
        attributes: { type: 'Contact' },
        [EXTERNAL_ID]: String(i),
        FirstName: `First${i}`,
        LastName: `Last${i}`,
        Email: `u${i}@example.com`,
        MailingStreet: `${i} Main St`,
        MailingCity: 'Zurich',
        MailingPostalCode: '8000',
        MailingState: 'ZH',
        MailingCountry: 'CH',
      });
    }
    const answers = await client.call('bench.seed', `seed ${records.length} Contacts`, (conn) =>
      conn.request<Array<{ success: boolean; errors?: unknown[] }>>({
        method: 'PATCH',
        url: `/composite/sobjects/Contact/${EXTERNAL_ID}`,
        body: JSON.stringify({ allOrNone: true, records }),
        headers: { 'Content-Type': 'application/json' },
      }),
    );
    const failed = answers.find((a) => !a.success);
    if (failed) throw new Error(`seeding Contacts failed: ${JSON.stringify(failed.errors)}`);
  }
}

/**
 * The N events, the same for every run and mode: about N/1.3 users, of which 3% of N are new (one
 * UserChanged with first name, last name and email each, which creates the Contact) and the rest
 * exist (touched once each, plus the remaining events on them at random); 60% UserChanged, 40%
 * AddressChanged, in a random order, commit times rising with the place.
 */
function planEvents(events: number): { events: DomainEvent[]; existing: number; inserts: number; users: number; addresses: number } {
  const rng = random(events);
  const inserts = Math.round(events * INSERT_SHARE);
  const existing = Math.max(1, Math.min(entityCount(events), events) - inserts);
  const users = Math.round(events * USER_SHARE);
  const kinds = shuffle<'insert' | 'user' | 'address'>(
    [
      ...Array.from({ length: inserts }, () => 'insert' as const),
      ...Array.from({ length: users - inserts }, () => 'user' as const),
      ...Array.from({ length: events - users }, () => 'address' as const),
    ],
    rng,
  );
  // Every existing user once, then the rest of the events on existing users at random.
  const touched = events - inserts;
  const ids = shuffle(
    [...Array.from({ length: Math.min(existing, touched) }, (_, k) => k + 1), ...Array.from({ length: Math.max(0, touched - existing) }, () => 1 + Math.floor(rng() * existing))],
    rng,
  );
  const base = Date.now();
  let nextNew = existing + 1;
  let nextExisting = 0;
  const out: DomainEvent[] = [];
  kinds.forEach((kind, i) => {
    const id = kind === 'insert' ? nextNew++ : ids[nextExisting++]!;
    const fields = kind === 'insert' ? ['firstName', 'lastName', 'email'] : pick(rng, kind === 'user' ? USER_CHANGES : ADDRESS_CHANGES);
    const data = Object.fromEntries(fields.map((f) => [f, value(f, id, i)]));
    out.push(serviceEvent(kind === 'address' ? 'AddressChanged' : 'UserChanged', id, data, base + i, i));
  });
  return { events: out, existing, inserts, users, addresses: events - users };
}

/** The events committed to the domain topics by a domain service, a few thousand a transaction. */
async function publishEvents(events: DomainEvent[], c: { kafka: Kafka; config: BanyanConfig; catalog: EventCatalog; id: string }): Promise<void> {
  const { config, catalog } = c;
  const { partitions, replicationFactor } = config.kafka.topics;
  await ensureTopics(c.kafka, ['UserChanged', 'AddressChanged'].map((e) => ({ topic: catalog.definition(e)!.topic, numPartitions: partitions, replicationFactor })));
  const publisher = await createPublisher({ kafka: c.kafka, schemaRegistry: config.schemaRegistry, catalog }, `${c.id}.publisher`);
  try {
    for (let from = 0; from < events.length; from += PUBLISH_CHUNK) await publisher.publish(events.slice(from, from + PUBLISH_CHUNK));
  } finally {
    await publisher.close();
  }
}

/** Every topic the run made (its names all start with the run id), and its consumer groups. */
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
