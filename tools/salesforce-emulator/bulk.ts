import { ORG } from './auth.js';
import { COLUMN_DELIMITERS, type ColumnDelimiter, LINE_ENDINGS, type LineEnding } from './bulk-csv.js';
import type { IngestJob, IngestOperation } from './bulk-jobs.js';
import { formatDateTime } from './clock.js';
import { ApiError, notFound } from './errors.js';
import { type EmulatorResponse, expectObject, json, parseJsonBody } from './http.js';
import type { Org } from './org.js';
import type { RestCall } from './rest.js';
import { methodNotAllowed } from './sobjects.js';

const OPERATIONS: readonly IngestOperation[] = ['insert', 'update', 'upsert', 'delete', 'hardDelete'];
/** Get All Jobs "returns up to 1000 result rows per request". */
const JOBS_PER_PAGE = 1000;
const RESULTS = { successfulResults: 'successful', failedResults: 'failed', unprocessedrecords: 'unprocessed' } as const;

/** A bad value for one of the request's enumerated properties, as Salesforce words it. */
const invalidValue = (property: string, value: unknown): ApiError =>
  new ApiError(400, 'API_ERROR', `Invalid value: '${value === undefined || value === null ? '' : String(value)}' supplied for property: '${property}'`);

function enumValue<T extends string>(body: Record<string, unknown>, property: string, allowed: readonly T[], fallback?: T): T {
  const value = body[property];
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) throw invalidValue(property, value);
  return value as T;
}

/** `jobs/ingest[/{jobId}[/batches | /successfulResults | /failedResults | /unprocessedrecords]]` (Bulk API 2.0 ingest). */
export function handleBulkIngest(org: Org, call: RestCall): EmulatorResponse {
  const [, , jobId, resource, ...extra] = call.segments;
  if (extra.length > 0) throw notFound();
  if (jobId === undefined) {
    if (call.method === 'POST') return createJob(org, call);
    if (call.method === 'GET') return listJobs(org, call);
    throw methodNotAllowed(call.method, ['GET', 'POST']);
  }
  const job = org.bulk.get(jobId);
  if (resource === undefined) {
    switch (call.method) {
      case 'GET':
        return json(200, jobInfo(org, job));
      case 'PATCH':
        return changeState(org, call, job);
      case 'DELETE':
        org.bulk.delete(job);
        return { status: 204 };
      default:
        throw methodNotAllowed(call.method, ['GET', 'PATCH', 'DELETE']);
    }
  }
  if (resource === 'batches') {
    if (call.method !== 'PUT') throw methodNotAllowed(call.method, ['PUT']);
    const contentType = String(call.headers['content-type'] ?? '');
    if (!/^text\/csv\s*(;|$)/i.test(contentType)) {
      throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', `Job data must be sent as text/csv, not '${contentType}'`);
    }
    org.bulk.upload(job, call.body);
    return { status: 201 };
  }
  if (resource in RESULTS) {
    if (call.method !== 'GET') throw methodNotAllowed(call.method, ['GET']);
    return { status: 200, body: org.bulk.results(job, RESULTS[resource as keyof typeof RESULTS]), contentType: 'text/csv' };
  }
  throw notFound();
}

function createJob(org: Org, call: RestCall): EmulatorResponse {
  const body = expectObject(parseJsonBody(call.body), 'the job');
  const objectName = typeof body.object === 'string' ? body.object : '';
  const object = org.schema.object(objectName);
  if (!object) throw new ApiError(400, 'INVALIDJOB', `InvalidJob : Unable to find object: ${objectName}`);
  const operation = enumValue(body, 'operation', OPERATIONS);
  enumValue(body, 'contentType', ['CSV'], 'CSV');
  const lineEnding = enumValue(body, 'lineEnding', Object.keys(LINE_ENDINGS) as LineEnding[], 'LF');
  const columnDelimiter = enumValue(body, 'columnDelimiter', Object.keys(COLUMN_DELIMITERS) as ColumnDelimiter[], 'COMMA');
  const extName = body.externalIdFieldName;
  let externalIdField;
  if (operation === 'upsert') {
    const name = typeof extName === 'string' ? extName : '';
    externalIdField = object.field(name);
    if (!externalIdField?.externalId) {
      throw new ApiError(400, 'INVALIDJOB', `InvalidJob : Field name provided, ${name} does not match an External ID for ${object.name}`);
    }
  } else if (extName !== undefined && extName !== null) {
    throw new ApiError(400, 'INVALIDJOB', `InvalidJob : An External ID field name can only be given for an upsert job, not ${operation}`);
  }
  const job = org.bulk.create({
    object, operation, lineEnding, columnDelimiter, apiVersion: call.version,
    ...(externalIdField ? { externalIdField } : {}),
  });
  return json(200, { ...common(job), ...openOnly(job), lineEnding: job.lineEnding, columnDelimiter: job.columnDelimiter });
}

