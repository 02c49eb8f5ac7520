import { createHmac, createVerify, timingSafeEqual } from 'node:crypto';
import type { EmulatorClock } from './clock.js';
import { OAuthError } from './errors.js';
import { makeId, randomBase62 } from './ids.js';

export interface Credentials {
  username: string;
  password: string;
  clientId: string;
  clientSecret: string;
  /** When set, the password flows need `password + securityToken`, as from an untrusted network. */
  securityToken?: string;
}

/** The one org and integration user the emulator serves. */
export interface OrgIdentity {
  orgId: string;
  userId: string;
}

export const ORG: OrgIdentity = { orgId: makeId('00D', 1), userId: makeId('005', 1) };

/** Access tokens: `<15-char org id>!<random>`. Salesforce sessions time out after a period without use. */
export class Sessions {
  private lastUse = new Map<string, number>();

  constructor(private readonly clock: EmulatorClock, private readonly ttlMs: number) {}

  issue(): string {
    const token = `${ORG.orgId.slice(0, 15)}!${randomBase62(96)}`;
    this.lastUse.set(token, this.clock.now());
    return token;
  }

  /** True when the token is live; using it restarts its timeout. */
  use(token: string): boolean {
    const last = this.lastUse.get(token);
    if (last === undefined) return false;
    if (this.clock.now() - last >= this.ttlMs) {
      this.lastUse.delete(token);
      return false;
    }
    this.lastUse.set(token, this.clock.now());
    return true;
  }

  revoke(token: string): void {
    this.lastUse.delete(token);
  }

  expireAll(): void {
    this.lastUse.clear();
  }

  get size(): number {
    return this.lastUse.size;
  }
}

/** Reads the token from `Authorization: Bearer …` (REST) or `OAuth …` (what CometD clients send). */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^(?:Bearer|OAuth)\s+(\S+)$/i.exec(header ?? '');
  return match?.[1];
}

function equal(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export interface TokenContext {
  credentials: Credentials;
  sessions: Sessions;
  clock: EmulatorClock;
  /** The emulator's base URL: both the login and the instance URL. */
  url: string;
  sessionTtlSeconds: number;
  jwtPublicKey?: string;
}

/** `POST /services/oauth2/token`: the username-password, client-credentials and JWT bearer flows. */
export function grantToken(form: URLSearchParams, ctx: TokenContext): Record<string, string> {
  const grantType = form.get('grant_type');
  const { credentials } = ctx;
  switch (grantType) {
    case 'password': {
      checkClient(form, credentials);
      const expected = credentials.password + (credentials.securityToken ?? '');
      if (!equal(form.get('username') ?? '', credentials.username) || !equal(form.get('password') ?? '', expected)) {
        throw new OAuthError('invalid_grant', 'authentication failure');
      }
      return tokenResponse(ctx);
    }
    case 'client_credentials':
      checkClient(form, credentials);
      return { ...tokenResponse(ctx), scope: 'api' };
    case 'urn:ietf:params:oauth:grant-type:jwt-bearer':
      checkAssertion(form.get('assertion') ?? '', ctx);
      return { ...tokenResponse(ctx), scope: 'api' };
    default:
      throw new OAuthError('unsupported_grant_type', 'grant type not supported');
  }
}

function checkClient(form: URLSearchParams, credentials: Credentials): void {
  if (!equal(form.get('client_id') ?? '', credentials.clientId)) throw new OAuthError('invalid_client_id', 'client identifier invalid');
  if (!equal(form.get('client_secret') ?? '', credentials.clientSecret)) throw new OAuthError('invalid_client', 'invalid client credentials');
}

function tokenResponse(ctx: TokenContext): Record<string, string> {
  const id = `${ctx.url}/id/${ORG.orgId}/${ORG.userId}`;
  const issuedAt = String(ctx.clock.now());
  return {
    access_token: ctx.sessions.issue(),
    instance_url: ctx.url,
    id,
    token_type: 'Bearer',
    issued_at: issuedAt,
    signature: createHmac('sha256', ctx.credentials.clientSecret).update(id + issuedAt).digest('base64'),
  };
}

/** The JWT bearer flow: an RS256 assertion signed with the key whose public half the connected app holds. */
function checkAssertion(assertion: string, ctx: TokenContext): void {
  const invalid = new OAuthError('invalid_grant', 'invalid assertion');
  const [header, payload, signature] = assertion.split('.');
  if (!ctx.jwtPublicKey || header === undefined || payload === undefined || signature === undefined) throw invalid;
  const verifier = createVerify('RSA-SHA256').update(`${header}.${payload}`);
  if (!verifier.verify(ctx.jwtPublicKey, Buffer.from(signature, 'base64url'))) throw invalid;
  let claims: { iss?: unknown; sub?: unknown; aud?: unknown; exp?: unknown };
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof claims;
  } catch {
    throw invalid;
  }
  if (claims.iss !== ctx.credentials.clientId) throw new OAuthError('invalid_client_id', 'client identifier invalid');
  if (claims.sub !== ctx.credentials.username) throw new OAuthError('invalid_grant', 'user hasn\'t approved this consumer');
  const audiences = [ctx.url, 'https://login.salesforce.com', 'https://test.salesforce.com'];
  if (typeof claims.aud !== 'string' || !audiences.includes(claims.aud)) throw new OAuthError('invalid_grant', 'audience is invalid');
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= ctx.clock.now()) throw new OAuthError('invalid_grant', 'expired authorization code');
}

