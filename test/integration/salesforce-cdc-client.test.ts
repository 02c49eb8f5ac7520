import { afterEach, describe, expect, it } from 'vitest';
import { SalesforceClient } from '../../src/clients/salesforce/client';
import { SalesforceError } from '../../src/clients/salesforce/errors';
import { parseConfig } from '../../src/config';
import { createRootLogger } from '../../src/runtime/logger';
import { startEmulator, type Emulator } from '../../tools/salesforce-emulator/index.js';

/**
 * The shared Salesforce client (login, session renewal, retries, API usage, call counts) against
 * the emulator's fault injection. The CDC source and the exporter both go through it.
 */

let emulator: Emulator | undefined;

afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

interface LogLine {
  event?: string;
  [key: string]: unknown;
}

async function client(opts: { attempts?: number; username?: boolean } = {}): Promise<{ client: SalesforceClient; logs: LogLine[]; em: Emulator }> {
  const em = (emulator = await startEmulator({ port: 0 }));
  process.env.SFCLIENT_TEST_PASSWORD = em.credentials.password;
  process.env.SFCLIENT_TEST_CLIENT_SECRET = em.credentials.clientSecret;
  const config = parseConfig(
    `
kafka: { brokers: 127.0.0.1:1 }
schemaRegistry: { url: http://127.0.0.1:1 }
salesforce:
  loginUrl: ${em.url}
  ${opts.username === false ? '' : `username: ${em.credentials.username}\n  password: \${SFCLIENT_TEST_PASSWORD}`}
  clientId: ${em.credentials.clientId}
  clientSecret: \${SFCLIENT_TEST_CLIENT_SECRET}
`,
    'salesforce client test',
  );
  const logs: LogLine[] = [];
  const logger = createRootLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const sf = new SalesforceClient(config.salesforce!, { logger, retry: { attempts: opts.attempts ?? 4, minMs: 10, maxMs: 50, rateLimitMinMs: 40 } });
  await sf.connect();
  return { client: sf, logs, em };
}

const countContacts = (sf: SalesforceClient, purpose = 'test') =>
  sf.call(purpose, 'count contacts', (conn) => conn.query('SELECT COUNT() FROM Contact')).then((r) => r.totalSize);

describe('SalesforceClient', () => {
  it('counts calls by purpose and reads the API usage from Sforce-Limit-Info', async () => {
    const { client: sf, em } = await client();
    await countContacts(sf, 'a');
    await countContacts(sf, 'a');
    await sf.call('b', 'describe', (conn) => conn.describe('Account'));
    const usage = sf.usage();
    expect(usage).toMatchObject({ calls: 3, callsByPurpose: { a: 2, b: 1 }, retries: 0, failedCalls: 0 });
    expect(usage.apiUsage).toEqual({ used: em.admin.state().apiUsage.used, max: 100_000 });
  });

  it('retries 503 and 500 answers with backoff, each attempt counted', async () => {
    const { client: sf, logs, em } = await client();
    em.admin.failNextCalls(2, 503);
    expect(await countContacts(sf)).toBe(0);
    em.admin.failNextCalls(1, 500);
    expect(await countContacts(sf)).toBe(0);
    expect(sf.usage()).toMatchObject({ calls: 5, retries: 3, failedCalls: 3 });
    expect(logs.filter((l) => l.event === 'salesforce.retry').map((l) => [l.errorCode, l.status])).toEqual([
      ['SERVER_UNAVAILABLE', 503], ['SERVER_UNAVAILABLE', 503], ['UNKNOWN_EXCEPTION', 500],
    ]);
  });

  it('waits longer after REQUEST_LIMIT_EXCEEDED, and gives up as retriable when the budget stays spent', async () => {
    const { client: sf, logs, em } = await client({ attempts: 3 });
    em.admin.rateLimitNextCalls(1);
    await countContacts(sf);
    const [retry] = logs.filter((l) => l.event === 'salesforce.retry');
    expect(retry).toMatchObject({ errorCode: 'REQUEST_LIMIT_EXCEEDED', status: 403 });
    expect(retry?.waitMs).toBeGreaterThanOrEqual(20); // rateLimitMinMs 40, jitter down to half

    em.admin.exhaustDailyApiLimit();
    const error = await countContacts(sf).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SalesforceError);
    expect(error).toMatchObject({ errorCode: 'REQUEST_LIMIT_EXCEEDED', status: 403, retriable: true, rateLimited: true, code: 'REQUEST_LIMIT_EXCEEDED' });
    expect(sf.usage().apiUsage?.used).toBe(sf.usage().apiUsage?.max);
  });

  it('fails at once, not retriable, on a request that cannot succeed', async () => {
    const { client: sf } = await client();
    const error = await sf.call('t', 'bad query', (conn) => conn.query('SELECT Nope FROM Contact')).catch((e: unknown) => e);
    expect(error).toMatchObject({ errorCode: 'INVALID_FIELD', status: 400, retriable: false, stage: 'receiving' });
    expect((error as Error).message).toMatch(/^bad query: /);
    expect(sf.usage()).toMatchObject({ calls: 1, retries: 0 });
  });

  it.each([
    ['username-password', true],
    ['client-credentials', false],
  ])('logs in again when the session ended (%s)', async (_flow, username) => {
    const { client: sf, em } = await client({ username });
    await countContacts(sf);
    em.admin.expireSessions();
    expect(await countContacts(sf)).toBe(0);
    expect(sf.usage().sessionRefreshes).toBe(1);
    em.admin.expireSessions();
    await sf.refreshSession();
    expect(await countContacts(sf)).toBe(0);
    expect(sf.usage().sessionRefreshes).toBe(2);
  });

  it('pages a query, one counted call per page, deleted rows through queryAll', async () => {
    const { client: sf } = await client();
    const conn = sf.connection;
    const records = Array.from({ length: 250 }, (_, i) => ({ LastName: `P${i}` }));
    for (let i = 0; i < records.length; i += 200) await conn.sobject('Contact').create(records.slice(i, i + 200));
    const [first] = (await conn.query<{ Id: string }>("SELECT Id FROM Contact WHERE LastName = 'P0'")).records;
    await conn.sobject('Contact').destroy(first!.Id);
    const before = sf.usage().calls;
    const pages = [];
    for await (const page of sf.query<{ Id: string; IsDeleted: boolean }>('SELECT Id, IsDeleted FROM Contact', { purpose: 'paged', includeDeleted: true, pageSize: 200 })) pages.push(page);
    expect(pages.map((p) => [p.records.length, p.totalSize, p.done])).toEqual([[200, 250, false], [50, 250, true]]);
    expect(pages.flatMap((p) => p.records).filter((r) => r.IsDeleted).map((r) => r.Id)).toEqual([first!.Id]);
    expect(sf.usage().calls - before).toBe(2);
    expect(sf.usage().callsByPurpose.paged).toBe(2);
  });
});
