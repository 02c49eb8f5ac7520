import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import { loadEnvFile, STACK_ENV_FILE } from '../src/cli/context';
import { benchImport, type ImportDialect } from './import';
import { printResult } from './report';

/** `npm run bench -- <name> [options]`: runs one benchmark against the local stack. */
if (existsSync(STACK_ENV_FILE)) loadEnvFile(STACK_ENV_FILE);

const program = new Command('bench').description('Banyan benchmarks against the local stack (npm run stack:up first)');

program
  .command('import')
  .description('changelog poller: N legacy changes drained into Kafka, committed')
  .addOption(new Option('--dialect <name>', 'legacy database').choices(['postgres', 'mariadb']).default('postgres'))
  .option('--rows <n>', 'changes to make and drain', (v) => Number.parseInt(v, 10), 200_000)
  .option('--json', 'print only the JSON line')
  .action(async (options: { dialect: ImportDialect; rows: number; json?: boolean }) => {
    const log = (line: string) => (options.json ? process.stderr.write(`${line}\n`) : console.log(line));
    printResult(await benchImport(options.dialect, options.rows, log), Boolean(options.json));
  });

await program.parseAsync(process.argv);
