/** Where in a pipeline an error happened; decides which metric and which dead letter it feeds. */
export type Stage = 'receiving' | 'processing' | 'sending';

export interface BanyanErrorOptions {
  /** Whether the same call may succeed if tried again (a lost connection, a lock, a rate limit). */
  retriable: boolean;
  stage: Stage;
  /** A stable machine-readable code, e.g. a driver error number or a Salesforce errorCode. */
  code?: string;
  /** What the error is about: table, row key, topic, offset… Never secrets. */
  context?: Record<string, unknown>;
  cause?: unknown;
}

/** The base of every error Banyan raises on purpose: it says what to do next. */
export class BanyanError extends Error {
  readonly retriable: boolean;
  readonly stage: Stage;
  readonly code: string | undefined;
  readonly context: Record<string, unknown>;

  constructor(message: string, options: BanyanErrorOptions) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.retriable = options.retriable;
    this.stage = options.stage;
    this.code = options.code;
    this.context = options.context ?? {};
  }
}

/** One wrong value in the configuration, named by its path. */
export interface ConfigIssue {
  path: string;
  message: string;
}

/** A configuration that cannot run; lists every problem at once, not the first one. */
export class ConfigError extends Error {
  readonly issues: ConfigIssue[];

  constructor(where: string, issues: ConfigIssue[]) {
    const lines = issues.map((i) => `  - ${i.path || '(root)'}: ${i.message}`);
    super(`invalid configuration in ${where} (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** A single record that cannot be converted or written; it goes to the dead-letter topic, the pipeline goes on. */
export class BadRecordError extends BanyanError {
  constructor(message: string, options: Omit<BanyanErrorOptions, 'retriable'>) {
    super(message, { ...options, retriable: false });
  }
}

export function isRetriable(error: unknown): boolean {
  return error instanceof BanyanError && error.retriable;
}

export function errorMessage(error: unknown): string {
  // Node reports a connect that failed on every address of a name (localhost: ::1 and 127.0.0.1)
  // as an AggregateError with an empty message; the errors inside say what happened.
  if (error instanceof AggregateError && !error.message && error.errors.length > 0) {
    return [...new Set(error.errors.map(errorMessage))].join('; ');
  }
  return error instanceof Error ? error.message : String(error);
}
