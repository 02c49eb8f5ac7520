import { Command, Option } from 'commander';
import { ConfigError } from '../core';
import { Databases } from '../clients/databases';
import { importChecksModule } from '../import/module';
import { createRootLogger } from '../runtime/logger';
import { createContainer } from '../runtime/module';
import { loadConfig, type GlobalOptions } from './context';
import { formatChecks, runDoctor } from './doctor';
import { formatStatus } from '../runtime/http-server';
import type { SourceStatus } from '../runtime/source-runner';
import { migrate } from './migrate';
import { run } from './run';

const program = new Command('banyan')
  .description('Two-way sync bridge for strangler-fig migrations: legacy SQL, Kafka and Salesforce kept in step.')
  .addOption(
    new Option('-c, --config <file>', 'configuration file (YAML)').env('BANYAN_CONFIG').default('banyan.yaml'),
  )
  .option('--env-file <file>', 'KEY=VALUE file read into the environment (default: .banyan/stack.env if present)')
  .showHelpAfterError();

program
  .command('doctor')
  .description('check Kafka, the schema registry, every configured database and Salesforce')
  .option('--json', 'print {"checks":[{name, ok, detail}]} instead of a table')
  .action(async (options: { json?: boolean }) => {
    const config = loadConfig(program.opts<GlobalOptions>());
    // Keep stdout for the report: logs go to stderr, and only warnings.
    const logger = createRootLogger(config.log.level === 'info' ? 'warn' : config.log.level, process.stderr);
    const container = createContainer(config, logger, [importChecksModule(config)]);
    try {
      const checks = await runDoctor(container);
      console.log(options.json ? JSON.stringify({ checks }) : formatChecks(checks));
      process.exitCode = checks.every((c) => c.ok) ? 0 : 1;
    } finally {
      await container.get(Databases).destroy();
    }
  });

program
  .command('run')
  .description('run every pipeline of the configuration until SIGINT or SIGTERM')
  .action(async () => {
    await run(loadConfig(program.opts<GlobalOptions>()));
  });

program
  .command('migrate')
  .description('install (or with --down remove) the changelog tables and triggers of every changelog source')
  .option('--down', 'remove them instead (the legacy tables themselves are never touched)')
  .action(async (options: { down?: boolean }) => {
    const lines = await migrate(loadConfig(program.opts<GlobalOptions>()), options.down ? 'down' : 'up');
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
    const response = await fetch(`${url}/status`).catch((error: Error) => {
      throw new Error(`no banyan run answers at ${url}: ${error.cause instanceof Error ? error.cause.message : error.message}`);
    });
    const body = (await response.json()) as { sources: SourceStatus[] };
    console.log(options.json ? JSON.stringify(body) : formatStatus(body.sources));
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
    throw error;
  }
}
