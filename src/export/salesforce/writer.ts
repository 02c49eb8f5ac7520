import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import type { Connection } from 'jsforce';
import { sleep } from '../../core/time';
import type { SalesforceClient } from '../../clients/salesforce/client';
import type { WrittenValue } from '../../runtime/salesforce-written';

/** One record to upsert: its external id and the fields to set (null clears a field). */
export interface RecordWrite {
  externalId: string;
  values: Record<string, WrittenValue>;
}

/** What Salesforce answered for one record. */
/** `created` undefined: landed, but Salesforce did not say whether it created the record (Bulk results not read). */
export type RecordOutcome = { ok: true; created?: boolean } | { ok: false; statusCode: string; message: string; fields: string[] };

export interface WriterOptions {
  object: string;
  externalIdField: string;
  maxRecordsPerCall: number;
  bulkPollMs: number;
  bulkMaxPollMs: number;
  /** Awaited before every call: the API budget may slow or pause the sink here. */
  admit: () => Promise<void>;
  signal: AbortSignal;
}

/** A Bulk API 2.0 job's state, as `GET jobs/ingest/{id}` answers it (the fields the sink reads). */
interface JobInfo {
  id: string;
  state: 'Open' | 'UploadComplete' | 'InProgress' | 'JobComplete' | 'Failed' | 'Aborted';
  numberRecordsProcessed?: number;
  numberRecordsFailed?: number;
  errorMessage?: string | null;
}

/** The Bulk API 2.0 CSV cell that sets a field to null (an empty cell leaves it as it is). */
const BULK_NULL = '#N/A';

/**
 * Upserts records by external id, the two ways Salesforce offers: sObject Collections (at most 200
 * records a call, `allOrNone: false`, an outcome per record) and a Bulk API 2.0 ingest job (CSV,
 * polled, outcomes from its failed and unprocessed results). Whole-call failures (429,
 * REQUEST_LIMIT_EXCEEDED, 5xx, an ended session, a dropped connection) are retried by the client;
 * per-record outcomes are the caller's to act on.
 */
export class SalesforceWriter {
  /** Calls made, by kind, for status and the benchmark. */
  readonly calls = { collections: 0, bulk: 0 };
  readonly jobs = { created: 0, records: 0 };

  constructor(
    private readonly client: SalesforceClient,
    private readonly options: WriterOptions,
  ) {}

  /** Through sObject Collections, in calls of at most maxRecordsPerCall records. */
  async collections(records: RecordWrite[]): Promise<Map<string, RecordOutcome>> {
    const { object, externalIdField, maxRecordsPerCall } = this.options;
    const outcomes = new Map<string, RecordOutcome>();
    for (let start = 0; start < records.length; start += maxRecordsPerCall) {
      const chunk = records.slice(start, start + maxRecordsPerCall);
      const body = JSON.stringify({
        allOrNone: false,
        records: chunk.map((r) => ({ attributes: { type: object }, ...r.values, [externalIdField]: r.externalId })),
      });
      const answers = await this.call('sink.collections', `upsert of ${chunk.length} ${object} records by ${externalIdField}`, (conn) =>
        conn.request<CollectionsAnswer[]>({ method: 'PATCH', url: `/composite/sobjects/${object}/${externalIdField}`, body, headers: { 'Content-Type': 'application/json' } }),
      );
      this.calls.collections++;
      chunk.forEach((record, i) => {
        const answer = answers[i];
        if (answer?.success) outcomes.set(record.externalId, { ok: true, created: answer.created === true });
        else {
          const error = answer?.errors?.[0];
          outcomes.set(record.externalId, { ok: false, statusCode: error?.statusCode ?? 'UNKNOWN_RESULT', message: error?.message ?? 'Salesforce gave no result for this record', fields: error?.fields ?? [] });
        }
      });
    }
    return outcomes;
  }

  /**
   * Through one Bulk API 2.0 ingest job. Records the job did not process (an aborted or failed
   * job) are answered UNPROCESSED, which the caller retries.
   */
  async bulk(records: RecordWrite[]): Promise<Map<string, RecordOutcome>> {
    const { object, externalIdField } = this.options;
    const columns = [externalIdField, ...new Set(records.flatMap((r) => Object.keys(r.values)).filter((c) => c !== externalIdField))];
    const csv = stringify(
      // An empty cell leaves a field as it is: null and '' (which Collections stores as null) are #N/A.
      records.map((r) => columns.map((c) => (c === externalIdField ? r.externalId : !(c in r.values) ? '' : r.values[c] === null || r.values[c] === '' ? BULK_NULL : String(r.values[c])))),
      { header: true, columns, record_delimiter: 'unix' },
    );
    const job = await this.bulkCall('create a Bulk API 2.0 ingest job', (conn) =>
      conn.request<JobInfo>({
        method: 'POST',
        url: '/jobs/ingest',
        body: JSON.stringify({ object, externalIdFieldName: externalIdField, contentType: 'CSV', operation: 'upsert', lineEnding: 'LF' }),
        headers: { 'Content-Type': 'application/json' },
      }),
    );
    this.jobs.created++;
    this.jobs.records += records.length;
    try {
      return await this.runJob(job, records, csv);
    } catch (error) {
      // A job left behind could land its (older) values after the retry's: aborted, as far as it can be.
      await this.client
        .call('sink.bulk', `abort job ${job.id}`, (conn) => conn.request({ method: 'PATCH', url: `/jobs/ingest/${job.id}`, body: JSON.stringify({ state: 'Aborted' }), headers: { 'Content-Type': 'application/json' } }))
        .catch(() => undefined);
      throw error;
    }
  }

