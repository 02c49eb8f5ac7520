import { existsSync, readFileSync } from 'node:fs';
import { ConfigError } from '../core';
import { loadConfigFile, type BanyanConfig } from '../config';

export interface GlobalOptions {
  config: string;
  envFile?: string;
  debug?: boolean;
}

/** The env file the local stack writes; read when present so `npx banyan …` finds the stack. */
export const STACK_ENV_FILE = '.banyan/stack.env';

/**
 * Loads KEY=VALUE lines into process.env without overriding what is already set, so a real
 * environment always wins over the file.
 */
export function loadEnvFile(file: string): void {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)\s*$/.exec(line);
    if (match && process.env[match[1]!] === undefined) process.env[match[1]!] = match[2];
  }
}

export function loadConfig(options: GlobalOptions): BanyanConfig {
  const envFile = options.envFile ?? (existsSync(STACK_ENV_FILE) ? STACK_ENV_FILE : undefined);
  if (envFile) {
    if (!existsSync(envFile)) throw new ConfigError(envFile, [{ path: '', message: 'env file not found' }]);
    loadEnvFile(envFile);
  }
  return loadConfigFile(options.config);
}
