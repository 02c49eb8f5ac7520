import { Command, InvalidArgumentError, Option } from 'commander';
import { loadConfig } from '../src/cli/context';
import { ConfigError } from '../src/core';
import { benchExportLegacy, type ExportLegacyDialect } from './export-legacy';
import { benchExportSalesforce } from './export-salesforce';
import { benchImport, type ImportDialect } from './import';
import { printResult } from './report';
import { benchTransform } from './transform';

/**
 * `npm run bench -- <name> [options]`: runs one benchmark against the systems of a Banyan config
 * (banyan.yaml by default, so the local stack; .banyan/stack.env is read as `banyan` reads it).
 */
const program = new Command('bench').description('Banyan benchmarks against the systems of a Banyan config (npm run stack:up first)');

const count = (min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer of at least ${min}, got "${value}"`);
  return n;
};

function parseJsonObject(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError(`expected a JSON object, got "${value}"`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidArgumentError(`expected a JSON object, got "${value}"`);
  return parsed as Record<string, unknown>;
}

program
  .command('import')
  .description('changelog poller: N legacy changes drained into Kafka, committed; a warm-up, then the median of --runs')
  .addOption(new Option('--dialect <name>', 'legacy database (default: postgres, or that of --database)').choices(['postgres', 'mariadb']))
  .addOption(new Option('-c, --config <file>', 'Banyan config: its kafka, schemaRegistry and databases are used').env('BANYAN_CONFIG').default('banyan.yaml'))
  .option('--database <name>', "a key of the config's databases (default: the config's only database of the dialect)")
  .option('--env-file <file>', 'KEY=VALUE file read into the environment (default: .banyan/stack.env if present)')
  .option('--rows <n>', 'changes to make and drain in each run', count(1), 200_000)
  .option('--runs <n>', 'timed runs; the result is their median', count(1), 3)
  .option('--warmup <n>', 'runs before the timed ones, printed but not counted', count(0), 1)
  .option('--json', 'print only the JSON line on stdout (progress goes to stderr)')
  .action(
    async (options: {
      dialect?: ImportDialect;
      config: string;
      database?: string;
      envFile?: string;
      rows: number;
      runs: number;
      warmup: number;
      json?: boolean;
    }) => {
      const log = (line: string) => (options.json ? process.stderr.write(`${line}\n`) : console.log(line));
      const config = loadConfig({ config: options.config, ...(options.envFile ? { envFile: options.envFile } : {}) });
      const result = await benchImport(
        {
          config,
          configFile: options.config,
          ...(options.dialect ? { dialect: options.dialect } : {}),
          ...(options.database ? { database: options.database } : {}),
          rows: options.rows,
          warmups: options.warmup,
          runs: options.runs,
        },
        log,
      );
      printResult(result, Boolean(options.json));
    },
  );

program
  .command('transform')
  .description('transform runner: N legacy change records already in a topic turned into domain events, committed; a warm-up, then the median of --runs')
  .addOption(new Option('-c, --config <file>', 'Banyan config: its kafka, schemaRegistry and PostgreSQL database are used').env('BANYAN_CONFIG').default('banyan.yaml'))
  .option('--database <name>', "a PostgreSQL database of the config's databases, where the input changes are made (default: its only one)")
  .option('--env-file <file>', 'KEY=VALUE file read into the environment (default: .banyan/stack.env if present)')
  .option('--events <n>', 'change records to transform in each run', count(1), 200_000)
  .option('--runs <n>', 'timed runs; the result is their median', count(1), 3)
  .option('--warmup <n>', 'runs before the timed ones, printed but not counted', count(0), 1)
  .option('--json', 'print only the JSON line on stdout (progress goes to stderr)')
  .action(async (options: { config: string; database?: string; envFile?: string; events: number; runs: number; warmup: number; json?: boolean }) => {
    const log = (line: string) => (options.json ? process.stderr.write(`${line}\n`) : console.log(line));
    const config = loadConfig({ config: options.config, ...(options.envFile ? { envFile: options.envFile } : {}) });
    const result = await benchTransform(
      { config, configFile: options.config, ...(options.database ? { database: options.database } : {}), events: options.events, warmups: options.warmup, runs: options.runs },
      log,
    );
    printResult(result, Boolean(options.json));
  });

program
  .command('export-legacy')
  .description('legacy sink: N domain events already in the domain topics written into a legacy users table; a warm-up, then the median of --runs')
  .addOption(new Option('--dialect <name>', 'legacy database').choices(['postgres', 'mariadb']).default('postgres'))
  .addOption(new Option('-c, --config <file>', "Banyan config: its kafka, schemaRegistry, the dialect's database and its legacy-users transform are used").env('BANYAN_CONFIG').default('banyan.yaml'))
  .option('--database <name>', "a key of the config's databases (default: the config's only database of the dialect)")
  .option('--env-file <file>', 'KEY=VALUE file read into the environment (default: .banyan/stack.env if present)')
  .option('--events <n>', 'domain events to write back in each run', count(1), 100_000)
  .option('--runs <n>', 'timed runs; the result is their median', count(1), 3)
  .option('--warmup <n>', 'runs before the timed ones, printed but not counted', count(0), 1)
  .option('--json', 'print only the JSON line on stdout (progress goes to stderr)')
  .action(
    async (options: { dialect: ExportLegacyDialect; config: string; database?: string; envFile?: string; events: number; runs: number; warmup: number; json?: boolean }) => {
      const log = (line: string) => (options.json ? process.stderr.write(`${line}\n`) : console.log(line));
      const config = loadConfig({ config: options.config, ...(options.envFile ? { envFile: options.envFile } : {}) });
      const result = await benchExportLegacy(
        {
          config,
          configFile: options.config,
          dialect: options.dialect,
          ...(options.database ? { database: options.database } : {}),
          events: options.events,
          warmups: options.warmup,
          runs: options.runs,
        },
        log,
      );
      printResult(result, Boolean(options.json));
    },
  );

program
  .command('export-salesforce')
  .description('Salesforce sink: N domain events already in the domain topics upserted into Contacts of an in-process emulator, streaming (Collections) and as a backlog (Bulk API 2.0); a warm-up, then the median of --runs')
  .addOption(new Option('-c, --config <file>', 'Banyan config: its kafka and schemaRegistry are used (not its salesforce: the bench starts its own emulator)').env('BANYAN_CONFIG').default('banyan.yaml'))
  .option('--env-file <file>', 'KEY=VALUE file read into the environment (default: .banyan/stack.env if present)')
  .option('--events <n>', 'domain events to write in each mode of each run', count(1), 10_000)
  .option('--runs <n>', 'timed runs; the result is their median', count(1), 3)
  .option('--warmup <n>', 'runs before the timed ones, printed but not counted', count(0), 1)
  .option('--sink <json>', 'overrides of the sink config for both modes, e.g. \'{"lingerMs":500}\' (the mode sets bulk.threshold 0 for streaming)', parseJsonObject)
  .option('--json', 'print only the JSON line on stdout (progress goes to stderr)')
  .action(async (options: { config: string; envFile?: string; events: number; runs: number; warmup: number; sink?: Record<string, unknown>; json?: boolean }) => {
    const log = (line: string) => (options.json ? process.stderr.write(`${line}\n`) : console.log(line));
    const config = loadConfig({ config: options.config, ...(options.envFile ? { envFile: options.envFile } : {}) });
    const result = await benchExportSalesforce(
      { config, configFile: options.config, events: options.events, warmups: options.warmup, runs: options.runs, ...(options.sink ? { sink: options.sink } : {}) },
      log,
    );
    printResult(result, Boolean(options.json));
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // A config mistake or a refused connection is one clear message, not a stack trace.
  console.error(error instanceof ConfigError ? error.message : `bench failed: ${(error as Error).message}`);
  process.exitCode = error instanceof ConfigError ? 2 : 1;
}
