import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { errorMessage } from '../core';
import type { PipelineKind, PipelineStatus } from './pipeline';
import { formatTable } from './table';

/**
 * The operator's window on a running Banyan: `/healthz` (the process answers), `/readyz` (every
 * pipeline runs), `/metrics` (Prometheus), `/status` (JSON) and `/` (the same as a page).
 * prom-client keeps the exposition format and the process metrics out of our code.
 */
export class StatusServer {
  private server: Server | undefined;
  private readonly registry = new Registry();

  constructor(
    private readonly statuses: () => PipelineStatus[],
    private readonly onError: (error: unknown, url: string) => void = () => undefined,
    /** More of the process to show under /status (e.g. the change types' states), by key. */
    private readonly extra: () => Record<string, unknown> = () => ({}),
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'banyan_process_' });
    // The same metrics for every kind of pipeline, named by kind and labelled with the pipeline's
    // name: banyan_source_records_total{source}, banyan_transform_records_total{transform}…
    type Pick = (s: PipelineStatus) => number;
    const common: Array<[typeof Counter | typeof Gauge, string, string, Pick]> = [
      [Counter, 'records_total', 'records committed to Kafka (sources: changes; transforms: events)', (s) => s.records],
      [Counter, 'dead_letters_total', 'records sent to the dead-letter topic', (s) => s.deadLetters],
      [Counter, 'transactions_total', 'Kafka transactions committed', (s) => s.transactions],
      [Gauge, 'up', '1 while the pipeline runs, 0 while it backs off after a failure or is stopped', (s) => (s.state === 'running' ? 1 : 0)],
    ];
    const byKind: Record<PipelineKind, Array<[typeof Counter | typeof Gauge, string, string, Pick]>> = {
      source: [
        [Gauge, 'schema_drift', '1 while a changelog source’s table has columns its triggers do not record (see docs/import.md)', (s) => (s.details.schemaDrift ? 1 : 0)],
        [Counter, 'incomplete_records_total', 'changes recorded without some of the table’s columns (header banyan.missing.columns)', (s) => Number(s.details.incompleteRecords ?? 0)],
        [Counter, 'forged_tags_total', 'changelog rows carrying Banyan’s origin tag written by another database user: passed on as changes, not dropped as echoes', (s) => Number(s.details.forgedTags ?? 0)],
      ],
      transform: [[Counter, 'inputs_total', 'input records a transform consumed and committed', (s) => Number(s.details.inputs ?? 0)]],
      sink: [
        [Counter, 'inputs_total', 'domain events a sink consumed and committed', (s) => Number(s.details.inputs ?? 0)],
        [Counter, 'noops_total', 'rows a sink would have written with the values they hold: not written (no-op suppression)', (s) => Number(s.details.noops ?? 0)],
        [Counter, 'stale_fields_total', 'event fields older than (or the same version as) what the target holds, by the version guard: not written', (s) => Number(s.details.stale ?? 0)],
        [Counter, 'observed_fields_total', 'fields of changes the target made itself, recorded in the version guard without a write', (s) => Number(s.details.observed ?? 0)],
        [Counter, 'refused_rows_total', 'rows the target database refused (dead-lettered with its error)', (s) => Number(s.details.refusedRows ?? 0)],
        [Gauge, 'waiting_rows', 'missing rows waiting for the events that give their NOT NULL columns', (s) => Number(s.details.waitingRows ?? 0)],
      ],
    };
    for (const kind of Object.keys(byKind) as PipelineKind[]) {
      for (const [Metric, name, help, pick] of [...common, ...byKind[kind]]) {
        new Metric({
          name: `banyan_${kind}_${name}`,
          help: `${kind}s: ${help}`,
          labelNames: [kind],
          registers: [this.registry],
          // Read at scrape time from the runners, which own the numbers.
          collect(this: Counter | Gauge) {
            this.reset();
            for (const s of statuses()) if (s.kind === kind) this.labels(s.name).inc(pick(s));
          },
        });
      }
    }
    // The lifecycle state of every change type the process serves: 1 for its current state.
    new Gauge({
      name: 'banyan_change_type_state',
      help: 'the lifecycle state of each change type (1 for the state it is in)',
      labelNames: ['type', 'state'],
      registers: [this.registry],
      collect(this: Gauge) {
        this.reset();
        const changeTypes = extra().changeTypes;
        if (!Array.isArray(changeTypes)) return;
        for (const { type, state } of changeTypes as Array<{ type: string; state: string }>) this.labels(type, state).set(1);
      },
    });
    // Counts by a second label, read from a map in the pipelines' details: never silent.
    const byLabel = (name: string, help: string, kind: PipelineKind, label: string, map: (s: PipelineStatus) => unknown) =>
      new Counter({
        name,
        help,
        labelNames: [kind, label],
        registers: [this.registry],
        collect(this: Counter) {
          this.reset();
          for (const s of statuses()) {
            if (s.kind !== kind) continue;
            for (const [value, count] of Object.entries((map(s) ?? {}) as Record<string, number>)) this.labels(s.name, value).inc(count);
          }
        },
      });
    byLabel('banyan_transform_dropped_total', 'transforms: input records deliberately turned into no event, by reason', 'transform', 'reason', (s) => s.details.dropped);
    byLabel('banyan_sink_dropped_total', 'sinks: events deliberately not written, by reason (unmapped, stale, lifecycle…)', 'sink', 'reason', (s) => s.details.dropped);
    byLabel('banyan_sink_reported_total', 'sinks: events reported instead of written, by lifecycle reason', 'sink', 'reason', (s) => s.details.reported);
    byLabel('banyan_sink_rows_written_total', 'sinks: rows the target changed, by operation', 'sink', 'operation', (s) => s.details.written);
    // A Salesforce sink's API budget (details.apiBudget): the org's use as Salesforce last reported it, and what the sink makes of it.
    const budgets = () => statuses().flatMap((s) => (s.kind === 'sink' && s.details.apiBudget ? [{ name: s.name, budget: s.details.apiBudget as { state: string; used: number | null; max: number | null } }] : []));
    const usage = (name: string, help: string, pick: (b: { used: number | null; max: number | null }) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ['sink'],
        registers: [this.registry],
        collect(this: Gauge) {
          this.reset();
          for (const { name: sink, budget } of budgets()) {
            const value = pick(budget);
            if (value !== null) this.labels(sink).set(value);
          }
        },
      });
    usage('banyan_salesforce_api_used', "the org's daily API requests used, as Sforce-Limit-Info last reported them to the sink", (b) => b.used);
    usage('banyan_salesforce_api_max', "the org's daily API request limit, as Sforce-Limit-Info last reported it", (b) => b.max);
    new Gauge({
      name: 'banyan_sink_api_budget_state',
      help: "a Salesforce sink's API budget state (1 for ok, slowing or paused)",
      labelNames: ['sink', 'state'],
      registers: [this.registry],
      collect(this: Gauge) {
        this.reset();
        for (const { name: sink, budget } of budgets()) this.labels(sink, budget.state).set(1);
      },
    });
  }

  async start(host: string, port: number): Promise<string> {
    this.server = createServer((req, res) => {
      // A handler that throws (a status that cannot be read) answers 500; it must not end the process.
      void this.handle(req.url ?? '/')
        .catch((error: unknown) => {
          this.onError(error, req.url ?? '/');
          return { status: 500, type: 'text/plain', body: `internal error: ${errorMessage(error)}\n` };
        })
        .then(({ status, type, body }) => {
          res.writeHead(status, { 'content-type': type });
          res.end(body);
        });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, resolve);
    });
    const address = this.server.address() as AddressInfo;
    return `http://${host}:${address.port}`;
  }

  private async handle(url: string): Promise<{ status: number; type: string; body: string }> {
    const statuses = this.statuses();
    switch (url.split('?')[0]) {
      case '/healthz':
        return { status: 200, type: 'text/plain', body: 'ok\n' };
      case '/readyz': {
        const waiting = statuses
          .filter((s) => s.state !== 'running')
          .map((s) => `${s.name}: ${s.state}${s.lastError ? ` (${s.lastError})` : ''}`);
        return waiting.length
          ? { status: 503, type: 'text/plain', body: `not ready: ${waiting.join(', ')}\n` }
          : { status: 200, type: 'text/plain', body: 'ready\n' };
      }
      case '/metrics':
        return { status: 200, type: this.registry.contentType, body: await this.registry.metrics() };
      case '/status': {
        const of = (kind: PipelineKind) => statuses.filter((s) => s.kind === kind);
        return {
          status: 200,
          type: 'application/json',
          body: JSON.stringify({ sources: of('source'), transforms: of('transform'), sinks: of('sink'), ...this.extra() }, null, 2),
        };
      }
      case '/':
        return { status: 200, type: 'text/html; charset=utf-8', body: statusPage(statuses) };
      default:
        return { status: 404, type: 'text/plain', body: 'not found\n' };
    }
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** The text table `banyan status` prints and the page shows. */
export function formatStatus(statuses: PipelineStatus[]): string {
  const rows = statuses.map((s) => [
    s.kind ?? 'source',
    s.name,
    s.state,
    String(s.records),
    String(s.deadLetters),
    s.lastCommitAt ?? '-',
    describe(s.details),
    s.lastError ?? '',
  ]);
  const header = ['KIND', 'PIPELINE', 'STATE', 'RECORDS', 'DLQ', 'LAST COMMIT', 'DETAILS', 'LAST ERROR'];
  return formatTable(header, rows);
}

function describe(details: PipelineStatus['details']): string {
  if (details.phase === 'snapshot') {
    const rows = Number(details.rows);
    const estimate = Math.max(Number(details.estimatedRows), rows, 1);
    return `snapshot ${rows}/${estimate} rows (${Math.floor((100 * rows) / estimate)}%)`;
  }
  return Object.entries(details)
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
}

function statusPage(statuses: PipelineStatus[]): string {
  const escape = (t: string) => t.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!);
  return `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="5"><title>Banyan</title>
<h1>Banyan</h1><pre>${escape(formatStatus(statuses))}</pre>
<p><a href="/status">status JSON</a> · <a href="/metrics">metrics</a> · <a href="/readyz">readyz</a></p>`;
}
