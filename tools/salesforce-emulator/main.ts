/**
 * CLI: `node --import tsx tools/salesforce-emulator/main.ts --port 18443 --seed demo --env-out FILE [--state-file F]`.
 * Writes FILE once listening (what scripts/stack.sh waits for) and exits cleanly on SIGTERM or SIGINT.
 */
import { rename, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startEmulator } from './index.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '18443' },
    host: { type: 'string', default: '127.0.0.1' },
    seed: { type: 'string', default: 'demo' },
    'env-out': { type: 'string' },
    'state-file': { type: 'string' },
    'api-version': { type: 'string', default: '62.0' },
    'token-ttl-seconds': { type: 'string' },
  },
  strict: true,
});

if (values.seed !== 'demo' && values.seed !== 'empty') {
  console.error(`--seed must be demo or empty, got ${values.seed}`);
  process.exit(2);
}

const emulator = await startEmulator({
  port: Number(values.port),
  host: values.host,
  seed: values.seed,
  apiVersion: values['api-version'],
  ...(values['state-file'] ? { stateFile: values['state-file'] } : {}),
  ...(values['token-ttl-seconds'] ? { tokenTtlSeconds: Number(values['token-ttl-seconds']) } : {}),
});

const { credentials } = emulator;
if (values['env-out']) {
  const lines = [
    `SALESFORCE_LOGIN_URL=${emulator.url}`,
    `SALESFORCE_USERNAME=${credentials.username}`,
    `SALESFORCE_PASSWORD=${credentials.password}`,
    `SALESFORCE_CLIENT_ID=${credentials.clientId}`,
    `SALESFORCE_CLIENT_SECRET=${credentials.clientSecret}`,
    `SALESFORCE_EMULATOR_ADMIN_URL=${emulator.url}/__admin`,
  ];
  // Written aside and renamed, so whoever waits for a non-empty file never reads half of it.
  const temporary = `${values['env-out']}.tmp`;
  await writeFile(temporary, `${lines.join('\n')}\n`);
  await rename(temporary, values['env-out']);
}
console.log(`Salesforce emulator listening on ${emulator.url} (API v${values['api-version']}, seed ${values.seed})`);

const stop = (signal: string) => {
  console.log(`${signal} received, stopping the Salesforce emulator`);
  emulator.close().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error('failed to stop cleanly:', err);
      process.exit(1);
    },
  );
};
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));
