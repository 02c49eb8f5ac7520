import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { DomainEvent } from '../src/domain/event';
import { createKnex } from '../src/clients/database';
import { parseConfig } from '../src/config';
import { MssqlDialect } from '../src/dialects/mssql.dialect';
import { freshName } from './helpers';

/**
 * The legacy databases the sink's tests run against, each with a fresh place of its own per test:
 * a PostgreSQL schema (the sink's guard and offset tables live beside the table, so they are fresh
 * too) or a MariaDB database. A users table with user and address columns, as banyan.yaml's demo.
 */
export interface LegacyDatabase {
  name: 'postgres' | 'mariadb' | 'mssql';
  /** The `databases:` block (through `port` when given: a proxy), the table as the config writes it, a direct connection. */
  prepare(options?: { port?: number }): Promise<{ yaml: string; table: string; db: Knex; direct: { host: string; port: number }; cleanup: () => Promise<void> }>;
  ddl(table: string): string;
  /** A Banyan table beside the users table (guard, offsets, another table). */
  beside(table: string, name: string): string;
  /** The users table's changelog, as a knex table (SQL Server's lives in the banyan schema, its name holding a dot). */
  changelog(db: Knex, table: string): string | Knex.Raw;
  /** The changelog's commit-order column (SQL Server's has no change_id: its rowversion is the key). */
  changelogOrder: string;
}

const BASE = `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: placeholder
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}`;

/** The `legacy` database's settings as a config parses them. */
function settings(yaml: string) {
  return parseConfig(`${BASE}\n${yaml}`, 'legacy-databases.yaml').databases.legacy!;
}

const MSSQL_URL = process.env.MSSQL_URL;
if (!MSSQL_URL) {
  console.log('[legacy sink] SQL Server skipped: MSSQL_URL is not set and no SQL Server runs on this machine (see docs/dialect-mssql.md)');
}

/** SQL Server from MSSQL_URL (mssql://user:password@host:port/database[?encrypt=true]); its password reaches the config as ${MSSQL_TEST_PASSWORD}. */
function mssql(url: string): LegacyDatabase {
  const u = new URL(url);
  process.env.MSSQL_TEST_PASSWORD = decodeURIComponent(u.password);
  const direct = { host: u.hostname, port: Number(u.port || 1433) };
  const dialect = new MssqlDialect();
  return {
    name: 'mssql',
    async prepare(options = {}) {
      const schema = freshName('sink');
      const table = `${schema}.users`;
      const yaml = `databases:
  legacy:
    dialect: mssql
    host: ${JSON.stringify(options.port ? '127.0.0.1' : u.hostname)}
    port: ${options.port ?? direct.port}
    database: ${JSON.stringify(decodeURIComponent(u.pathname.slice(1)) || 'master')}
    user: ${JSON.stringify(decodeURIComponent(u.username))}
    password: \${MSSQL_TEST_PASSWORD}
    ssl: ${u.searchParams.get('encrypt') === 'true'}`;
      const db = createKnex({ ...settings(yaml), host: direct.host, port: direct.port });
      await db.raw(`CREATE SCHEMA ${schema}`);
      return {
        yaml,
        table,
        db,
        direct,
        cleanup: async () => {
          for (const statement of dialect.uninstallChangelog({ schema, name: 'users' })) await db.raw(statement).catch(() => undefined);
          for (const name of ['users', 'banyan_guard', 'banyan_sink_offsets']) await db.raw(`DROP TABLE IF EXISTS ${schema}.${name}`);
          await db.raw(`DROP SCHEMA ${schema}`);
          await db.destroy();
        },
      };
    },
    ddl: (table) => `CREATE TABLE ${table} (
      id int PRIMARY KEY, first_name nvarchar(50), last_name nvarchar(50) NOT NULL, email nvarchar(40),
      street nvarchar(100), city nvarchar(60), postal_code nvarchar(10), state nvarchar(30), country nchar(2),
      updated_at datetime2(3) NOT NULL DEFAULT SYSUTCDATETIME())`,
    beside: (table, name) => `${table.split('.')[0]}.${name}`,
    changelog: (db, table) => {
      const ref = dialect.changelogTable({ schema: table.split('.')[0]!, name: 'users' });
      return db.raw(`${dialect.quoteIdentifier(ref.schema!)}.${dialect.quoteIdentifier(ref.name)}`);
    },
    changelogOrder: 'rv',
  };
}

