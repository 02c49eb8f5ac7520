import { type CsvFormat, cellValue, readCsv, resultError, writeCsv } from './bulk-csv.js';
import type { EmulatorClock } from './clock.js';
import { ApiError, notFound } from './errors.js';
import { upsertKeys } from './external-id.js';
import { makeId, normalizeId } from './ids.js';
import type { FieldDef, ObjectDef, Schema } from './schema.js';
import type { Store, Transaction } from './store.js';

export type IngestOperation = 'insert' | 'update' | 'upsert' | 'delete' | 'hardDelete';
export type IngestJobState = 'Open' | 'UploadComplete' | 'InProgress' | 'JobComplete' | 'Failed' | 'Aborted';

/** What the engine needs of the org: its objects, its records, its clock and its transactions. */
export interface BulkHost {
  schema: Schema;
  store: Store;
  clock: EmulatorClock;
  transact<T>(changeOrigin: string, work: (tx: Transaction) => T): T;
}

export interface BulkOptions {
  /** Largest upload, counted as its base64-encoded size (default 150,000,000: "150 MB of base64 encoded content"). */
  maxUploadBytes?: number;
  /** DailyBulkApiBatches Max (default 15,000 a rolling 24 hours, shared with Bulk API 1.0). */
  dailyBatches?: number;
  /** Records processed per 24 hours (default 150,000,000). */
  dailyRecords?: number;
}

/** Salesforce splits a job into batches of 10,000 records; each counts against DailyBulkApiBatches. */
export const RECORDS_PER_BATCH = 10_000;
/** "When DML is performed with Bulk API, each chunk of 200 records is processed as a separate transaction." */
export const RECORDS_PER_CHUNK = 200;
const JOB_LIFESPAN_MS = 7 * 24 * 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

type Outcome = { id: string; created: boolean } | { id: string; error: string };

export interface IngestJob extends CsvFormat {
  id: string;
  operation: IngestOperation;
  object: ObjectDef;
  externalIdField?: FieldDef;
  /** The version of the URL the job was created on, e.g. `62.0`. */
  apiVersion: string;
  createdDate: number;
  systemModstamp: number;
  state: IngestJobState;
  /** Every PUT's body; more than one makes closing the job fail, as in Salesforce. */
  uploads: string[];
  /** The uploaded header as written, and the data rows; read when processing starts. */
  header?: string[];
  rows?: string[][];
  /** Per data row: what became of it; unset while unprocessed. */
  outcomes: (Outcome | undefined)[];
  next: number;
  numberRecordsProcessed: number;
  numberRecordsFailed: number;
  startedAt?: number;
  finishedAt?: number;
  activeMs: number;
  errorMessage?: string;
}

export interface BulkJobSummary {
  id: string;
  object: string;
  operation: IngestOperation;
  state: IngestJobState;
  numberRecordsProcessed: number;
  numberRecordsFailed: number;
  numberRecordsUnprocessed: number;
  errorMessage?: string;
}

export interface BulkUsage {
  batches: { used: number; max: number };
  records: { used: number; max: number };
}

const invalidJobState = (message: string): ApiError => new ApiError(400, 'INVALIDJOBSTATE', message);

/** The daily allocations processing draws on, counted per 24-hour window of the emulator clock (as DailyApiRequests is). */
class BulkAllocation {
  private batchesUsed = 0;
  private recordsUsed = 0;
  private windowStart: number;

  constructor(private readonly clock: EmulatorClock, private batchesMax: number, private recordsMax: number) {
    this.windowStart = clock.now();
  }

  private roll(): void {
    if (this.clock.now() - this.windowStart < DAY_MS) return;
    this.batchesUsed = 0;
    this.recordsUsed = 0;
    this.windowStart = this.clock.now();
  }

  /** Takes one batch of `records`; the job's errorMessage when an allocation is spent instead. */
  take(records: number): string | undefined {
    this.roll();
    if (this.batchesUsed >= this.batchesMax) {
      return `ExceededQuota : The daily allocation of ${this.batchesMax} Bulk API batches is used up; the remaining records were not processed.`;
    }
    if (this.recordsUsed + records > this.recordsMax) {
      return `ExceededQuota : The daily limit of ${this.recordsMax} Bulk API records is exceeded; the remaining records were not processed.`;
    }
    this.batchesUsed += 1;
    this.recordsUsed += records;
    return undefined;
  }

