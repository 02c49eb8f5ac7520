import { describe, expect, it } from 'vitest';
import { configErrorAt, configLocation, parseConfig } from './index';

const yaml = `kafka:
  brokers: 127.0.0.1:19092
schemaRegistry:
  url: http://127.0.0.1:18081/apis/ccompat/v7
databases:
  legacy:
    dialect: postgres
    database: app
    user: app
sources:
  - name: users
    type: changelog
    database: legacy
    table: public.users
  - name: orders
    type: changelog
    database: legacy
    table: 'public."order_lines";--'
`;

describe('configErrorAt', () => {
  it('names each problem found after loading by its path and its line in the file', () => {
    const config = parseConfig(yaml, 'banyan.yaml', {});
    expect(configLocation(config, ['sources', 1, 'table'])).toBe('sources[1].table (line 18)');
    const error = configErrorAt(config, [
      { path: ['sources', 0, 'table'], message: 'table public.users does not exist' },
      { path: ['sources', 1, 'table'], message: 'table public."order_lines";-- does not exist' },
    ]);
    expect(error.message).toBe(
      'invalid configuration in banyan.yaml (2 problems):\n' +
        '  - sources[0].table (line 14): table public.users does not exist\n' +
        '  - sources[1].table (line 18): table public."order_lines";-- does not exist',
    );
  });

  it('gives the path alone for a config that was not read from text', () => {
    const config = { ...parseConfig(yaml, 'banyan.yaml', {}) };
    expect(configErrorAt(config, [{ path: ['sources', 0, 'table'], message: 'gone' }]).message).toBe(
      'invalid configuration in the configuration (1 problem):\n  - sources[0].table: gone',
    );
  });
});
