import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from 'jsforce';
import { afterEach, describe, expect, it } from 'vitest';

const MAIN = join(import.meta.dirname, '../../tools/salesforce-emulator/main.ts');

let child: ChildProcess | undefined;
let dir: string | undefined;

afterEach(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
  child = undefined;
  dir = undefined;
});

async function waitForFile(file: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const size = await stat(file).then((s) => s.size, () => 0);
    if (size > 0) return readFile(file, 'utf8');
    if (Date.now() > deadline) throw new Error(`${file} was not written within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('Salesforce emulator: command line', () => {
  it('writes the env file once listening, serves the demo seed, and saves its state on SIGTERM', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sf-emulator-cli-'));
    const envFile = join(dir, 'emulator.env');
    const stateFile = join(dir, 'state.json');
    child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--port', '0', '--seed', 'demo', '--env-out', envFile, '--state-file', stateFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child?.once('exit', (code) => resolve(code)));

    const env = Object.fromEntries((await waitForFile(envFile, 20_000)).trim().split('\n').map((line) => {
      const at = line.indexOf('=');
      return [line.slice(0, at), line.slice(at + 1)];
    }));
    expect(Object.keys(env)).toEqual([
      'SALESFORCE_LOGIN_URL', 'SALESFORCE_USERNAME', 'SALESFORCE_PASSWORD',
      'SALESFORCE_CLIENT_ID', 'SALESFORCE_CLIENT_SECRET', 'SALESFORCE_EMULATOR_ADMIN_URL',
    ]);
    expect(env.SALESFORCE_LOGIN_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(env.SALESFORCE_EMULATOR_ADMIN_URL).toBe(`${env.SALESFORCE_LOGIN_URL}/__admin`);

    const conn = new Connection({
      oauth2: { loginUrl: env.SALESFORCE_LOGIN_URL, clientId: env.SALESFORCE_CLIENT_ID, clientSecret: env.SALESFORCE_CLIENT_SECRET },
      version: '62.0',
    });
    await conn.login(env.SALESFORCE_USERNAME as string, env.SALESFORCE_PASSWORD as string);
    expect((await conn.query('SELECT COUNT() FROM Account')).totalSize).toBe(3);
    const admin = await fetch(`${env.SALESFORCE_EMULATOR_ADMIN_URL}/state`);
    expect(await admin.json()).toMatchObject({ apiUsage: { used: 1 } });

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const state = JSON.parse(await readFile(stateFile, 'utf8')) as { format: number; records: { records: Record<string, unknown[]> } };
    expect(state.format).toBe(1);
    expect(state.records.records.Contact).toHaveLength(5);
  });
});
