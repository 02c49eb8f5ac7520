import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core';
import { parseConfig } from './index';

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

  it('names a wrong value as wrong, with what it expects and what it got, and only a missing one as required', () => {
    const problems = (yaml: string) => configError(yaml, { DB_PASSWORD: 'x' }).issues.map((i) => `${i.path}: ${i.message}`);
    const broken = valid
      .replace('dialect: mariadb', 'dialect: oracle')
      .replace('user: root', 'user: 5\n    port: abc\n    ssl: maybe')
      .replace('brokers: ${BROKERS:-127.0.0.1:19092}', 'brokers: 127.0.0.1:19092, nohost')
      .replace('table: Users', 'table: Users\n    pollIntervalMs: 0');
    expect(problems(broken)).toEqual([
      'kafka.brokers[1] (line 3): a broker is host:port, got "nohost"',
      'databases.legacy.dialect (line 8): expected one of mssql|postgres|mysql|mariadb, got "oracle"',
      'databases.legacy.port (line 11): expected a number, got "abc"',
      'databases.legacy.user (line 10): expected a string, got 5',
      'databases.legacy.ssl (line 12): expected one of true|false, got "maybe"',
      'sources[0].pollIntervalMs (line 19): expected a number > 0, got 0',
    ]);
    expect(problems(valid.replace('brokers: ${BROKERS:-127.0.0.1:19092}', 'brokers: 9092').replace('type: changelog', 'type: chnagelog'))).toEqual([
      'kafka.brokers (line 3): expected a string or a list, got 9092',
      'sources[0].type (line 14): expected one of changelog|salesforce-cdc, got "chnagelog"',
    ]);
    expect(problems(valid.replace('    type: changelog\n', '').replace('    user: root\n', ''))).toEqual([
      'databases.legacy.user (line 8): required',
      'sources[0].type (line 12): required',
    ]);
  });

  it('never repeats a secret written into the file, whatever its type', () => {
    const error = configError(valid.replace('${DB_PASSWORD}', '12345'));
    expect(error.issues).toEqual([
      { path: 'databases.legacy.password', message: expect.stringContaining('secrets come from the environment only') },
      { path: 'databases.legacy.password (line 11)', message: 'expected a string' },
    ]);
    expect(error.message).not.toContain('12345');
  });

  it('reports YAML syntax errors with their line', () => {
    const error = configError('kafka:\n  brokers: [a\n');
    expect(error.issues[0]?.path).toMatch(/^line \d+, column \d+$/);
  });
});
