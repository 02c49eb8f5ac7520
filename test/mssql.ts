import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { createKnex } from '../src/clients/database';
import { parseConfig, type DatabaseConfig } from '../src/config';
import type { TableRef } from '../src/dialects/dialect';
import { MssqlDialect } from '../src/dialects/mssql.dialect';
import { freshName, waitFor } from './helpers';

/**
 * What the SQL Server suites (test/integration/mssql-*.test.ts) share: where they run (MSSQL_URL,
 * or a container of MSSQL_IMAGE where Docker runs; mssqlTarget says why not otherwise), the
 * connection config, and the least-privileged logins they run as.
 */
export const MSSQL_URL = process.env.MSSQL_URL;

/** MSSQL_URL (mssql://user:password@host:port/database[?encrypt=true]) as a user's config, through the real schema. */
export function databaseConfig(url: string): DatabaseConfig {
  const u = new URL(url);
  // Only `databases` is used here; Kafka and the registry are required by the schema but never contacted.
  const yaml = `
kafka: { brokers: "unused:9092" }
schemaRegistry: { url: "http://unused" }
databases:
  legacy:
    dialect: mssql
    host: ${JSON.stringify(u.hostname)}
    port: ${u.port || 1433}
    database: ${JSON.stringify(decodeURIComponent(u.pathname.slice(1)) || 'master')}
    user: ${JSON.stringify(decodeURIComponent(u.username))}
    password: \${MSSQL_TEST_PASSWORD}
    ssl: ${u.searchParams.get('encrypt') === 'true'}
    pool: { max: 8 }
`;
  const config = parseConfig(yaml, 'MSSQL_URL', { MSSQL_TEST_PASSWORD: decodeURIComponent(u.password) });
  return config.databases.legacy!;
}

/** A SQL Server a suite runs against, and how to let it go. */
export interface MssqlServer {
  /**
   * mssql://user:password@host:port/database of a login that may create logins and grant in that
   * database (sa, or securityadmin and db_owner): the suite's "DBA", which makes the legacy tables
   * and the least-privileged logins Banyan runs as (createBanyanLogins).
   */
  url: string;
  /** What it is, for the log: MSSQL_URL, or the image of the container this run started. */
  description: string;
  /** Stops the container this run started; nothing for MSSQL_URL. */
  stop(): Promise<void>;
}

export interface MssqlTarget {
  /** Why the suite is skipped here, naming both ways to run it; undefined when it runs. */
  skip: string | undefined;
  /** The server: MSSQL_URL's, or a new container of MSSQL_IMAGE. Call it in beforeAll (it may pull the image: give the hook minutes). */
  start(): Promise<MssqlServer>;
}

/** What the SQL Server suites are tested against in CI (.github/workflows/mssql.yml). */
export const MSSQL_IMAGES = ['mcr.microsoft.com/mssql/server:2019-latest', 'mcr.microsoft.com/mssql/server:2022-latest'];

/**
 * Where the SQL Server suite in `file` runs: against MSSQL_URL when it is set; else, when
 * MSSQL_IMAGE names a SQL Server image (MSSQL_IMAGES) and a Docker engine answers, against a
 * container of it that testcontainers starts (setting MSSQL_IMAGE accepts the image's licence,
 * ACCEPT_EULA=Y, as docker-compose.yml does); else nowhere, and the reason is printed. Awaited at
 * the top of the test file, so `describe.skipIf(target.skip)` can use it.
 */
