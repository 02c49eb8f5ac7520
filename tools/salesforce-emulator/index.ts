import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EmulatorAdmin } from './admin.js';
import type { Credentials } from './auth.js';
import type { BulkOptions } from './bulk-jobs.js';
import { DEFAULT_RETENTION_MS } from './cdc.js';
import { EmulatorClock } from './clock.js';
import { CometdServer } from './cometd.js';
import { Org } from './org.js';
import { type ObjectConfig, Schema, STANDARD_OBJECTS } from './schema.js';
import type { ChannelConfig } from './channels.js';
import { DEMO_CHANNELS, seedDemo } from './seed.js';
import { requestListener } from './server.js';
import { loadState, saveState } from './state.js';

export type { AdminState, EmulatorAdmin } from './admin.js';
export type { Credentials } from './auth.js';
export type { BulkJobSummary, BulkOptions, BulkUsage } from './bulk-jobs.js';
export type { ChangeEventMessage, StoredChangeEvent } from './cdc.js';
export type { ChannelConfig, ChannelMember, ChannelMemberConfig, EventChannel } from './channels.js';
export type { LockRowsSpec } from './faults.js';
export type { FieldConfig, FieldType, ObjectConfig, ValidationRule } from './schema.js';

export interface EmulatorOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  /** The newest API version served; every version from 50.0 up to it is accepted. */
  apiVersion?: string;
  /** `demo` loads a few accounts and contacts; `empty` (the default) starts with no records. */
  seed?: 'demo' | 'empty';
  /** Loaded at start when it exists (instead of the seed), written on close. */
  stateFile?: string;
  /** The time source under the emulator clock (default Date.now); the admin can move the clock forward. */
  clock?: () => number;
  /** Sessions end after this long without use (default 7200, Salesforce's default session timeout). */
  tokenTtlSeconds?: number;
  credentials?: Partial<Credentials>;
  /** Objects beyond the standard Account and Contact. */
  objects?: ObjectConfig[];
  /**
   * Custom Change Data Capture channels with their members and enriched fields, made at start (and
   * again on admin reset), beside those the `demo` seed makes; more can be made through the Tooling API.
   */
  channels?: ChannelConfig[];
  /** DailyApiRequests Max (default 100000). */
  dailyApiRequests?: number;
  /** How long a `/meta/connect` is held (default 110000 ms) and how soon an idle client is forgotten (default 40000 ms). */
  cometd?: { longPollTimeoutMs?: number; clientTimeoutMs?: number };
  /** Change event retention (default 72 hours), measured on the emulator clock. */
  eventRetentionMs?: number;
  /** The first change event's commitNumber (default 10708862594919, the size of Salesforce's examples); beyond 2^53 to test exactness. */
  firstCommitNumber?: bigint;
  /** PEM public key of the certificate the connected app holds, enabling the JWT bearer flow. */
  jwtPublicKey?: string;
  /** Bulk API 2.0 ingest limits: upload size (base64-encoded bytes), daily batches and records; Salesforce's values by default. */
  bulk?: BulkOptions;
  /** The `instance_url` a login answers (default: the emulator's own URL), e.g. a fault-test proxy in front of it. */
  instanceUrl?: string;
}

export interface Emulator {
  /** Login URL and instance URL alike, e.g. http://127.0.0.1:18443. */
  url: string;
  credentials: Credentials;
  admin: EmulatorAdmin;
  /** Stops serving, answers held long-polls, and saves the state file if one is configured. */
  close(): Promise<void>;
}

export const DEFAULT_CREDENTIALS: Credentials = {
  username: 'integration@banyan.emulator',
  password: 'banyan-emulator-password',
  clientId: '3MVG9BanyanEmulatorConnectedAppClientId',
  clientSecret: 'banyan-emulator-client-secret',
};

export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const apiVersion = opts.apiVersion ?? '62.0';
  const host = opts.host ?? '127.0.0.1';
  const credentials: Credentials = { ...DEFAULT_CREDENTIALS, ...opts.credentials };
  const tokenTtlSeconds = opts.tokenTtlSeconds ?? 7200;
  const org = new Org({
    schema: new Schema([...STANDARD_OBJECTS, ...(opts.objects ?? [])]),
    clock: new EmulatorClock(opts.clock),
    credentials,
    sessionTtlMs: tokenTtlSeconds * 1000,
    dailyApiRequests: opts.dailyApiRequests ?? 100_000,
    eventRetentionMs: opts.eventRetentionMs ?? DEFAULT_RETENTION_MS,
    ...(opts.firstCommitNumber !== undefined ? { firstCommitNumber: opts.firstCommitNumber } : {}),
    ...(opts.bulk ? { bulk: opts.bulk } : {}),
  });
  const seedChannels = () => {
    for (const channel of [...(opts.seed === 'demo' ? DEMO_CHANNELS : []), ...(opts.channels ?? [])]) org.channels.define(channel);
  };
  const seed = () => {
    if (opts.seed === 'demo') seedDemo(org);
    seedChannels();
  };
  const restored = opts.stateFile ? await loadState(org, opts.stateFile) : false;
  if (!restored) seed();
  else if (restored === 'no-channels') seedChannels();
  const cometd = new CometdServer(org, {
    longPollTimeoutMs: opts.cometd?.longPollTimeoutMs ?? 110_000,
    clientTimeoutMs: opts.cometd?.clientTimeoutMs ?? 40_000,
  });
  const admin = new EmulatorAdmin(org, cometd, seed);
  let url = '';
  const server = createServer(requestListener({
    org, cometd, admin, apiVersion,
    tokenContext: () => ({ credentials, sessions: org.sessions, clock: org.clock, url: opts.instanceUrl ?? url, sessionTtlSeconds: tokenTtlSeconds, ...(opts.jwtPublicKey ? { jwtPublicKey: opts.jwtPublicKey } : {}) }),
  }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  url = `http://${host}:${(server.address() as AddressInfo).port}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    credentials,
    admin,
    close: () => (closing ??= (async () => {
      cometd.close();
      org.bulk.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      if (opts.stateFile) await saveState(org, opts.stateFile);
    })()),
  };
}
