import { afterEach, describe, expect, it } from 'vitest';
import { StatusServer } from './http-server';
import type { SourceStatus } from './source-runner';

const source: SourceStatus = {
  kind: 'source',
  name: 'users',
  state: 'running',
  records: 3,
  deadLetters: 0,
  transactions: 1,
  lastCommitAt: '2026-01-01T00:00:00.000Z',
  lastError: null,
  details: { phase: 'changes' },
} as SourceStatus;

describe('StatusServer', () => {
  let server: StatusServer | undefined;
  afterEach(async () => {
    await server?.stop();
  });

  it('answers 500 when reading the status throws, reports it, and goes on answering', async () => {
    let broken = true;
    const failures: Array<{ url: string; message: string }> = [];
    server = new StatusServer(
      () => {
        if (broken) throw new Error('status store is gone');
        return [source];
      },
      (error, url) => failures.push({ url, message: (error as Error).message }),
    );
    const url = await server.start('127.0.0.1', 0);

    for (const path of ['/status', '/readyz', '/metrics', '/']) {
      const response = await fetch(`${url}${path}`);
      expect([path, response.status, await response.text()]).toEqual([path, 500, 'internal error: status store is gone\n']);
    }
    expect(failures).toEqual(['/status', '/readyz', '/metrics', '/'].map((u) => ({ url: u, message: 'status store is gone' })));

    broken = false;
    const status = await fetch(`${url}/status`);
    expect(status.status).toBe(200);
    expect(await status.json()).toEqual({ sources: [expect.objectContaining({ name: 'users', records: 3 })], transforms: [], sinks: [] });
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${url}/metrics`)).text()).toContain('banyan_source_records_total{source="users"} 3');
  });
});