export async function mssqlTarget(file: string): Promise<MssqlTarget> {
  const label = file.replace(/^.*\//, '').replace(/\.test\.ts$/, '');
  const ways =
    `To run it against a server: MSSQL_URL="mssql://<admin>:<password>@<host>:<port>/<database>" npx vitest run ${file}; ` +
    `where a Docker engine runs: MSSQL_IMAGE=${MSSQL_IMAGES[1]} (or ${MSSQL_IMAGES[0]}) npx vitest run ${file} (docs/dialect-mssql.md, Tests)`;
  const url = process.env.MSSQL_URL;
  if (url) return { skip: undefined, start: async () => ({ url, description: 'MSSQL_URL', stop: async () => undefined }) };
  const image = process.env.MSSQL_IMAGE;
  let skip = `[${label}] skipped: neither MSSQL_URL nor MSSQL_IMAGE is set, and no SQL Server runs on this machine. ${ways}`;
  if (image) {
    // Imported here, so a run without MSSQL_IMAGE never loads testcontainers.
    const { getContainerRuntimeClient } = await import('testcontainers');
    const engine = await getContainerRuntimeClient().then(
      () => undefined,
      (error: unknown) => (error instanceof Error ? error.message : String(error)),
    );
    if (engine === undefined) return { skip: undefined, start: () => startContainer(image) };
    skip = `[${label}] skipped: MSSQL_IMAGE=${image} is set but no Docker engine answers (${engine}), and MSSQL_URL is not set. ${ways}`;
  }
  console.log(skip);
  return { skip, start: () => Promise.reject(new Error(skip)) };
}

/** A SQL Server container of `image` with a fresh sa password and a database banyan_test. */
async function startContainer(image: string): Promise<MssqlServer> {
  const { GenericContainer, Wait } = await import('testcontainers');
  // The image refuses to start on a password that fails its policy: upper, lower, digit, symbol.
  const password = `Bn!9${randomBytes(12).toString('hex')}`;
  const container = await new GenericContainer(image)
    .withEnvironment({ ACCEPT_EULA: 'Y', MSSQL_PID: 'Developer', MSSQL_SA_PASSWORD: password })
    .withExposedPorts(1433)
    .withWaitStrategy(Wait.forLogMessage(/Recovery is complete/, 1))
    .withStartupTimeout(300_000)
    .start();
  const server = `mssql://sa:${encodeURIComponent(password)}@${container.getHost()}:${container.getMappedPort(1433)}`;
  const master = createKnex(databaseConfig(`${server}/master`));
  try {
    await waitFor(() => master.raw('SELECT 1 AS [one]').then(() => true), `${image} to accept logins`, 120_000);
    await master.raw("IF DB_ID(N'banyan_test') IS NULL CREATE DATABASE [banyan_test]");
  } catch (error) {
    await container.stop();
    throw error;
  } finally {
    await master.destroy();
  }
  return { url: `${server}/banyan_test`, description: image, stop: async () => void (await container.stop()) };
}

/** The two logins Banyan runs as, made by createBanyanLogins (docs/dialect-mssql.md, Permissions). */
export interface BanyanLogins {
  /** The install login: `banyan migrate` (changelog tables, triggers and their order, the schema watch). */
  installer: Knex;
  /** The running login: reads and prunes the changelogs, snapshots, doctor. */
  runner: Knex;
  installerConfig: DatabaseConfig;
  runnerConfig: DatabaseConfig;
  /**
   * The schema both logins default to, where knex keeps banyan_migrations: the `banyan` schema in
   * production; a fresh one here, so suites running at once never share knex's migration lock.
   */
  recordSchema: string;
  /** Grants the install login what tracking `table` needs: ALTER on it (its trigger and their order). */
  beforeInstall(table: TableRef): Promise<void>;
  /** Grants the running login SELECT on `table` (its changelog it reads through the grants on Banyan's schema). */
  afterInstall(table: TableRef): Promise<void>;
  /** Closes both pools, drops both users and logins and the record schema (after the caller dropped what it made). */
  drop(): Promise<void>;
}

/**
 * A fresh install login and a fresh running login in the database of `url`, with exactly the
 * permissions docs/dialect-mssql.md lists, made by `admin` (a connection of `url`'s login) for
 * tables in `legacySchema`. Banyan's own schema (`banyan`) is made as the DBA makes it, owned by
 * dbo so the triggers' ownership chain holds, if missing, and left in place.
 */
export async function createBanyanLogins(admin: Knex, url: string, legacySchema: string): Promise<BanyanLogins> {
  const dialect = new MssqlDialect();
  const q = (name: string) => dialect.quoteIdentifier(name);
  const objectName = (table: TableRef) => `${q(table.schema ?? 'dbo')}.${q(table.name)}`;
  const banyanSchema = dialect.changelogTable({ schema: legacySchema, name: 'x' }).schema ?? 'dbo';
  if (banyanSchema === legacySchema) throw new Error(`createBanyanLogins expects Banyan's objects in a schema of their own, not ${legacySchema}`);
  const recordSchema = freshName('banyan_rec');
  const install = { name: freshName('banyan_install'), password: `Bn!9${randomBytes(12).toString('hex')}` };
  const run = { name: freshName('banyan_run'), password: `Bn!9${randomBytes(12).toString('hex')}` };

  await admin.raw(`CREATE SCHEMA ${q(recordSchema)} AUTHORIZATION [dbo]`);
  // As the DBA makes it (docs/dialect-mssql.md, Permissions). Two suites may make it at once: the
  // loser's "already exists" (2714) is no failure.
  await admin.raw(
    `DECLARE @create NVARCHAR(400) = N'CREATE SCHEMA ' + QUOTENAME(?) + N' AUTHORIZATION [dbo]';
IF SCHEMA_ID(?) IS NULL
BEGIN
  BEGIN TRY
    EXEC (@create);
  END TRY
  BEGIN CATCH
    IF ERROR_NUMBER() <> 2714 THROW;
  END CATCH;
END;`,
    [banyanSchema, banyanSchema],
  );
  for (const login of [install, run]) {
    // CREATE LOGIN takes no parameters; the password is hex and letters, nothing to escape.
    await admin.raw(`CREATE LOGIN ${q(login.name)} WITH PASSWORD = N'${login.password}'`);
    await admin.raw(`CREATE USER ${q(login.name)} FOR LOGIN ${q(login.name)} WITH DEFAULT_SCHEMA = ${q(recordSchema)}`);
  }
  const grants = [
    `GRANT CREATE TABLE TO ${q(install.name)}`,
    // The schema watch, a database DDL trigger (src/dialects/mssql/drift.ts).
    `GRANT ALTER ANY DATABASE DDL TRIGGER TO ${q(install.name)}`,
    `GRANT ALTER, SELECT, INSERT, UPDATE, DELETE ON SCHEMA::${q(banyanSchema)} TO ${q(install.name)}`,
    `GRANT ALTER, SELECT, INSERT, UPDATE, DELETE ON SCHEMA::${q(recordSchema)} TO ${q(install.name)}`,
    `GRANT SELECT, DELETE ON SCHEMA::${q(banyanSchema)} TO ${q(run.name)}`,
    `GRANT SELECT ON SCHEMA::${q(recordSchema)} TO ${q(run.name)}`,
  ];
  for (const grant of grants) await admin.raw(grant);

  const loginUrl = (login: { name: string; password: string }) => {
    const u = new URL(url);
    u.username = encodeURIComponent(login.name);
    u.password = encodeURIComponent(login.password);
    return u.toString();
  };
  const installerConfig = databaseConfig(loginUrl(install));
  const runnerConfig = databaseConfig(loginUrl(run));
  const installer = createKnex(installerConfig);
  const runner = createKnex(runnerConfig);
  return {
    installer,
    runner,
    installerConfig,
    runnerConfig,
    recordSchema,
    async beforeInstall(table) {
      await admin.raw(`GRANT ALTER ON OBJECT::${objectName(table)} TO ${q(install.name)}`);
    },
    async afterInstall(table) {
      await admin.raw(`GRANT SELECT ON OBJECT::${objectName(table)} TO ${q(run.name)}`);
    },
    async drop() {
      await Promise.all([installer.destroy(), runner.destroy()]);
      for (const login of [install, run]) {
        // A module that runs WITH EXECUTE AS SELF as this user (the schema watch, made by the last
        // install) keeps it from being dropped (error 15136): made again by the admin, it runs as
        // the admin, and the suites running beside this one keep their watch.
        await admin.raw(
          `DECLARE @definition NVARCHAR(MAX);
DECLARE [modules] CURSOR LOCAL STATIC FOR
  SELECT [definition] FROM [sys].[sql_modules] WHERE [execute_as_principal_id] = DATABASE_PRINCIPAL_ID(?);
OPEN [modules];
FETCH NEXT FROM [modules] INTO @definition;
WHILE @@FETCH_STATUS = 0
BEGIN
  EXEC (@definition);
  FETCH NEXT FROM [modules] INTO @definition;
END;
CLOSE [modules];
DEALLOCATE [modules];`,
          [login.name],
        );
        await admin.raw(`DROP USER IF EXISTS ${q(login.name)}`);
        // A session the pool just closed may still be ending on the server (15434 until it has).
        await waitFor(() => admin.raw(`IF SUSER_ID(?) IS NOT NULL DROP LOGIN ${q(login.name)}`, [login.name]).then(() => true), `login ${login.name} dropped`, 30_000);
      }
      const tables = (await admin.raw('SELECT [name] FROM [sys].[tables] WHERE [schema_id] = SCHEMA_ID(?)', [recordSchema])) as Array<{ name: string }>;
      for (const { name } of tables) await admin.raw(`DROP TABLE ${q(recordSchema)}.${q(name)}`);
      await admin.raw(`DROP SCHEMA ${q(recordSchema)}`);
    },
  };
}