const xmlEscape = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const xmlUnescape = (text: string): string =>
  text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');

function xmlElement(xml: string, name: string): string | undefined {
  const match = new RegExp(`<(?:\\w+:)?${name}(?:\\s[^>]*)?>([^<]*)</(?:\\w+:)?${name}>`).exec(xml);
  return match?.[1] === undefined ? undefined : xmlUnescape(match[1]);
}

const envelope = (body: string): string =>
  '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" ' +
  'xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">' +
  `<soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`;

/** The partner SOAP API's `login` call: answers `loginResponse`, or a fault with HTTP 500 as SOAP does. */
export function soapLogin(xml: string, version: string, ctx: TokenContext): { status: number; body: string } {
  const { credentials } = ctx;
  const username = xmlElement(xml, 'username') ?? '';
  const password = xmlElement(xml, 'password') ?? '';
  if (!equal(username, credentials.username) || !equal(password, credentials.password + (credentials.securityToken ?? ''))) {
    return {
      status: 500,
      body: envelope('<soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring>' +
        '<detail><sf:LoginFault xmlns:sf="urn:fault.partner.soap.sforce.com" xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>' +
        '<sf:exceptionMessage>Invalid username, password, security token; or user locked out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault>'),
    };
  }
  const result =
    `<metadataServerUrl>${ctx.url}/services/Soap/m/${version}/${ORG.orgId}</metadataServerUrl>` +
    '<passwordExpired>false</passwordExpired><sandbox>false</sandbox>' +
    `<serverUrl>${ctx.url}/services/Soap/u/${version}/${ORG.orgId}</serverUrl>` +
    `<sessionId>${ctx.sessions.issue()}</sessionId><userId>${ORG.userId}</userId>` +
    `<userInfo><organizationId>${ORG.orgId}</organizationId><organizationName>Banyan Emulator Org</organizationName>` +
    `<sessionSecondsValid>${ctx.sessionTtlSeconds}</sessionSecondsValid><userEmail>${xmlEscape(credentials.username)}</userEmail>` +
    `<userFullName>Integration User</userFullName><userId>${ORG.userId}</userId><userName>${xmlEscape(credentials.username)}</userName></userInfo>`;
  return { status: 200, body: envelope(`<loginResponse><result>${result}</result></loginResponse>`) };
}
