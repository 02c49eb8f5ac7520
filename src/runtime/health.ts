import { connect } from 'node:net';
import type { Admin } from 'kafkajs';
import type { Knex } from 'knex';
import type { CheckResult, HealthCheck } from '../core';
import { errorMessage } from '../core';
import type { DatabaseConfig, RuntimeConfig, SalesforceConfig } from './config';
import type { KafkaClient } from './kafka';
import { registryAuthHeaders } from './registry';
import { firstRow } from '../clients/database';
import { DRIVERS } from '../dialects';

const TIMEOUT_MS = 8000;

/**
 * Runs a check with a deadline, turning any failure into a row that says why. At the deadline the
 * check's signal aborts, so the check can drop what it still has under way (connections).
 */
export async function runCheck(check: HealthCheck): Promise<CheckResult> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve({ name: check.name, ok: false, detail: `no answer within ${TIMEOUT_MS / 1000} s` });
    }, TIMEOUT_MS);
  });
  try {
    return await Promise.race([check.check(controller.signal), deadline]);
  } catch (error) {
    return { name: check.name, ok: false, detail: errorMessage(error) };
  } finally {
    clearTimeout(timer);
  }
}

export class KafkaHealthCheck implements HealthCheck {
  readonly name = 'kafka';
  constructor(
    private readonly kafka: KafkaClient,
    private readonly brokers: string[],
  ) {}

  async check(signal?: AbortSignal): Promise<CheckResult> {
    let admin: Admin | undefined;
    const stop = () => void admin?.disconnect().catch(() => undefined);
    signal?.addEventListener('abort', stop, { once: true });
    try {
      // kafkajs retries a refused connection for about 10 s; a plain TCP connect says at once.
      await reachAnyBroker(this.brokers, signal);
      admin = this.kafka.admin();
      await admin.connect();
      const cluster = await admin.describeCluster();
      const topics = await admin.listTopics();
      return {
        name: this.name,
        ok: true,
        detail: `${cluster.brokers.length} broker(s) at ${this.brokers.join(',')}, cluster ${cluster.clusterId}, ${topics.length} topic(s)`,
      };
    } catch (error) {
      return { name: this.name, ok: false, detail: `${this.brokers.join(',')}: ${errorMessage(error)}` };
    } finally {
      signal?.removeEventListener('abort', stop);
      await admin?.disconnect().catch(() => undefined);
    }
  }
}

/**
 * Resolves once one of the brokers accepts a TCP connection; rejects as soon as every one of them
 * refused (or failed otherwise), with each one's reason.
 */
async function reachAnyBroker(brokers: string[], signal?: AbortSignal): Promise<void> {
  const done = new AbortController();
  const attempts = brokers.map((broker) => tcpConnect(broker, signal ? AbortSignal.any([signal, done.signal]) : done.signal));
  try {
    await Promise.any(attempts);
  } catch (error) {
    // Without a message of its own, errorMessage tells each broker's reason (as for Node's own).
    throw new AggregateError((error as AggregateError).errors);
  } finally {
    // The first broker that answered is enough: end the attempts still under way.
    done.abort();
  }
}

function tcpConnect(broker: string, signal: AbortSignal): Promise<void> {
  const colon = broker.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const socket = connect({ host: broker.slice(0, colon), port: Number(broker.slice(colon + 1)), signal });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

export class SchemaRegistryHealthCheck implements HealthCheck {
  readonly name = 'schema-registry';
  constructor(private readonly config: RuntimeConfig['schemaRegistry']) {}

  async check(): Promise<CheckResult> {
    const headers = registryAuthHeaders(this.config);
    const url = `${this.config.url.replace(/\/$/, '')}/subjects`;
    try {
      const response = await fetch(url, { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
      if (!response.ok) return { name: this.name, ok: false, detail: `${url} answered HTTP ${response.status}` };
      const subjects = (await response.json()) as unknown[];
      return { name: this.name, ok: true, detail: `${this.config.url}, ${subjects.length} subject(s)` };
    } catch (error) {
      return { name: this.name, ok: false, detail: `${url}: ${errorMessage((error as { cause?: unknown }).cause ?? error)}` };
    }
  }
}

export class DatabaseHealthCheck implements HealthCheck {
  readonly name: string;
  constructor(
    databaseName: string,
    private readonly config: DatabaseConfig,
    private readonly db: Knex,
  ) {
    this.name = `database:${databaseName}`;
  }

  async check(): Promise<CheckResult> {
    const where = `${this.config.dialect}://${this.config.user}@${this.config.host}${this.config.port ? `:${this.config.port}` : ''}/${this.config.database}`;
    try {
      const result = await this.db.raw(DRIVERS[this.config.dialect].versionQuery);
      const version = String(firstRow(result)?.version ?? 'unknown').split('\n')[0];
      return { name: this.name, ok: true, detail: `${where}: ${version}` };
    } catch (error) {
      return { name: this.name, ok: false, detail: `${where}: ${errorMessage(error)}` };
    }
  }
}

export class SalesforceHealthCheck implements HealthCheck {
  readonly name = 'salesforce';
  constructor(private readonly config: SalesforceConfig) {}

  async check(): Promise<CheckResult> {
    try {
      // jsforce alone takes about a second to load: only a config with Salesforce pays for it.
      const { connectSalesforce } = await import('../clients/salesforce/session');
      const conn = await connectSalesforce(this.config);
      const limits = await conn.limits();
      const api = limits.DailyApiRequests;
      return {
        name: this.name,
        ok: true,
        detail: `${conn.instanceUrl} (API ${this.config.apiVersion}), daily API requests ${api ? `${api.Remaining}/${api.Max}` : "unknown"} left`,
      };
    } catch (error) {
      return { name: this.name, ok: false, detail: `${this.config.loginUrl}: ${errorMessage(error)}` };
    }
  }
}
