import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { startEmulator } from '../../tools/salesforce-emulator';
import { closedPort, runBanyan, writeConfigFile } from '../helpers';

const run = promisify(execFile);

async function doctor(yaml: string): Promise<{ code: number; checks: Array<{ name: string; ok: boolean; detail: string }> }> {
  const file = writeConfigFile(yaml);
  try {
    const { stdout } = await run('node', ['bin/banyan.mjs', '--config', file, 'doctor', '--json']);
    return { code: 0, ...JSON.parse(stdout) };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    if (!failed.stdout) throw new Error(`doctor printed nothing: ${failed.stderr}`);
    return { code: failed.code, ...JSON.parse(failed.stdout) };
  }
}

const base = `
kafka:
  brokers: \${KAFKA_BROKERS}
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
databases:
  pg:
    dialect: postgres
    database: postgres
    user: postgres
  maria:
    dialect: mariadb
    database: mysql
    user: root
`;

describe('banyan doctor --json', () => {
  it('reports Kafka, the registry, PostgreSQL and MariaDB ok, and exits 0', async () => {
    const { code, checks } = await doctor(base);
    expect(checks.map((c) => [c.name, c.ok])).toEqual([
      ['kafka', true],
      ['schema-registry', true],
      ['database:pg', true],
      ['database:maria', true],
    ]);
    expect(checks.find((c) => c.name === 'database:pg')?.detail).toContain('PostgreSQL');
    expect(checks.find((c) => c.name === 'database:maria')?.detail).toContain('MariaDB');
    expect(code).toBe(0);
  });

  it('names a failing check and why, and exits non-zero', async () => {
    const { code, checks } = await doctor(`${base}  missing:
    dialect: postgres
    database: no_such_database_for_banyan
    user: postgres
`);
    const missing = checks.find((c) => c.name === 'database:missing');
    expect(missing?.ok).toBe(false);
    expect(missing?.detail).toMatch(/no_such_database_for_banyan.*does not exist/);
    expect(checks.filter((c) => c.ok).map((c) => c.name)).toEqual(['kafka', 'schema-registry', 'database:pg', 'database:maria']);
    expect(code).toBe(1);
  });

  it('logs in to Salesforce and reads its API limits, and says why when it cannot', async () => {
    const emulator = await startEmulator({ port: 0 });
    try {
      const { username, clientId } = emulator.credentials;
      const salesforce = `${base}salesforce:
  loginUrl: ${emulator.url}
  username: ${username}
  password: \${SF_PASSWORD}
  clientId: ${clientId}
  clientSecret: \${SF_SECRET}
`;
      process.env.SF_SECRET = emulator.credentials.clientSecret;
      process.env.SF_PASSWORD = emulator.credentials.password;
      const good = await doctor(salesforce);
      expect(good.checks.find((c) => c.name === 'salesforce')).toMatchObject({ ok: true, detail: expect.stringMatching(/daily API requests \d+\/\d+ left/) });
      process.env.SF_PASSWORD = 'wrong';
      const bad = await doctor(salesforce);
      expect(bad.checks.find((c) => c.name === 'salesforce')).toMatchObject({ ok: false, detail: expect.stringContaining('authentication failure') });
      expect(bad.code).toBe(1);
    } finally {
      delete process.env.SF_PASSWORD;
      delete process.env.SF_SECRET;
      await emulator.close();
    }
  });

  it('reports a closed port as ECONNREFUSED with its address, exits 1 and prints nothing after the table', async () => {
    const port = await closedPort();
    const file = writeConfigFile(`
kafka:
  brokers: 127.0.0.1:${port}
schemaRegistry:
  url: http://127.0.0.1:${port}/apis/ccompat/v7
databases:
  pg: { dialect: postgres, port: ${port}, database: postgres, user: postgres }
`);
    const { code, stdout, stderr } = await runBanyan(file, ['doctor']);
    const refused = `connect ECONNREFUSED 127.0.0.1:${port}`;
    expect(stdout.split('\n')).toEqual([
      'CHECK            STATE  DETAIL',
      `kafka            FAIL   127.0.0.1:${port}: ${refused}`,
      `schema-registry  FAIL   http://127.0.0.1:${port}/apis/ccompat/v7/subjects: ${refused}`,
      `database:pg      FAIL   postgres://postgres@127.0.0.1:${port}/postgres: ${refused}`,
      '',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(1);
  });
});