  set(values: { batchesUsed?: number; batchesMax?: number; recordsUsed?: number; recordsMax?: number }): void {
    this.roll();
    this.batchesUsed = values.batchesUsed ?? this.batchesUsed;
    this.batchesMax = values.batchesMax ?? this.batchesMax;
    this.recordsUsed = values.recordsUsed ?? this.recordsUsed;
    this.recordsMax = values.recordsMax ?? this.recordsMax;
  }

  current(): BulkUsage {
    this.roll();
    return { batches: { used: this.batchesUsed, max: this.batchesMax }, records: { used: this.recordsUsed, max: this.recordsMax } };
  }
}

/** One data row turned into the write it asks for, or the error that fails it before any write. */
interface RowWrite {
  input: Record<string, unknown>;
  /** The row's Id cell, for update, delete and hardDelete. */
  rawId: string;
  problem?: ApiError;
}

/**
 * Bulk API 2.0 ingest jobs and their processing. Processing is asynchronous and stepwise: a
 * closed job waits in a queue; each step (a timer of 0 ms on the emulator clock, never inside the
 * call that closed the job) either starts a job (UploadComplete → InProgress, reading its CSV) or
 * writes one chunk of 200 records as one transaction through the store. Jobs in the queue take
 * turns, one step each. `pause()` stops the timer so a test can `step()` by hand.
 */
export class BulkIngest {
  private readonly jobs = new Map<string, IngestJob>();
  private counter = 0;
  private queue: string[] = [];
  private paused = false;
  private cancelTick: (() => void) | undefined;
  private readonly allocation: BulkAllocation;
  readonly maxUploadBytes: number;

  constructor(private readonly host: BulkHost, opts: BulkOptions = {}) {
    this.maxUploadBytes = opts.maxUploadBytes ?? 150_000_000;
    this.allocation = new BulkAllocation(host.clock, opts.dailyBatches ?? 15_000, opts.dailyRecords ?? 150_000_000);
  }

  create(params: { object: ObjectDef; operation: IngestOperation; externalIdField?: FieldDef; apiVersion: string } & CsvFormat): IngestJob {
    this.purgeExpired();
    const now = this.host.clock.now();
    const job: IngestJob = {
      ...params,
      id: makeId('750', ++this.counter),
      createdDate: now,
      systemModstamp: now,
      state: 'Open',
      uploads: [],
      outcomes: [],
      next: 0,
      numberRecordsProcessed: 0,
      numberRecordsFailed: 0,
      activeMs: 0,
    };
    this.jobs.set(job.id, job);
    return job;
  }

  /** The job with this id (15 or 18 characters), or 404 NOT_FOUND. */
  get(rawId: string): IngestJob {
    this.purgeExpired();
    const id = normalizeId(rawId);
    const job = id ? this.jobs.get(id) : undefined;
    if (!job) throw notFound();
    return job;
  }

  /** Every job in creation order. */
  list(): IngestJob[] {
    this.purgeExpired();
    return [...this.jobs.values()];
  }

  upload(job: IngestJob, body: string): void {
    if (job.state !== 'Open') throw invalidJobState(`Data can only be uploaded to an Open job; job ${job.id} is ${job.state}`);
    const base64Bytes = 4 * Math.ceil(Buffer.byteLength(body, 'utf8') / 3);
    if (base64Bytes > this.maxUploadBytes) {
      throw new ApiError(400, 'CLIENTINPUTERROR', `Failed to read request. Exceeded max size limit of ${this.maxUploadBytes}`);
    }
    job.uploads.push(body);
    this.touch(job);
  }

