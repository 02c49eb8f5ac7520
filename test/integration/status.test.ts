import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import type { Knex } from 'knex';
import { afterEach, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import { parseConfig } from '../../src/config';
import { closedPort, freshName, listeningUrl, runBanyan, spawnBanyan, writeConfigFile } from '../helpers';

const exec = promisify(execFile);

describe('banyan run status server and banyan status', () => {
  let child: ChildProcess | undefined;
  let db: Knex | undefined;
  let table = '';

  afterEach(async () => {
    child?.kill('SIGKILL');
    await db?.raw(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    await db?.destroy();
  });

  it('shows each source’s state, records and snapshot phase as JSON, text, a page and Prometheus metrics', async () => {
    table = freshName('status_users');
    const yaml = `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${freshName('status')}
  topics: { offsets: ${freshName('offsets')}, deadLetter: ${freshName('dlq')} }
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
http: { port: 0 }
databases:
  pg: { dialect: postgres, database: postgres, user: postgres }
sources:
  - { name: status-users, type: changelog, database: pg, table: ${table}, topic: ${freshName('legacy.status')} }
`;
    const file = writeConfigFile(yaml);
    db = createKnex(parseConfig(yaml, file).databases.pg!);
    await db.raw(`CREATE TABLE ${table} (id integer PRIMARY KEY, name text)`);
    await db.raw(`INSERT INTO ${table} SELECT i, 'user ' || i FROM generate_series(1, 20) i`);
    await exec('node', ['bin/banyan.mjs', '--config', file, 'migrate']);

    child = spawnBanyan(file, ['run'], 'pipe');
    const url = await listeningUrl(child);

    let status: { sources: Array<{ name: string; state: string; records: number; details: Record<string, unknown> }> };
    const deadline = Date.now() + 20_000;
    do {
      await new Promise((resolve) => setTimeout(resolve, 200));
      status = (await (await fetch(`${url}/status`)).json()) as typeof status;
    } while ((status.sources[0]?.records ?? 0) < 20 && Date.now() < deadline);
    expect(status.sources).toEqual([
      expect.objectContaining({ name: 'status-users', state: 'running', records: 20, details: expect.objectContaining({ phase: 'changes', table }) }),
    ]);

    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('banyan_source_records_total{source="status-users"} 20');
    expect(metrics).toContain('banyan_source_up{source="status-users"} 1');
    expect(await (await fetch(`${url}/`)).text()).toMatch(/status-users\s+running\s+20\s+0/);

    const { stdout } = await exec('node', ['bin/banyan.mjs', '--config', file, 'status', '--url', url]);
    expect(stdout).toMatch(/^KIND\s+PIPELINE\s+STATE\s+RECORDS\s+DLQ/);
    expect(stdout).toMatch(/source\s+status-users\s+running\s+20\s+0\s+\S+\s+phase=changes/);
  });
});

describe('banyan status with no banyan run', () => {
  it('says in one line that nothing answers and why, and exits 1', async () => {
    const port = await closedPort();
    const file = writeConfigFile(`
kafka: { brokers: 127.0.0.1:19092 }
schemaRegistry: { url: http://127.0.0.1:18081 }
http: { port: ${port} }
`);
    const { code, stdout, stderr } = await runBanyan(file, ['status']);
    expect({ code, stdout, stderr }).toEqual({
      code: 1,
      stdout: '',
      stderr: `error: no banyan run answers at http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}\n`,
    });
  });
});
