// knex ships no types for its dialect classes; this one is extended in ./knex-client.ts.
declare module 'knex/lib/dialects/mssql/index.js' {
  import type { Knex } from 'knex';
  const ClientMssql: typeof Knex.Client;
  export default ClientMssql;
}
