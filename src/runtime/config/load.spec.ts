import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../core';
import { parseConfig } from './load';

const valid = `
kafka:
  brokers: \${BROKERS:-127.0.0.1:19092}
schemaRegistry:
  url: http://127.0.0.1:18081/apis/ccompat/v7
databases:
  legacy:
    dialect: mariadb
    database: app
    user: root
    password: \${DB_PASSWORD}
sources:
  - name: users
    type: changelog
    database: legacy
    table: Users
`;

function configError(yaml: string, env: Record<string, string> = {}): ConfigError {
  try {
    parseConfig(yaml, 'banyan.yaml', env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfig', () => {
  it('fills defaults, reads secrets from the environment and normalises values', () => {
    const config = parseConfig(valid, 'banyan.yaml', { DB_PASSWORD: 's3cret', BROKERS: 'a:1, b:2' });
    expect(config.kafka.brokers).toEqual(['a:1', 'b:2']);
    expect(config.kafka.topics.offsets).toBe('banyan.offsets');
    expect(config.databases.legacy?.dialect).toBe('mysql');
    expect(config.databases.legacy?.password).toBe('s3cret');
    expect(config.sources[0]).toMatchObject({ type: 'changelog', pollIntervalMs: 500, snapshot: true });
  });

  it('names every mistake of a config with two mistakes in one message', () => {
    const broken = valid.replace('dialect: mariadb', 'dialect: oracle').replace('database: legacy', 'database: nowhere');
    const error = configError(broken, { DB_PASSWORD: 'x' });
    expect(error.issues.map((i) => i.path)).toEqual([
      expect.stringMatching(/^databases\.legacy\.dialect \(line 8\)$/),
      expect.stringMatching(/^sources\[0\]\.database \(line 15\)$/),
    ]);
    expect(error.message).toContain('invalid configuration in banyan.yaml (2 problems)');
    expect(error.message).toMatch(/databases\.legacy\.dialect.*mssql.*postgres.*mysql/);
    expect(error.message).toContain('no database named "nowhere" (configured: legacy)');
  });

  it('refuses a secret written into the file and names the unset variable', () => {
    const error = configError(valid.replace('${DB_PASSWORD}', 'hunter2'));
    expect(error.issues).toEqual([
      { path: 'databases.legacy.password', message: expect.stringContaining('secrets come from the environment only') },
    ]);
    expect(error.message).not.toContain('hunter2');
    expect(configError(valid).issues).toEqual([
      { path: 'databases.legacy.password', message: 'environment variable DB_PASSWORD is not set' },
    ]);
  });

  it('reports unknown fields (typos) and missing sections', () => {
    const error = configError('kafka:\n  brokerz: x\n', {});
    const messages = error.issues.map((i) => `${i.path}: ${i.message}`);
    expect(messages).toContainEqual(expect.stringMatching(/^kafka \(line 2\): unknown field "brokerz"$/));
    expect(messages).toContainEqual(expect.stringMatching(/^kafka\.brokers.*required/));
    expect(messages).toContainEqual(expect.stringMatching(/^schemaRegistry: required$/));
  });

  it('reports YAML syntax errors with their line', () => {
    const error = configError('kafka:\n  brokers: [a\n');
    expect(error.issues[0]?.path).toMatch(/^line \d+, column \d+$/);
  });
});
