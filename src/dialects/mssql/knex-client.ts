import type { Knex } from 'knex';
import ClientMssql from 'knex/lib/dialects/mssql/index.js';

interface RequestQuery {
  options?: { requestTimeout?: unknown };
}
interface TediousRequest {
  setTimeout(ms: number): void;
}
type ClientClass = new (config: Knex.Config) => Knex.Client & {
  _makeRequest(query: RequestQuery, callback: (error?: Error) => void): TediousRequest;
};

/**
 * knex's SQL Server client, with a request timeout per statement. tedious applies one timeout, the
 * connection's, to every request, and knex's own `.timeout()` only stops waiting (it cannot cancel a
 * tedious request), so a snapshot page and a change read would share one limit. A statement given
 * `.options({ requestTimeout: ms })` has its tedious request set to `ms` instead.
 */
export class TimedMssqlClient extends (ClientMssql as unknown as ClientClass) {
  override _makeRequest(query: RequestQuery, callback: (error?: Error) => void): TediousRequest {
    const request = super._makeRequest(query, callback);
    const ms = query.options?.requestTimeout;
    if (typeof ms === 'number') request.setTimeout(ms);
    return request;
  }
}