  /** Upload, close, poll and results of a created job. */
  private async runJob(job: JobInfo, records: RecordWrite[], csv: string): Promise<Map<string, RecordOutcome>> {
    const { externalIdField } = this.options;
    await this.bulkCall(`upload ${records.length} records to job ${job.id}`, (conn) =>
      conn.request({ method: 'PUT', url: `/jobs/ingest/${job.id}/batches`, body: csv, headers: { 'Content-Type': 'text/csv' } }),
    );
    await this.bulkCall(`close job ${job.id}`, (conn) =>
      conn.request({ method: 'PATCH', url: `/jobs/ingest/${job.id}`, body: JSON.stringify({ state: 'UploadComplete' }), headers: { 'Content-Type': 'application/json' } }),
    );
    let info = job;
    // The first look after about a millisecond per record (Salesforce takes longer): every poll is an API call.
    for (let wait = Math.max(this.options.bulkPollMs, records.length); ; wait = Math.min(wait * 2, Math.max(this.options.bulkMaxPollMs, wait))) {
      await sleep(wait, this.options.signal);
      info = await this.bulkCall(`state of job ${job.id}`, (conn) => conn.request<JobInfo>({ method: 'GET', url: `/jobs/ingest/${job.id}` }));
      if (info.state === 'JobComplete' || info.state === 'Failed' || info.state === 'Aborted') break;
    }
    const outcomes = new Map<string, RecordOutcome>();
    if ((info.numberRecordsFailed ?? 0) > 0) {
      for (const row of await this.results(job.id, 'failedResults')) {
        const id = row[externalIdField];
        if (id !== undefined) outcomes.set(id, failedOutcome(row.sf__Error ?? ''));
      }
    }
    if ((info.numberRecordsProcessed ?? 0) < records.length) {
      for (const row of await this.results(job.id, 'unprocessedrecords')) {
        const id = row[externalIdField];
        if (id !== undefined) outcomes.set(id, { ok: false, statusCode: 'UNPROCESSED', message: `job ${job.id} ended ${info.state} before this record${info.errorMessage ? `: ${info.errorMessage}` : ''}`, fields: [] });
      }
    }
    // What is in neither list landed. (Salesforce matches external ids regardless of case.)
    const answered = new Map([...outcomes].map(([id, outcome]) => [id.toLowerCase(), outcome]));
    const all = new Map<string, RecordOutcome>();
    for (const r of records) all.set(r.externalId, answered.get(r.externalId.toLowerCase()) ?? { ok: true });
    return all;
  }

  private async results(jobId: string, kind: 'failedResults' | 'unprocessedrecords'): Promise<Array<Record<string, string>>> {
    const body = await this.bulkCall(`${kind} of job ${jobId}`, (conn) =>
      conn.request<unknown>({ method: 'GET', url: `/jobs/ingest/${jobId}/${kind}/`, headers: { Accept: 'text/csv' } }),
    );
    // jsforce parses a text/csv answer itself; a plain string is parsed here.
    if (typeof body === 'string') return body.trim() === '' ? [] : (parse(body, { columns: true, skip_empty_lines: true }) as Array<Record<string, string>>);
    return Array.isArray(body) ? (body as Array<Record<string, string>>) : [];
  }

  private async bulkCall<T>(what: string, fn: (conn: Connection) => PromiseLike<T>): Promise<T> {
    const answer = await this.call('sink.bulk', what, fn);
    this.calls.bulk++;
    return answer;
  }

  private async call<T>(purpose: string, what: string, fn: (conn: Connection) => PromiseLike<T>): Promise<T> {
    await this.options.admit();
    return this.client.call(purpose, what, fn, this.options.signal);
  }
}

interface CollectionsAnswer {
  id?: string;
  success: boolean;
  created?: boolean;
  errors?: Array<{ statusCode?: string; message?: string; fields?: string[] }>;
}

/**
 * A failed-results `sf__Error`, as Bulk API 2.0 writes it: `STATUS_CODE:message:fields --`
 * (`REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --`).
 */
export function failedOutcome(error: string): RecordOutcome & { ok: false } {
  const text = error.replace(/\s*--\s*$/, '');
  const colon = text.indexOf(':');
  if (colon < 0) return { ok: false, statusCode: text || 'UNKNOWN_RESULT', message: error, fields: [] };
  const statusCode = text.slice(0, colon);
  const rest = text.slice(colon + 1);
  const last = rest.lastIndexOf(':');
  const message = last < 0 ? rest : rest.slice(0, last);
  const fields = last < 0 ? [] : rest.slice(last + 1).split(',').map((f) => f.trim()).filter((f) => f !== '');
  return { ok: false, statusCode, message: message.trim(), fields };
}
