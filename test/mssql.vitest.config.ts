import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The SQL Server suites alone (test/integration/mssql-*.test.ts), without the local Kafka stack
 * that the integration project of vitest.config.ts starts and cleans up after: they need only a
 * SQL Server, from MSSQL_URL or from MSSQL_IMAGE where Docker runs (test/mssql.ts). Hosted CI
 * (.github/workflows/mssql.yml) runs them so: npx vitest run --config test/mssql.vitest.config.ts
 */
export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['test/integration/mssql-*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    // Long enough for a first pull of a SQL Server image when MSSQL_IMAGE starts a container.
    hookTimeout: 900_000,
    maxWorkers: 2,
  },
});