  close(job: IngestJob): void {
    if (job.state !== 'Open') throw invalidJobState(`Unable to close job ${job.id}: the job is ${job.state}, and only an Open job can be closed`);
    if (job.uploads.length > 1) {
      throw new ApiError(400, 'BULK_API_ERROR', `Found multipe contents for job: <${job.id.slice(0, 15)}>, please 'Close' / 'Abort' / 'Delete' the current Job then create a new Job and make sure you only do 'PUT' once on a given Job.`);
    }
    job.state = 'UploadComplete';
    this.touch(job);
    this.queue.push(job.id);
    this.kick();
  }

  abort(job: IngestJob): void {
    if (job.state === 'JobComplete' || job.state === 'Failed') throw invalidJobState('Aborting already Completed Job not allowed');
    if (job.state === 'Aborted') throw invalidJobState('Aborting already Aborted Job not allowed');
    job.state = 'Aborted';
    this.finish(job);
  }

  delete(job: IngestJob): void {
    if (job.state === 'Open' || job.state === 'InProgress') {
      throw invalidJobState(`Unable to delete job ${job.id}: the job is ${job.state}; only UploadComplete, JobComplete, Aborted or Failed jobs can be deleted`);
    }
    this.jobs.delete(job.id);
    this.queue = this.queue.filter((id) => id !== job.id);
  }

  /** `successfulResults`, `failedResults` or `unprocessedrecords` as CSV; only once the job has stopped. */
  results(job: IngestJob, kind: 'successful' | 'failed' | 'unprocessed'): string {
    if (job.state !== 'JobComplete' && job.state !== 'Failed' && job.state !== 'Aborted') {
      throw invalidJobState(`Results are available once the job is JobComplete, Failed or Aborted; job ${job.id} is ${job.state}`);
    }
    const table = this.table(job);
    if (kind === 'unprocessed' && table === undefined) return job.uploads.join('');
    const [header, rows] = table ?? [[], []];
    const out: string[][] = [];
    if (kind === 'successful') {
      out.push(['sf__Id', 'sf__Created', ...header]);
      rows.forEach((row, i) => {
        const outcome = job.outcomes[i];
        if (outcome && 'created' in outcome) out.push([outcome.id, String(outcome.created), ...row]);
      });
    } else if (kind === 'failed') {
      // "sf__Id … Available in API version 53 and later."
      const withId = Number(job.apiVersion) >= 53;
      out.push([...(withId ? ['sf__Id'] : []), 'sf__Error', ...header]);
      rows.forEach((row, i) => {
        const outcome = job.outcomes[i];
        if (outcome && 'error' in outcome) out.push([...(withId ? [outcome.id] : []), outcome.error, ...row]);
      });
    } else {
      out.push([...header]);
      rows.forEach((row, i) => {
        if (job.outcomes[i] === undefined) out.push(row);
      });
    }
    return writeCsv(out, job);
  }

  /** The uploaded header and rows: as read when processing started, or read now for a job stopped before that; undefined when unreadable. */
  private table(job: IngestJob): [string[], string[][]] | undefined {
    if (job.header && job.rows) return [job.header, job.rows];
    try {
      const [header = [], ...rows] = readCsv(job.uploads.join(''), job);
      return [header, rows];
    } catch {
      return undefined;
    }
  }

  summaries(): BulkJobSummary[] {
    return this.list().map((job) => ({
      id: job.id,
      object: job.object.name,
      operation: job.operation,
      state: job.state,
      numberRecordsProcessed: job.numberRecordsProcessed,
      numberRecordsFailed: job.numberRecordsFailed,
      numberRecordsUnprocessed: job.rows ? job.rows.length - job.numberRecordsProcessed : 0,
      ...(job.errorMessage !== undefined ? { errorMessage: job.errorMessage } : {}),
    }));
  }

  usage(): BulkUsage {
    return this.allocation.current();
  }

