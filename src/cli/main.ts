import { Command, Option } from 'commander';
import { ConfigError, errorMessage } from '../core';
import type { PipelineStatus } from '../runtime/pipeline';
import { loadConfig, type GlobalOptions } from './context';

// Each command imports what it runs when it runs: kafkajs, knex and jsforce take seconds to load on
// a busy machine, and `status`, `config` and `--help` need none of them.

/** How long `banyan status` waits for the status server before it says so. */
const STATUS_TIMEOUT_MS = 5000;

const program = new Command('banyan')
  .description('Two-way sync bridge for strangler-fig migrations: legacy SQL, Kafka and Salesforce kept in step.')
  .addOption(
    new Option('-c, --config <file>', 'configuration file (YAML)').env('BANYAN_CONFIG').default('banyan.yaml'),
  )
  .option('--env-file <file>', 'KEY=VALUE file read into the environment (default: .banyan/stack.env if present)')
  .option('--debug', 'on a failure, print the whole error with its stack, not one line')
  .showHelpAfterError();

program
  .command('doctor')
  .description('check Kafka, the schema registry, every configured database and Salesforce')
  .option('--json', 'print {"checks":[{name, ok, detail}]} instead of a table')
  .action(async (options: { json?: boolean }) => {
    const config = loadConfig(program.opts<GlobalOptions>());
    const [{ Databases }, { createRootLogger }, { doctorContainer, formatChecks, runDoctor }] = await Promise.all([
      import('../clients/databases'),
      import('../runtime/logger'),
      import('./doctor'),
    ]);
    // Keep stdout for the report: logs go to stderr, and only warnings.
    const logger = createRootLogger(config.log.level === 'info' ? 'warn' : config.log.level, process.stderr);
    const container = doctorContainer(config, logger);
    try {
      const checks = await runDoctor(container);
      await print(options.json ? JSON.stringify({ checks }) : formatChecks(checks));
      process.exitCode = checks.every((c) => c.ok) ? 0 : 1;
    } finally {
      await container.get(Databases).destroy();
    }
    // A check past its deadline may still run inside kafkajs, which goes on retrying a connect it
    // was told to drop; the report is out and final, so nothing is left worth waiting for.
    process.exit();
  });

program
  .command('run')
  .description('run every pipeline of the configuration until SIGINT or SIGTERM')
  .action(async () => {
    const config = loadConfig(program.opts<GlobalOptions>());
    const { run } = await import('./run');
    await run(config);
  });

program
  .command('migrate')
  .description('install (or with --down remove) the changelog tables and triggers of every changelog source')
  .option('--down', 'remove them instead (the legacy tables themselves are never touched)')
  .action(async (options: { down?: boolean }) => {
    const config = loadConfig(program.opts<GlobalOptions>());
    const { migrate } = await import('./migrate');
    const lines = await migrate(config, options.down ? 'down' : 'up');
    for (const line of lines) console.log(line);
  });

program
  .command('status')
  .description('show what a running `banyan run` is doing: per source state, records, dead letters, progress')
  .option('--url <url>', 'its status server (default: http.host and http.port of the config)')
  .option('--json', 'print the JSON the server answers')
  .action(async (options: { url?: string; json?: boolean }) => {
    const config = loadConfig(program.opts<GlobalOptions>());
    const url = options.url ?? `http://${config.http.host}:${config.http.port}`;
    const response = await fetch(`${url}/status`, { signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) }).catch((error: Error) => {
      const why = error.name === 'TimeoutError' ? `no answer within ${STATUS_TIMEOUT_MS / 1000} s` : errorMessage(error.cause ?? error);
      throw new Error(`no banyan run answers at ${url}: ${why}`);
    });
    if (!response.ok) throw new Error(`${url}/status answered HTTP ${response.status}`);
    const body = (await response.json()) as { sources: PipelineStatus[]; transforms?: PipelineStatus[]; sinks?: PipelineStatus[] };
    const { formatStatus } = await import('../runtime/http-server');
    console.log(options.json ? JSON.stringify(body) : formatStatus([...body.sources, ...(body.transforms ?? []), ...(body.sinks ?? [])]));
  });

const changetypes = program
  .command('changetypes')
  .description('the lifecycle state of each change type (legacy-owned → dual → new-owned → decommissioned), see docs/lifecycle.md');

changetypes
  .command('list')
  .description('every change type with its state and who set it, when and why')
  .option('--json', 'print {"changeTypes":[{type, state, since, by, why, …}]}')
  .action(async (options: { json?: boolean }) => {
    const config = loadConfig(program.opts<GlobalOptions>());
    const { listChangeTypes } = await import('./changetypes');
    console.log(await listChangeTypes(config, options));
  });

changetypes
  .command('set <type> <state>')
  .description('move a change type to a state: every running instance follows within seconds; the transition is audited')
  .requiredOption('--why <reason>', 'why (kept in the audit)')
  .option('--by <name>', 'who makes it (default: the OS user)')
  .option('--expect <state>', 'refuse unless the type is in this state now')
  .action(async (type: string, state: string, options: { why: string; by?: string; expect?: string }) => {
    const config = loadConfig(program.opts<GlobalOptions>());
    const { setChangeType } = await import('./changetypes');
    console.log(await setChangeType(config, type, state, options));
  });

changetypes
  .command('history [type]')
  .description('the audit: every transition (of one change type, or all), oldest first')
  .option('--json', 'print {"history":[{type, from, state, at, by, why, …}]}')
  .action(async (type: string | undefined, options: { json?: boolean }) => {
    const config = loadConfig(program.opts<GlobalOptions>());
    const { changeTypeHistory } = await import('./changetypes');
    console.log(await changeTypeHistory(config, type, options));
  });

program
  .command('config')
  .description('validate the configuration and print it with defaults filled in (secrets hidden)')
  .action(() => {
    const config = loadConfig(program.opts<GlobalOptions>());
    console.log(JSON.stringify(config, (key, value) => (/password|secret/i.test(key) && value ? '[redacted]' : value), 2));
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exitCode = 2;
  } else {
    // A tool answers with the cause in one line; the stack is for a bug report, on request.
    console.error(program.opts<GlobalOptions>().debug ? error : `error: ${oneLine(error)}`);
    process.exitCode = 1;
  }
}

/** Writes a line to stdout and waits until it is handed to the OS, so exiting cannot cut it. */
function print(text: string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(`${text}\n`, (error) => (error ? reject(error) : resolve())));
}

/** The message and those of its causes that it does not already contain, on one line. */
function oneLine(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e !== undefined && parts.length < 5; e = e instanceof Error ? e.cause : undefined) {
    const message = errorMessage(e).trim();
    if (message && !parts.some((p) => p.includes(message))) parts.push(message);
  }
  return parts.join(': ').replace(/\s*\n\s*/g, ' ');
}
