import knex from 'knex';
import { describe, expect, it } from 'vitest';
import { TimedMssqlClient } from './knex-client';

describe('the SQL Server knex client', () => {
  // No server: the tedious request is only made, never sent.
  const client = new TimedMssqlClient({ client: 'mssql', connection: { server: '127.0.0.1', requestTimeout: 30_000 } as never });
  const request = (options?: Record<string, unknown>) =>
    (client as unknown as { _makeRequest(q: unknown, cb: () => void): { timeout: number | undefined } })._makeRequest({ sql: 'SELECT 1', bindings: [], options }, () => undefined);

  it("sets a statement's tedious request timeout from .options({ requestTimeout })", () => {
    expect(request({ requestTimeout: 1234 }).timeout).toBe(1234);
  });

  it('leaves a statement without one to the connection’s timeout', () => {
    expect(request().timeout).toBeUndefined();
    expect(request({}).timeout).toBeUndefined();
  });

  it('carries the option through knex.raw(...).options() into the compiled query', () => {
    const db = knex({ client: TimedMssqlClient as never });
    expect(db.raw('SELECT ?', [1]).options({ requestTimeout: 99 }).toSQL()).toMatchObject({ options: { requestTimeout: 99 } });
  });
});