  setUsage(values: { batchesUsed?: number; batchesMax?: number; recordsUsed?: number; recordsMax?: number }): void {
    for (const [key, value] of Object.entries(values)) {
      if (value !== undefined && (!Number.isInteger(value) || value < 0)) throw new RangeError(`${key} must be a count of zero or more, got ${value}`);
    }
    this.allocation.set(values);
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Jobs waiting for a processing step. */
  get pending(): number {
    return this.queue.length;
  }

  pause(): void {
    this.paused = true;
    this.cancelTick?.();
    this.cancelTick = undefined;
  }

  resume(): void {
    this.paused = false;
    this.kick();
  }

  /** Runs up to `steps` processing steps now (paused or not); how many ran. */
  step(steps = 1): number {
    let ran = 0;
    while (ran < steps && this.runOne()) ran += 1;
    return ran;
  }

  /** Forgets every job (admin reset); allocations are kept, as API usage is. */
  clear(): void {
    this.jobs.clear();
    this.queue = [];
  }

  stop(): void {
    this.pause();
  }

  private kick(): void {
    if (this.paused || this.cancelTick || this.queue.length === 0) return;
    this.cancelTick = this.host.clock.schedule(0, () => {
      this.cancelTick = undefined;
      this.runOne();
      this.kick();
    });
  }

  /** One step of the job at the head of the queue; false when no job is waiting. */
  private runOne(): boolean {
    for (;;) {
      const id = this.queue.shift();
      if (id === undefined) return false;
      const job = this.jobs.get(id);
      if (!job || (job.state !== 'UploadComplete' && job.state !== 'InProgress')) continue;
      try {
        if (job.state === 'UploadComplete') this.start(job);
        else this.processChunk(job);
      } catch (err) {
        // Not a record error (those become results): the job fails with what was done kept.
        job.state = 'Failed';
        job.errorMessage = `UNKNOWN_EXCEPTION : ${(err as Error).message}`;
        this.finish(job);
      }
      if (job.state === 'InProgress') this.queue.push(job.id);
      return true;
    }
  }

  /** UploadComplete → InProgress: reads the CSV and checks its header against the object. */
  private start(job: IngestJob): void {
    job.state = 'InProgress';
    job.startedAt = this.host.clock.now();
    this.touch(job);
    let table: string[][];
    try {
      table = readCsv(job.uploads.join(''), job);
    } catch (err) {
      return this.fail(job, `InvalidBatch : Failed to parse the CSV data: ${(err as Error).message}`);
    }
    const [header = [], ...rows] = table;
    job.header = header;
    job.rows = rows;
    const seen = new Set<string>();
    for (const name of header) {
      const field = job.object.field(name);
      if (!field) return this.fail(job, `InvalidBatch : Field name not found : ${name}`);
      if (seen.has(field.name)) return this.fail(job, `InvalidBatch : Duplicate field name : ${name}`);
      seen.add(field.name);
    }
    if (rows.length === 0) this.complete(job);
  }

  private processChunk(job: IngestJob): void {
    const rows = job.rows as string[][];
    const start = job.next;
    if (start % RECORDS_PER_BATCH === 0) {
      const refusal = this.allocation.take(Math.min(RECORDS_PER_BATCH, rows.length - start));
      if (refusal !== undefined) return this.fail(job, refusal);
    }
    const began = this.host.clock.now();
    const end = Math.min(start + RECORDS_PER_CHUNK, rows.length);
    const writes = rows.slice(start, end).map((row) => this.rowWrite(job, row));
    const keys = job.externalIdField ? upsertKeys(job.externalIdField, writes.map((w) => w.input)) : [];
    const outcomes = this.host.transact(`com/salesforce/api/bulkapi/${job.apiVersion}`, (tx) =>
      writes.map((write, i) => this.write(job, tx, write, keys[i])));
    outcomes.forEach((outcome, i) => {
      job.outcomes[start + i] = outcome;
      if ('error' in outcome) job.numberRecordsFailed += 1;
    });
    job.numberRecordsProcessed += outcomes.length;
    job.next = end;
    job.activeMs += this.host.clock.now() - began;
    this.touch(job);
    if (end >= rows.length) this.complete(job);
  }

  private rowWrite(job: IngestJob, row: string[]): RowWrite {
    const header = job.header as string[];
    const write: RowWrite = { input: {}, rawId: '' };
    header.forEach((name, col) => {
      const field = job.object.field(name) as FieldDef;
      const cell = row[col] ?? '';
      if (field.name === 'Id' && job.operation !== 'insert' && job.operation !== 'upsert') {
        write.rawId = cell;
        return;
      }
      // "Empty field values are ignored when you update records. To set a field value to null, use a field value of #N/A."
      if (cell === '' || write.problem) return;
      try {
        write.input[field.name] = field.name === 'Id' ? cell : cellValue(field, cell);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        write.problem = err;
      }
    });
    return write;
  }

  /** One record's write inside the chunk's transaction; record errors become its outcome. */
  private write(job: IngestJob, tx: Transaction, write: RowWrite, key: string | ApiError | undefined): Outcome {
    const { store } = this.host;
    const def = job.object;
    let failedId = '';
    try {
      if (job.operation === 'insert') {
        if (write.input.Id !== undefined) throw new ApiError(400, 'INVALID_FIELD', 'cannot specify Id in an insert call', ['Id']);
        if (write.problem) throw write.problem;
        return { id: store.create(tx, def, write.input), created: true };
      }
      if (job.operation === 'upsert') {
        const field = job.externalIdField as FieldDef;
        if (write.problem) throw write.problem;
        if (key instanceof ApiError) throw key;
        return store.upsert(tx, def, field, key as string, write.input);
      }
      failedId = normalizeId(write.rawId) ?? write.rawId;
      const id = this.recordId(job, write.rawId);
      if (job.operation === 'update') {
        if (write.problem) throw write.problem;
        store.update(tx, def, id, write.input);
      } else if (job.operation === 'delete') {
        store.remove(tx, def, id);
      } else {
        store.hardDelete(tx, def, id);
      }
      return { id, created: false };
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (job.operation === 'upsert' && typeof key === 'string') {
        // The record the upsert would have updated, if exactly one matched (a failed write changed nothing).
        const matches = store.findActiveBy(def, job.externalIdField as FieldDef, key);
        failedId = matches.length === 1 ? (matches[0]?.Id as string) : '';
      }
      // A well-formed id that names no record: the API's answer, not REST's NOT_FOUND.
      const error = err.errorCode === 'NOT_FOUND' ? new ApiError(400, 'INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id', []) : err;
      return { id: failedId, error: resultError(error) };
    }
  }

  private recordId(job: IngestJob, rawId: string): string {
    const call = job.operation === 'update' ? 'an update' : 'a delete';
    if (rawId === '') throw new ApiError(400, 'MISSING_ARGUMENT', `Id not specified in ${call} call`, []);
    const id = normalizeId(rawId);
    if (!id) throw new ApiError(400, 'MALFORMED_ID', `malformed id ${rawId}`, ['Id']);
    if (id.slice(0, 3) !== job.object.keyPrefix) {
      throw new ApiError(400, 'MALFORMED_ID', `${job.object.label} ID: id value of incorrect type: ${rawId}`, ['Id']);
    }
    return id;
  }

  private complete(job: IngestJob): void {
    job.state = 'JobComplete';
    this.finish(job);
  }

  private fail(job: IngestJob, errorMessage: string): void {
    job.state = 'Failed';
    job.errorMessage = errorMessage;
    this.finish(job);
  }

  private finish(job: IngestJob): void {
    job.finishedAt = this.host.clock.now();
    this.queue = this.queue.filter((id) => id !== job.id);
    this.touch(job);
  }

  private touch(job: IngestJob): void {
    job.systemModstamp = this.host.clock.now();
  }

  /** "Jobs that are older than 7 days are deleted": by creation date on the emulator clock, any job not being processed. */
  private purgeExpired(): void {
    const cutoff = this.host.clock.now() - JOB_LIFESPAN_MS;
    for (const job of this.jobs.values()) {
      if (job.createdDate < cutoff && job.state !== 'InProgress' && job.state !== 'UploadComplete') this.jobs.delete(job.id);
    }
  }

  /** The job info fields that the total processing time and friends are derived from. */
  timings(job: IngestJob): { totalProcessingTime: number; apiActiveProcessingTime: number } {
    const end = job.finishedAt ?? this.host.clock.now();
    return {
      totalProcessingTime: job.startedAt === undefined ? 0 : Math.max(0, end - job.startedAt),
      apiActiveProcessingTime: job.activeMs,
    };
  }
}

