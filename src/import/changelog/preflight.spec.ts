import type { Knex } from 'knex';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Databases } from '../../clients/databases';
import { parseConfig } from '../../config';
import type { Logger } from '../../runtime/logger';
import { changelogSourceProblems } from './preflight';

const config = parseConfig(
  `kafka:
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
`,
  'banyan.yaml',
  {},
);

/** Databases whose every query ends as `answer` does: the driver's error, or never. */
function databasesAnswering(answer: () => Promise<never>): Databases {
  const db = { raw: answer } as unknown as Knex;
  return { get: () => db } as unknown as Databases;
}

function driverError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('changelogSourceProblems', () => {
  afterEach(() => void vi.useRealTimers());

  it('skips the check of a source whose database refuses the connection, and says so', async () => {
    const logger = { warn: vi.fn() };
    const problems = await changelogSourceProblems(
      config,
      databasesAnswering(() => Promise.reject(driverError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'))),
      () => true,
      logger as unknown as Logger,
    );
    expect(problems).toEqual([]);
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(logger.warn.mock.calls[0]).toEqual([
      {
        event: 'preflight.skipped',
        source: 'users',
        database: 'legacy',
        table: 'public.users',
        reason: 'checking table public.users of source "users" (database legacy): connect ECONNREFUSED 127.0.0.1:5432',
      },
      'check of source "users" skipped: database legacy unreachable',
    ]);
  });

  it('skips the check of a source whose database does not answer by the deadline', async () => {
    vi.useFakeTimers();
    const logger = { warn: vi.fn() };
    const checking = changelogSourceProblems(config, databasesAnswering(() => new Promise<never>(() => undefined)), () => true, logger as unknown as Logger);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await checking).toEqual([]);
    expect(logger.warn.mock.calls[0]![0]).toMatchObject({ event: 'preflight.skipped', source: 'users', reason: expect.stringContaining('no answer within 10000 ms') });
  });

  it('lets a permission refused surface, naming the source', async () => {
    const logger = { warn: vi.fn() };
    const checking = changelogSourceProblems(
      config,
      databasesAnswering(() => Promise.reject(driverError('42501', 'permission denied for table users'))),
      () => true,
      logger as unknown as Logger,
    );
    await expect(checking).rejects.toMatchObject({
      message: 'checking table public.users of source "users" (database legacy): permission denied for table users',
      retriable: false,
      code: '42501',
    });
    expect(logger.warn).not.toHaveBeenCalled();
  });

  it('lets a bug surface', async () => {
    const checking = changelogSourceProblems(config, databasesAnswering(() => Promise.reject(new TypeError('db.raw is not a function'))), () => true);
    await expect(checking).rejects.toThrow('checking table public.users of source "users" (database legacy): db.raw is not a function');
  });
});
