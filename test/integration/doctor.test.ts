import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

async function doctor(yaml: string): Promise<{ code: number; checks: Array<{ name: string; ok: boolean; detail: string }> }> {
  const file = join(mkdtempSync(join(tmpdir(), 'banyan-doctor-')), 'banyan.yaml');
  writeFileSync(file, yaml);
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
});
