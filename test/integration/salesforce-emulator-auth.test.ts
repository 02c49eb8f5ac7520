import { createHmac, createSign, generateKeyPairSync } from 'node:crypto';
import { Connection } from 'jsforce';
import { afterEach, describe, expect, it } from 'vitest';
import { type Emulator, type EmulatorOptions, startEmulator } from '../../tools/salesforce-emulator/index.js';

let emulator: Emulator;

async function start(opts: EmulatorOptions = {}): Promise<Emulator> {
  emulator = await startEmulator(opts);
  return emulator;
}

afterEach(async () => {
  await emulator?.close();
});

function oauthConnection(): Connection {
  const { clientId, clientSecret } = emulator.credentials;
  return new Connection({ oauth2: { loginUrl: emulator.url, clientId, clientSecret }, version: '62.0' });
}

async function requestToken(params: Record<string, string>): Promise<{ status: number; body: Record<string, string> }> {
  const response = await fetch(`${emulator.url}/services/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params),
  });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

function passwordGrant(overrides: Record<string, string> = {}): Record<string, string> {
  const { username, password, clientId, clientSecret } = emulator.credentials;
  return { grant_type: 'password', username, password, client_id: clientId, client_secret: clientSecret, ...overrides };
}

describe('Salesforce emulator: OAuth 2.0 and SOAP login', () => {
  it('logs jsforce in with the username-password flow and answers the documented token fields', async () => {
    await start();
    const conn = oauthConnection();
    const userInfo = await conn.login(emulator.credentials.username, emulator.credentials.password);
    expect(userInfo.organizationId).toMatch(/^00D[A-Za-z0-9]{15}$/);
    expect(userInfo.id).toMatch(/^005[A-Za-z0-9]{15}$/);
    expect(conn.instanceUrl).toBe(emulator.url);

    const { status, body } = await requestToken(passwordGrant());
    expect(status).toBe(200);
    expect(body.access_token).toMatch(new RegExp(`^${userInfo.organizationId.slice(0, 15)}!\\w+$`));
    expect(body.instance_url).toBe(emulator.url);
    expect(body.id).toBe(`${emulator.url}/id/${userInfo.organizationId}/${userInfo.id}`);
    expect(body.token_type).toBe('Bearer');
    expect(Math.abs(Number(body.issued_at) - Date.now())).toBeLessThan(60_000);
    const expected = createHmac('sha256', emulator.credentials.clientSecret).update(`${body.id}${body.issued_at}`).digest('base64');
    expect(body.signature).toBe(expected);
    // Salesforce issues no refresh token on the username-password flow.
    expect(body).not.toHaveProperty('refresh_token');
  });

  it('rejects bad passwords, unknown clients and wrong secrets with the documented errors', async () => {
    await start();
    expect(await requestToken(passwordGrant({ password: 'wrong' }))).toEqual({
      status: 400, body: { error: 'invalid_grant', error_description: 'authentication failure' },
    });
    expect(await requestToken(passwordGrant({ client_id: 'nope' }))).toEqual({
      status: 400, body: { error: 'invalid_client_id', error_description: 'client identifier invalid' },
    });
    expect(await requestToken(passwordGrant({ client_secret: 'nope' }))).toEqual({
      status: 400, body: { error: 'invalid_client', error_description: 'invalid client credentials' },
    });
    expect((await requestToken({ grant_type: 'authorization_code' })).body.error).toBe('unsupported_grant_type');
    await expect(oauthConnection().login(emulator.credentials.username, 'wrong')).rejects.toThrow(/authentication failure/);
  });

  it('requires the security token appended to the password when one is set', async () => {
    await start({ credentials: { securityToken: 'TOKEN123' } });
    const { username, password } = emulator.credentials;
    await expect(oauthConnection().login(username, password)).rejects.toThrow(/authentication failure/);
    await expect(oauthConnection().login(username, `${password}TOKEN123`)).resolves.toMatchObject({ organizationId: expect.any(String) });
  });

  it('logs in through the SOAP login call jsforce uses without an OAuth client', async () => {
    await start({ seed: 'demo' });
    const conn = new Connection({ loginUrl: emulator.url, version: '62.0' });
    const userInfo = await conn.login(emulator.credentials.username, emulator.credentials.password);
    expect(userInfo.organizationId).toMatch(/^00D/);
    expect(conn.instanceUrl).toBe(emulator.url);
    const result = await conn.query<{ Name: string }>("SELECT Name FROM Account WHERE Banyan_Id__c = 'acct-1001'");
    expect(result.records.map((r) => r.Name)).toEqual(['Acme Corporation']);

    const rejected = new Connection({ loginUrl: emulator.url, version: '62.0' });
    await expect(rejected.login(emulator.credentials.username, 'wrong')).rejects.toThrow(/^INVALID_LOGIN: Invalid username, password, security token; or user locked out\.$/);
  });

  it('issues tokens on the client-credentials flow', async () => {
    await start();
    const { clientId, clientSecret } = emulator.credentials;
    const { status, body } = await requestToken({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
    expect(status).toBe(200);
    const conn = new Connection({ instanceUrl: body.instance_url, accessToken: body.access_token, version: '62.0' });
    const created = await conn.sobject('Account').create({ Name: 'Client Credentials Inc' });
    expect(created.success).toBe(true);
  });

  it('issues tokens on the JWT bearer flow for an assertion signed with the connected app key', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await start({ jwtPublicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    const jwt = (claims: Record<string, unknown>) => {
      const encode = (part: object) => Buffer.from(JSON.stringify(part)).toString('base64url');
      const unsigned = `${encode({ alg: 'RS256' })}.${encode(claims)}`;
      return `${unsigned}.${createSign('RSA-SHA256').update(unsigned).sign(privateKey).toString('base64url')}`;
    };
    const claims = { iss: emulator.credentials.clientId, sub: emulator.credentials.username, aud: emulator.url, exp: Math.floor(Date.now() / 1000) + 180 };
    const grant = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
    const accepted = await requestToken({ grant_type: grant, assertion: jwt(claims) });
    expect(accepted.status).toBe(200);
    expect(accepted.body.access_token).toMatch(/^00D\w{12}!/);
    const expired = await requestToken({ grant_type: grant, assertion: jwt({ ...claims, exp: Math.floor(Date.now() / 1000) - 10 }) });
    expect(expired.body.error).toBe('invalid_grant');
    const forged = await requestToken({ grant_type: grant, assertion: `${jwt(claims).slice(0, -4)}AAAA` });
    expect(forged.body).toEqual({ error: 'invalid_grant', error_description: 'invalid assertion' });
  });
});

describe('Salesforce emulator: sessions', () => {
  it('answers 401 INVALID_SESSION_ID once a session has been idle longer than its timeout', async () => {
    await start({ tokenTtlSeconds: 60 });
    const { body: token } = await requestToken(passwordGrant());
    const get = () => fetch(`${emulator.url}/services/data/v62.0/limits`, { headers: { Authorization: `Bearer ${token.access_token}` } });
    emulator.admin.advanceClock(50_000);
    expect((await get()).status).toBe(200);
    // Use restarts the timeout, as Salesforce's sessions do.
    emulator.admin.advanceClock(50_000);
    expect((await get()).status).toBe(200);
    emulator.admin.advanceClock(61_000);
    const expired = await get();
    expect(expired.status).toBe(401);
    expect(await expired.json()).toEqual([{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
  });

  it('lets jsforce log in again by itself when the session expires after conn.login', async () => {
    await start();
    const conn = oauthConnection();
    await conn.login(emulator.credentials.username, emulator.credentials.password);
    const firstToken = conn.accessToken;
    emulator.admin.expireSessions();
    const result = await conn.query('SELECT Id FROM Contact');
    expect(result.totalSize).toBe(0);
    expect(conn.accessToken).not.toBe(firstToken);
  });

  it('calls a refreshFn on 401, as a client holding only a token would', async () => {
    await start();
    const { clientId, clientSecret } = emulator.credentials;
    const clientCredentials = () => requestToken({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
    const first = await clientCredentials();
    let refreshes = 0;
    const conn = new Connection({
      instanceUrl: emulator.url,
      accessToken: first.body.access_token,
      version: '62.0',
      refreshFn: (_conn, callback) => {
        refreshes += 1;
        clientCredentials().then(({ body }) => callback(null, body.access_token), (err: Error) => callback(err));
      },
    });
    emulator.admin.expireSessions();
    await expect(conn.sobject('Contact').create({ LastName: 'Refreshed' })).resolves.toMatchObject({ success: true });
    expect(refreshes).toBe(1);

    const stranded = new Connection({ instanceUrl: emulator.url, accessToken: conn.accessToken as string, version: '62.0' });
    emulator.admin.expireSessions();
    await expect(stranded.query('SELECT Id FROM Contact')).rejects.toMatchObject({ errorCode: 'INVALID_SESSION_ID' });
  });
});

describe('Salesforce emulator: API usage', () => {
  it('counts every REST call in Sforce-Limit-Info and in the limits resource', async () => {
    await start({ dailyApiRequests: 5000 });
    const conn = oauthConnection();
    await conn.login(emulator.credentials.username, emulator.credentials.password);
    await conn.sobject('Contact').create({ LastName: 'One' });
    expect(conn.limitInfo).toEqual({ apiUsage: { used: 1, limit: 5000 } });
    await conn.query('SELECT Id FROM Contact');
    expect(conn.limitInfo.apiUsage?.used).toBe(2);

    const limits = await conn.limits();
    expect(limits.DailyApiRequests).toEqual({ Max: 5000, Remaining: 4997 });
    const response = await fetch(`${emulator.url}/services/data/v62.0/sobjects`, { headers: { Authorization: `Bearer ${conn.accessToken}` } });
    expect(response.headers.get('sforce-limit-info')).toBe('api-usage=4/5000');

    const versions = (await (await fetch(`${emulator.url}/services/data`)).json()) as { version: string; label: string }[];
    expect(versions.at(0)).toEqual({ label: "Winter '21", url: '/services/data/v50.0', version: '50.0' });
    expect(versions.at(-1)).toEqual({ label: "Winter '25", url: '/services/data/v62.0', version: '62.0' });
  });
});
