import { AsyncLocalStorage } from 'node:async_hooks';
import type { Connection } from 'jsforce';
import type { Logger } from 'pino';
import { sleep } from '../../core/time';
import { classifySalesforceError, SalesforceError } from './errors';
import { parseLimitInfo, type ApiUsage } from './limits';
import { createConnection, login, type SalesforceSettings } from './session';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** First wait after a transient failure; doubles each time up to `maxMs` (with jitter). */
  minMs: number;
  maxMs: number;
  /** First wait after REQUEST_LIMIT_EXCEEDED / 429: limits clear slowly, so start higher. */
  rateLimitMinMs: number;
}

export interface SalesforceClientOptions {
  logger: Logger;
  retry?: Partial<RetryPolicy>;
  /** A REST call that has not answered after this long is abandoned and retried (jsforce's default is 30 minutes). */
  requestTimeoutMs?: number;
  /** For tests: a fixed random source makes the jitter predictable. */
  random?: () => number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, minMs: 500, maxMs: 30_000, rateLimitMinMs: 5_000 };

/** What the client has spent, for status pages and the exporter's API budget. */
export interface SalesforceUsage {
  /** REST API calls sent (each retry counts: Salesforce counts it too). */
  calls: number;
  /** The same calls by the purpose the caller named (`cdc.gap`, `cdc.overflow`, `describe`…). */
  callsByPurpose: Record<string, number>;
  failedCalls: number;
  retries: number;
  /** Logins after the first one (expired sessions), jsforce's automatic ones included. */
  sessionRefreshes: number;
  /** The org's daily usage as last reported in `Sforce-Limit-Info`. */
  apiUsage: ApiUsage | null;
}

/** One page of a SOQL result. */
export interface QueryPage<T> {
  records: T[];
  totalSize: number;
  done: boolean;
}

interface CallContext {
  purpose: string;
  /** Status of the last REST response of this call: jsforce's errors do not carry it. */
  status?: number;
}

interface Transport {
  httpRequest(req: { url: string }, options?: Record<string, unknown>): Promise<{ statusCode: number; headers: Record<string, string | string[] | undefined> }>;
}

/**
 * The one Salesforce client of Banyan, shared by the CDC source and the exporter: login, a new
 * login when the session ends (INVALID_SESSION_ID), retries with backoff on REQUEST_LIMIT_EXCEEDED,
 * 5xx and dropped connections (retriability from errorCode and HTTP status, never message text),
 * the org's API usage read from `Sforce-Limit-Info`, and a count of the calls it made, by purpose.
 *
 * Every REST request goes through an observing transport, so a call made inside `call()` is counted
 * and its status known whatever jsforce method made it. jsforce's own silent retries are turned
 * off: each attempt is decided, waited for and counted here.
 */
export class SalesforceClient {
  private conn: Connection | undefined;
  private refreshing: Promise<void> | undefined;
  private readonly context = new AsyncLocalStorage<CallContext>();
  private readonly retry: RetryPolicy;
  private readonly stats: SalesforceUsage = { calls: 0, callsByPurpose: {}, failedCalls: 0, retries: 0, sessionRefreshes: 0, apiUsage: null };

  constructor(
    readonly config: SalesforceSettings,
    private readonly options: SalesforceClientOptions,
  ) {
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
  }

  /** Logs in (once; later calls return the same connection). */
  async connect(): Promise<Connection> {
    if (this.conn) return this.conn;
    const conn = createConnection(this.config);
    this.observe(conn);
    conn.on('refresh', () => {
      this.stats.sessionRefreshes += 1;
      this.options.logger.info({ event: 'salesforce.session_refreshed', automatic: true }, 'Salesforce session renewed');
    });
    try {
      await login(conn, this.config);
    } catch (error) {
      throw classifySalesforceError(error, undefined, `logging in to ${this.config.loginUrl}`);
    }
    this.conn = conn;
    return conn;
  }

  get connection(): Connection {
    if (!this.conn) throw new Error('SalesforceClient.connect() was not called');
    return this.conn;
  }

