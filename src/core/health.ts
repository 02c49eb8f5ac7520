/** DI token for health checks; every connection Banyan depends on binds one (doctor, /readyz). */
export const HealthCheck = Symbol.for('banyan.HealthCheck');

export interface CheckResult {
  name: string;
  ok: boolean;
  /** One line a person can act on: what answered, or what failed and why. Never a secret. */
  detail: string;
}

export interface HealthCheck {
  readonly name: string;
  /** `signal` aborts when the check's deadline passed: stop what is still running (retries). */
  check(signal?: AbortSignal): Promise<CheckResult>;
}
