import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadEnvFile, STACK_ENV_FILE } from '../../src/cli/context';

let startedHere = false;

function stackAnswers(): boolean {
  if (!existsSync(STACK_ENV_FILE)) return false;
  try {
    execFileSync('bash', ['scripts/stack.sh', 'status'], { stdio: 'pipe' });
    const brokers = /KAFKA_BROKERS=(.*)/.exec(readFileSync(STACK_ENV_FILE, 'utf8'))?.[1];
    execFileSync('node', ['scripts/kafka-ready.mjs', brokers ?? ''], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** Starts the local stack unless it already answers, and hands its addresses to the tests. */
export async function setup(): Promise<void> {
  if (!stackAnswers()) {
    console.log('[integration] starting the local stack (scripts/stack.sh up)');
    execFileSync('bash', ['scripts/stack.sh', 'up'], { stdio: 'inherit' });
    startedHere = true;
  }
  loadEnvFile(STACK_ENV_FILE);
}

export async function teardown(): Promise<void> {
  if (startedHere) execFileSync('bash', ['scripts/stack.sh', 'down'], { stdio: 'inherit' });
}