function changeState(org: Org, call: RestCall, job: IngestJob): EmulatorResponse {
  const body = expectObject(parseJsonBody(call.body), 'the request');
  const state = enumValue(body, 'state', ['Open', 'UploadComplete', 'InProgress', 'JobComplete', 'Failed', 'Aborted']);
  if (state === 'UploadComplete') org.bulk.close(job);
  else if (state === 'Aborted') org.bulk.abort(job);
  else throw new ApiError(400, 'INVALIDJOBSTATE', `Unable to set the job state to ${state}: use UploadComplete to close a job or Aborted to abort it`);
  return json(200, common(job));
}

function listJobs(org: Org, call: RestCall): EmulatorResponse {
  const jobType = call.query.get('jobType');
  const pkChunking = call.query.get('isPkChunkingEnabled');
  const concurrencyMode = call.query.get('concurrencyMode');
  const locator = call.query.get('queryLocator');
  if (jobType !== null && !['BigObjectIngest', 'Classic', 'V2Ingest'].includes(jobType)) throw invalidValue('jobType', jobType);
  if (locator !== null && !/^750[A-Za-z0-9]{12}([A-Z0-5]{3})?$/.test(locator)) {
    throw new ApiError(400, 'INVALID_QUERY_LOCATOR', `invalid query locator: ${locator}`);
  }
  // Every emulated job is a Bulk API 2.0 job, processed in parallel mode, without PK chunking.
  const none = (jobType !== null && jobType !== 'V2Ingest') || pkChunking === 'true'
    || (concurrencyMode !== null && concurrencyMode.toLowerCase() !== 'parallel');
  // Ids grow with creation, base62 digits in ASCII order: the page resumes at the locator's job, or the next one if it went.
  const jobs = none ? [] : org.bulk.list().filter((job) => locator === null || job.id.slice(0, 15) >= locator.slice(0, 15));
  const page = jobs.slice(0, JOBS_PER_PAGE);
  const next = jobs[JOBS_PER_PAGE];
  let nextRecordsUrl: string | null = null;
  if (next) {
    const params = new URLSearchParams(call.query);
    params.set('queryLocator', next.id);
    nextRecordsUrl = `/services/data/v${call.version}/jobs/ingest?${params.toString()}`;
  }
  return json(200, {
    done: next === undefined,
    records: page.map((job) => ({
      ...common(job), jobType: 'V2Ingest', ...openOnly(job), lineEnding: job.lineEnding, columnDelimiter: job.columnDelimiter,
    })),
    nextRecordsUrl,
  });
}

/** The fields every job answer has, in Salesforce's order (as in the Close or Abort answer). */
function common(job: IngestJob): Record<string, unknown> {
  return {
    id: job.id,
    operation: job.operation,
    object: job.object.name,
    createdById: ORG.userId,
    createdDate: formatDateTime(job.createdDate),
    systemModstamp: formatDateTime(job.systemModstamp),
    state: job.state,
    ...(job.externalIdField ? { externalIdFieldName: job.externalIdField.name } : {}),
    concurrencyMode: 'Parallel',
    contentType: 'CSV',
    apiVersion: Number(job.apiVersion),
  };
}

/** `contentUrl` "is only valid if the job is in Open state", and Salesforce leaves it out of the answers of other states. */
function openOnly(job: IngestJob): Record<string, unknown> {
  return job.state === 'Open' ? { contentUrl: `services/data/v${job.apiVersion}/jobs/ingest/${job.id}/batches` } : {};
}

function jobInfo(org: Org, job: IngestJob): Record<string, unknown> {
  return {
    ...common(job),
    jobType: 'V2Ingest',
    ...openOnly(job),
    lineEnding: job.lineEnding,
    columnDelimiter: job.columnDelimiter,
    numberRecordsProcessed: job.numberRecordsProcessed,
    numberRecordsFailed: job.numberRecordsFailed,
    retries: 0,
    ...org.bulk.timings(job),
    apexProcessingTime: 0,
    ...(job.errorMessage !== undefined ? { errorMessage: job.errorMessage } : {}),
  };
}
