import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import type { Knex } from 'knex';
import { afterEach, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/clients/database';
import { parseConfig } from '../../src/config';
import { createDialect } from '../../src/dialects';
import { DomainDecoder } from '../../src/domain/decoder';
import type { DomainEvent } from '../../src/domain/event';
import { Headers } from '../../src/core';
import { migrateChangelogs } from '../../src/import/changelog/migrate';
import { catalogOf } from '../../src/transforms/module';
import { freshName, listeningUrl, readAll, spawnBanyan, testKafka, textHeaders, waitFor, writeConfigFile } from '../helpers';

/**
 * A second legacy model, declared in config alone (test/fixtures/mappings/orders.yaml, the block
 * docs/mappings.md shows): MariaDB `orders` (key region + order_no) and `order_lines` (key region +
 * order_no + line_no) become OrderChanged / OrderLineChanged / OrderLineDeleted through `banyan run`,
 * with no code: conversions (trim + enum map, cents ÷ 100 exactly), a filter (a price change below
 * 0.01 % is no change) and a value the enum map does not know dead-lettered.
 */
const children: ChildProcess[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

describe('orders and order lines, mapped by one block of config each (MariaDB)', () => {
  it('writes the events the mapping declares, filters a tiny price change and dead-letters an unknown status', async () => {
    const database = freshName('banyan_orders');
    const prefix = freshName('domain');
    const ordersTopic = freshName('legacy.shop.orders');
    const linesTopic = freshName('legacy.shop.order_lines');
    const deadLetters = freshName('dlq');
    const mapping = readFileSync('test/fixtures/mappings/orders.yaml', 'utf8')
      .replace('from: legacy.shop.orders', `from: ${ordersTopic}`)
      .replace('from: legacy.shop.order_lines', `from: ${linesTopic}`);
    const yaml = `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${freshName('orders')}
  topics: { offsets: ${freshName('offsets')}, deadLetter: ${deadLetters}, control: ${freshName('control')}, controlAudit: ${freshName('audit')}, domainPrefix: ${prefix} }
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
log: { level: info }
http: { port: 0 }
changeTypes: { order: {}, order_line: {} }
databases:
  shop: { dialect: mariadb, database: ${database}, user: root }
sources:
  - { name: orders, type: changelog, database: shop, table: orders, topic: ${ordersTopic}, snapshot: false, pollIntervalMs: 20 }
  - { name: order-lines, type: changelog, database: shop, table: order_lines, topic: ${linesTopic}, snapshot: false, pollIntervalMs: 20 }
${mapping}`;
    const file = writeConfigFile(yaml);
    const config = parseConfig(yaml, file);
    const admin = createKnex({ ...config.databases.shop!, database: 'mysql' });
    await admin.raw(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
    const db: Knex = createKnex(config.databases.shop!);
    cleanups.push(async () => {
      await db.destroy();
      await admin.raw(`DROP DATABASE IF EXISTS \`${database}\``);
      await admin.destroy();
    });
    await db.raw(`CREATE TABLE orders (region varchar(8) NOT NULL, order_no int NOT NULL, customer_id bigint, status char(1),
      total_cents bigint, placed_at timestamp(3) NULL, PRIMARY KEY (region, order_no))`);
    await db.raw(`CREATE TABLE order_lines (region varchar(8) NOT NULL, order_no int NOT NULL, line_no int NOT NULL, sku varchar(20),
      quantity int, unit_price decimal(12,2), PRIMARY KEY (region, order_no, line_no))`);
    await migrateChangelogs(db, createDialect(config.databases.shop!), ['orders', 'order_lines']);

    const child = spawnBanyan(file, ['run'], 'pipe');
    children.push(child);
    const url = await listeningUrl(child);

    await db('orders').insert({ region: 'eu', order_no: 1, customer_id: 42, status: 'N ', total_cents: 12345, placed_at: '2026-12-01 10:00:00.250' });
    await db('order_lines').insert([
      { region: 'eu', order_no: 1, line_no: 1, sku: ' ab-1 ', quantity: 2, unit_price: '10000.00' },
      { region: 'eu', order_no: 1, line_no: 2, sku: 'cd-2', quantity: 1, unit_price: '5.00' },
    ]);
    await db('order_lines').where({ line_no: 1 }).update({ unit_price: '10000.50' }); // +0.005 %: filtered
    await db('order_lines').where({ line_no: 2 }).update({ quantity: 3 });
    await db('order_lines').where({ line_no: 2 }).delete();
    await db('orders').where({ order_no: 1 }).update({ status: 'P' });
    await db('orders').where({ order_no: 1 }).update({ status: 'Z' }); // not in the enum map: dead letter

    type Status = { transforms: Array<{ name: string; details: { inputs: number; dropped: Record<string, number> } }> };
    const inputs = async () => {
      const s = (await (await fetch(`${url}/status`)).json()) as Status;
      return Object.fromEntries(s.transforms.map((t) => [t.name, t.details]));
    };
    let seen: unknown;
    await waitFor(async () => {
      const i = await inputs();
      seen = i;
      // The lines' delete is followed by its tombstone in the input too: six records.
      return i['legacy-orders']?.inputs === 3 && i['legacy-order-lines']?.inputs === 6;
    }, () => `every change mapped: ${JSON.stringify(seen)}`);

    const kafka = testKafka(config);
    const decoder = new DomainDecoder(config.schemaRegistry.url, catalogOf(config));
    // Each entity's events in their order; entities on different partitions in no set order, so by id.
    const read = async (entity: string) => {
      const events: Array<{ id: string; event: DomainEvent | null }> = [];
      for (const m of await readAll(kafka, `${prefix}.${entity}`)) {
        const key = await decoder.key(`${prefix}.${entity}`, m.key!);
        events.push({ id: Object.values(key).join('/'), event: m.value ? await decoder.event(`${prefix}.${entity}`, m.value) : null });
      }
      return events.sort((a, b) => a.id.localeCompare(b.id)).map((e) => e.event);
    };
    const orders = await read('order');
    expect(orders.map((e) => e && [e.type, e.entityId, e.changedFields.sort(), e.data])).toEqual([
      ['OrderChanged', 'eu/1', ['customerId', 'placedAt', 'status', 'total'], { customerId: 42n, status: 'new', total: '123.45', placedAt: Date.parse('2026-12-01T10:00:00.250Z') }],
      ['OrderChanged', 'eu/1', ['status'], { customerId: 42n, status: 'paid', total: '123.45', placedAt: Date.parse('2026-12-01T10:00:00.250Z') }],
    ]);
    expect(orders[0]!.entityKey).toEqual({ region: 'eu', orderNo: '1' });
    const lines = await read('order_line');
    expect(lines.map((e) => e && [e.type, e.entityId, e.changedFields.sort()])).toEqual([
      ['OrderLineChanged', 'eu/1/1', ['quantity', 'sku', 'unitPrice']],
      ['OrderLineChanged', 'eu/1/2', ['quantity', 'sku', 'unitPrice']],
      ['OrderLineChanged', 'eu/1/2', ['quantity']],
      ['OrderLineDeleted', 'eu/1/2', []],
      null, // the tombstone after the delete
    ]);
    expect(lines[0]!.data).toEqual({ sku: 'AB-1', quantity: 2, unitPrice: '10000.00' });
    expect((await inputs())['legacy-order-lines']!.dropped).toMatchObject({ filtered: 1, tombstone: 1 });

    const letters = await readAll(kafka, deadLetters);
    expect(letters).toHaveLength(1);
    const headers = textHeaders(letters[0]!);
    expect(headers[Headers.deadLetterInputTopic]).toBe(ordersTopic);
    expect(headers[Headers.deadLetterSource]).toBe('transform:legacy-orders');
    expect(headers[Headers.deadLetterReason]).toContain('Z');
  }, 120_000);
});