  /** Logs in again (an ended session); concurrent callers share one login. */
  async refreshSession(): Promise<void> {
    const conn = this.connection;
    this.refreshing ??= (async () => {
      try {
        await login(conn, this.config);
        this.stats.sessionRefreshes += 1;
        this.options.logger.info({ event: 'salesforce.session_refreshed', automatic: false }, 'Salesforce session renewed');
      } catch (error) {
        throw classifySalesforceError(error, undefined, `logging in again to ${this.config.loginUrl}`);
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /**
   * Runs `fn` (one logical Salesforce call) with retries. `purpose` names what the calls are for in
   * the counters; `what` names the call in errors and logs.
   */
  async call<T>(purpose: string, what: string, fn: (conn: Connection) => PromiseLike<T>, signal?: AbortSignal): Promise<T> {
    const conn = await this.connect();
    for (let attempt = 1; ; attempt++) {
      const ctx: CallContext = { purpose };
      try {
        // Awaited inside the context: jsforce's Query is a lazy thenable that starts when awaited.
        return await this.context.run(ctx, async () => await fn(conn));
      } catch (raw) {
        const error = classifySalesforceError(raw, ctx.status, what);
        this.stats.failedCalls += 1;
        if (!error.retriable || attempt >= this.retry.attempts || signal?.aborted) throw error;
        const waitMs = this.backoff(attempt, error);
        this.stats.retries += 1;
        this.options.logger.warn(
          { event: 'salesforce.retry', purpose, errorCode: error.errorCode, status: error.status, attempt, waitMs },
          `${what} failed (${error.errorCode}); retrying in ${waitMs} ms`,
        );
        if (error.sessionExpired) await this.refreshSession();
        await sleep(waitMs, signal);
      }
    }
  }

  /**
   * Pages of a SOQL query, one REST call each (`includeDeleted`: queryAll, so deleted rows come back
   * with IsDeleted = true; `pageSize`: Salesforce's batchSize hint, 200…2000).
   */
  async *query<T>(soql: string, opts: { purpose: string; includeDeleted?: boolean; pageSize?: number; signal?: AbortSignal }): AsyncGenerator<QueryPage<T>> {
    const resource = opts.includeDeleted ? 'queryAll' : 'query';
    const headers: Record<string, string> = opts.pageSize ? { 'Sforce-Query-Options': `batchSize=${opts.pageSize}` } : {};
    let url: string | undefined = `/${resource}?q=${encodeURIComponent(soql)}`;
    while (url) {
      const pageUrl: string = url;
      const page = await this.call(opts.purpose, `SOQL ${resource} on ${soqlObject(soql)}`, (conn) =>
        conn.request<{ records: T[]; totalSize: number; done: boolean; nextRecordsUrl?: string }>({ method: 'GET', url: pageUrl, headers }),
        opts.signal,
      );
      url = page.done ? undefined : page.nextRecordsUrl;
      yield { records: page.records, totalSize: page.totalSize, done: page.done };
    }
  }

  usage(): SalesforceUsage {
    return { ...this.stats, callsByPurpose: { ...this.stats.callsByPurpose }, apiUsage: this.stats.apiUsage && { ...this.stats.apiUsage } };
  }

  private backoff(attempt: number, error: SalesforceError): number {
    const base = error.rateLimited ? Math.max(this.retry.rateLimitMinMs, this.retry.minMs) : this.retry.minMs;
    const ceiling = Math.min(this.retry.maxMs, base * 2 ** (attempt - 1));
    // Jitter keeps many workers that failed together from retrying together.
    return Math.round(ceiling * (0.5 + 0.5 * (this.options.random ?? Math.random)()));
  }

  /** Wraps the connection's transport: counts REST calls, notes statuses and the Sforce-Limit-Info usage. */
  private observe(conn: Connection): void {
    const transport = conn._transport as unknown as Transport;
    const send = transport.httpRequest.bind(transport);
    const timeout = this.options.requestTimeoutMs ?? 120_000;
    transport.httpRequest = (req, options = {}) => {
      const ctx = this.context.getStore();
      const rest = /\/services\/data\//.test(req.url);
      if (rest) {
        this.stats.calls += 1;
        const purpose = ctx?.purpose ?? 'other';
        this.stats.callsByPurpose[purpose] = (this.stats.callsByPurpose[purpose] ?? 0) + 1;
      }
      const retry = { ...(options.retry as object | undefined), maxRetries: 0 };
      const pending = send(req, { ...options, retry, timeout: options.timeout ?? timeout });
      pending.then(
        (response) => {
          if (!rest) return;
          if (ctx) ctx.status = response.statusCode;
          const usage = parseLimitInfo(response.headers['sforce-limit-info']);
          if (usage) this.stats.apiUsage = usage;
        },
        () => undefined,
      );
      return pending;
    };
  }
}

function soqlObject(soql: string): string {
  return /\bFROM\s+([A-Za-z0-9_]+)/i.exec(soql)?.[1] ?? 'an object';
}
