import type { Container } from 'inversify';
import { HealthCheck, type CheckResult } from '../core';
import { runCheck } from '../runtime/health';

/** Runs every bound health check side by side. */
export async function runDoctor(container: Container): Promise<CheckResult[]> {
  const checks = container.getAll<HealthCheck>(HealthCheck);
  return Promise.all(checks.map((c) => runCheck(c)));
}

export function formatChecks(results: CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.name.length), 5);
  const rows = results.map((r) => `${r.name.padEnd(width)}  ${r.ok ? 'ok  ' : 'FAIL'}  ${r.detail}`);
  return [`${'CHECK'.padEnd(width)}  STATE  DETAIL`, ...rows].join('\n');
}