export const LEGACY_DATABASES: LegacyDatabase[] = [
  ...(MSSQL_URL ? [mssql(MSSQL_URL)] : []),
  {
    name: 'postgres',
    async prepare(options = {}) {
      const schema = freshName('sink');
      const table = `${schema}.users`;
      const direct = { host: '127.0.0.1', port: 5432 };
      const yaml = `databases:\n  legacy: { dialect: postgres, host: 127.0.0.1, port: ${options.port ?? direct.port}, database: postgres, user: postgres }`;
      const db = createKnex({ ...settings(yaml), port: direct.port });
      await db.raw(`CREATE SCHEMA ${schema}`);
      return {
        yaml,
        table,
        db,
        direct,
        cleanup: async () => {
          await db.raw(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          await db.destroy();
        },
      };
    },
    ddl: (table) => `CREATE TABLE ${table} (
      id integer PRIMARY KEY, first_name varchar(50), last_name varchar(50) NOT NULL, email varchar(40),
      street varchar(100), city varchar(60), postal_code varchar(10), state varchar(30), country char(2),
      updated_at timestamp(3) NOT NULL DEFAULT now())`,
    beside: (table, name) => `${table.split('.')[0]}.${name}`,
    changelog: (_db, table) => `${table.split('.')[0]}.banyan_cl_users`,
    changelogOrder: 'change_id',
  },
  {
    name: 'mariadb',
    async prepare(options = {}) {
      const database = freshName('banyan_sink');
      const direct = { host: '127.0.0.1', port: 3306 };
      const yaml = `databases:\n  legacy: { dialect: mariadb, host: 127.0.0.1, port: ${options.port ?? direct.port}, database: ${database}, user: root }`;
      const own = { ...settings(yaml), port: direct.port };
      const admin = createKnex({ ...own, database: 'mysql' });
      await admin.raw(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
      const db = createKnex(own);
      return {
        yaml,
        table: 'users',
        db,
        direct,
        cleanup: async () => {
          await db.destroy();
          await admin.raw(`DROP DATABASE IF EXISTS \`${database}\``);
          await admin.destroy();
        },
      };
    },
    ddl: (table) => `CREATE TABLE ${table} (
      id int PRIMARY KEY, first_name varchar(50), last_name varchar(50) NOT NULL, email varchar(40),
      street varchar(100), city varchar(60), postal_code varchar(10), state varchar(30), country char(2),
      updated_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))`,
    beside: (_table, name) => name,
    changelog: () => 'banyan_cl_users',
    changelogOrder: 'change_id',
  },
];

/** A domain service's event: origin domain, its own commit time. */
export function serviceEvent(type: 'UserChanged' | 'AddressChanged' | 'UserDeleted', id: number, data: Record<string, unknown>, at: number): DomainEvent {
  const entity = type === 'AddressChanged' ? 'address' : 'user';
  const causation = { topic: 'service.users', partition: 0, offset: String(at) };
  const all: Record<string, unknown> =
    type === 'UserChanged' ? { firstName: null, lastName: null, email: null } : type === 'AddressChanged' ? { street: null, city: null, postalCode: null, state: null, country: null } : {};
  return {
    eventId: randomUUID(),
    type,
    entity,
    entityId: String(id),
    entityKey: { id: String(id) },
    sourceCommitTime: at,
    origin: 'domain',
    causation,
    correlationId: randomUUID(),
    changedFields: Object.keys(data),
    knownFields: Object.keys(data),
    schemaVersion: 1,
    data: { ...all, ...data },
  };
}

export function user(id: number): Record<string, unknown> {
  return { id, first_name: `First${id}`, last_name: `Last${id}`, email: `u${id}@example.com`, street: `${id} Main St`, city: 'Zurich', postal_code: '8000', state: 'ZH', country: 'CH' };
}

