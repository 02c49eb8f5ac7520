import { bearerToken } from './auth.js';
import { handleBulkIngest } from './bulk.js';
import { handleCollections } from './composite.js';
import { ApiError, notFound, sessionExpired } from './errors.js';
import { type EmulatorRequest, type EmulatorResponse, json } from './http.js';
import type { Org } from './org.js';
import { handleSObjects, methodNotAllowed } from './sobjects.js';
import { runSoql } from './soql.js';
import { handleTooling } from './tooling.js';

export const OLDEST_VERSION = 50;

/** A call under `/services/data/vXX.X/`, with the path split after the version. */
export interface RestCall {
  method: string;
  version: string;
  segments: string[];
  query: URLSearchParams;
  headers: EmulatorRequest['headers'];
  body: string;
  /** What CDC reports as changeOrigin for the changes this call makes. */
  changeOrigin: string;
}

const DEFAULT_BATCH_SIZE = 2000;
const MIN_BATCH_SIZE = 200;

function releaseLabel(version: number): string {
  const offset = version - OLDEST_VERSION;
  const season = ['Winter', 'Spring', 'Summer'][offset % 3] as string;
  return `${season} '${21 + Math.floor(offset / 3)}`;
}

/** `GET /services/data`: every version from 50.0 to the emulator's own; needs no session, as in Salesforce. */
export function listVersions(latest: string): EmulatorResponse {
  const versions = [];
  for (let v = OLDEST_VERSION; v <= Number(latest); v++) {
    versions.push({ label: releaseLabel(v), url: `/services/data/v${v}.0`, version: `${v}.0` });
  }
  return json(200, versions);
}

/** `Sforce-Call-Options: client=banyan, defaultNamespace=x` → `banyan`. */
function callingClient(header: string | string[] | undefined): string | undefined {
  const text = Array.isArray(header) ? header.join(',') : header ?? '';
  for (const option of text.split(',')) {
    const [key, value] = option.split('=').map((s) => s.trim());
    if (key === 'client' && value) return value;
  }
  return undefined;
}

/**
 * Every REST call: version check, session check, armed faults, the daily budget, then the resource.
 * Each answer that got past the session check carries `Sforce-Limit-Info`.
 */
export function handleRest(org: Org, req: EmulatorRequest, latest: string): EmulatorResponse {
  const match = /^\/services\/data\/v(\d+)\.0(?:\/(.*))?$/.exec(req.path);
  const major = Number(match?.[1]);
  if (!match || major < OLDEST_VERSION || major > Number(latest)) return errorResponse(notFound());
  const token = bearerToken(req.headers.authorization);
  if (!token || !org.sessions.use(token)) return errorResponse(sessionExpired());
  const limitHeader = (): Record<string, string> => ({ 'Sforce-Limit-Info': org.usage.header() });
  const fault = org.faults.takeCallFault();
  if (fault) return errorResponse(fault, limitHeader());
  if (!org.usage.count()) return errorResponse(new ApiError(403, 'REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.'), limitHeader());
  const version = `${major}.0`;
  const client = callingClient(req.headers['sforce-call-options']);
  const call: RestCall = {
    method: req.method,
    version,
    segments: (match[2] ?? '').split('/').filter((s) => s !== ''),
    query: req.query,
    headers: req.headers,
    body: req.body,
    changeOrigin: `com/salesforce/api/rest/${version}${client ? `;client=${client}` : ''}`,
  };
  try {
    return { ...route(org, call), headers: limitHeader() };
  } catch (err) {
    if (err instanceof ApiError) return errorResponse(err, limitHeader());
    throw err;
  }
}

export function errorResponse(err: ApiError, headers?: Record<string, string>): EmulatorResponse {
  return json(err.status, err.toBody(), headers);
}

function route(org: Org, call: RestCall): EmulatorResponse {
  const [resource, sub] = call.segments;
  switch (resource) {
    case undefined:
      return json(200, resources(call.version));
    case 'sobjects':
      return handleSObjects(org, call);
    case 'composite':
      if (sub === 'sobjects') return handleCollections(org, call);
      throw notFound();
    case 'query':
    case 'queryAll':
      if (call.method !== 'GET') throw methodNotAllowed(call.method, ['GET']);
      return query(org, call, resource === 'queryAll');
    case 'limits':
      if (call.method !== 'GET') throw methodNotAllowed(call.method, ['GET']);
      return json(200, limits(org));
    case 'tooling':
      return handleTooling(org, call);
    case 'jobs':
      if (sub === 'ingest') return handleBulkIngest(org, call);
      throw notFound();
    default:
      throw notFound();
  }
}

function resources(version: string): Record<string, string> {
  const base = `/services/data/v${version}`;
  return {
    sobjects: `${base}/sobjects`, query: `${base}/query`, queryAll: `${base}/queryAll`,
    composite: `${base}/composite`, limits: `${base}/limits`, tooling: `${base}/tooling`,
  };
}

/** `Sforce-Query-Options: batchSize=N`: Salesforce takes 200 to 2,000 and treats it as a hint. */
function batchSize(header: string | string[] | undefined): number {
  const match = /batchSize\s*=\s*(\d+)/i.exec(Array.isArray(header) ? header.join(',') : header ?? '');
  if (!match) return DEFAULT_BATCH_SIZE;
  return Math.min(DEFAULT_BATCH_SIZE, Math.max(MIN_BATCH_SIZE, Number(match[1])));
}

function query(org: Org, call: RestCall, includeDeleted: boolean): EmulatorResponse {
  const locator = call.segments[1];
  if (locator !== undefined) return json(200, org.nextPage(locator, call.version));
  const soql = call.query.get('q');
  if (soql === null || soql.trim() === '') throw new ApiError(400, 'MALFORMED_QUERY', 'A query string has to be specified');
  const result = runSoql(org.schema, org.store, soql, includeDeleted, call.version);
  return json(200, org.firstPage(result.records, result.totalSize, batchSize(call.headers['sforce-query-options']), call.version));
}

function limits(org: Org): Record<string, { Max: number; Remaining: number }> {
  const { used, max } = org.usage.current();
  const { batches } = org.bulk.usage();
  const fixed = (limit: number) => ({ Max: limit, Remaining: limit });
  return {
    DailyApiRequests: { Max: max, Remaining: max - used },
    DailyAsyncApexExecutions: fixed(250000),
    DailyBulkApiBatches: { Max: batches.max, Remaining: Math.max(0, batches.max - batches.used) },
    DailyBulkV2QueryJobs: fixed(10000),
    DailyDeliveredPlatformEvents: fixed(50000),
    DailyStreamingApiEvents: fixed(1000000),
    DataStorageMB: fixed(1024),
    FileStorageMB: fixed(1024),
    HourlyPublishedPlatformEvents: fixed(250000),
    MonthlyPlatformEventsUsageEntitlement: fixed(1500000),
  };
}
