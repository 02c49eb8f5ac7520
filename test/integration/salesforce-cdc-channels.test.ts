import { afterEach, describe, expect, it } from 'vitest';
import { createSalesforceCdcSource, type SalesforceCdcSource } from '../../src/import/salesforce-cdc';
import { AvroEncoder } from '../../src/runtime/avro';
import { parseConfig, type BanyanConfig, type SalesforceCdcSourceConfig } from '../../src/config';
import { createKafka } from '../../src/runtime/kafka';
import { createRootLogger } from '../../src/runtime/logger';
import { KafkaOffsetStore } from '../../src/runtime/offsets';
import { createSchemaRegistry } from '../../src/runtime/registry';
import { runnerOptions, SourceRunner } from '../../src/runtime/source-runner';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../tools/salesforce-emulator/index.js';
import { untilCommitted } from '../committed';
import { decodeMessages, freshName, loginToEmulator, readAll } from '../helpers';

/**
 * The Salesforce CDC source on a custom channel with enriched fields (docs/salesforce-cdc.md,
 * "Channels and enriched fields"), against the emulator, through a real SourceRunner, Kafka
 * transactions and the registry; read back read_committed and decoded.
 */

interface Change {
  op: string;
  entity: string;
  recordId: string;
  fields: Record<string, unknown>;
  changedFields: string[];
  nulledFields: string[];
  replayId: bigint | null;
}

let emulator: Emulator | undefined;
const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  await emulator?.close();
  emulator = undefined;
});

async function freshEmulator(opts: EmulatorOptions): Promise<Emulator> {
  emulator = await startEmulator({ port: 0, cometd: { longPollTimeoutMs: 1000 }, ...opts });
  process.env.SFCDC_CHANNELS_PASSWORD = emulator.credentials.password;
  process.env.SFCDC_CHANNELS_CLIENT_SECRET = emulator.credentials.clientSecret;
  return emulator;
}

function config(em: Emulator, channel: string): BanyanConfig {
  return parseConfig(`
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${freshName('sfcdc-channels')}
  topics: { offsets: ${freshName('offsets')}, deadLetter: ${freshName('dlq')}, partitions: 3 }
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
log: { level: warn }
salesforce:
  loginUrl: ${em.url}
  username: ${em.credentials.username}
  password: \${SFCDC_CHANNELS_PASSWORD}
  clientId: ${em.credentials.clientId}
  clientSecret: \${SFCDC_CHANNELS_CLIENT_SECRET}
sources:
  - name: contacts
    type: salesforce-cdc
    object: Contact
    channel: ${channel}
    replayFrom: -2
    topic: ${freshName('salesforce.Contact')}
    pollIntervalMs: 50
`, 'salesforce-cdc-channels test');
}

async function startRunner(cfg: BanyanConfig): Promise<SalesforceCdcSource> {
  const logger = createRootLogger('silent');
  const kafka = createKafka(cfg.kafka, logger);
  const source = createSalesforceCdcSource(cfg.salesforce!, cfg.sources[0] as SalesforceCdcSourceConfig, { logger });
  const runner = new SourceRunner(
    source, kafka, new AvroEncoder(createSchemaRegistry(cfg.schemaRegistry)),
    new KafkaOffsetStore(kafka, cfg.kafka.topics.offsets, 1), logger,
    { ...runnerOptions(cfg), backoffMs: { min: 100, max: 1000 } },
  );
  await runner.start();
  cleanups.push(() => runner.stop());
  return source;
}

/** Everything written, once the committed offset names the emulator's last event (of any entity) on the channel. */
async function readAllChanges(cfg: BanyanConfig, em: Emulator, channel: string): Promise<Change[]> {
  const kafka = createKafka(cfg.kafka, createRootLogger('silent'));
  const last = em.admin.changeEvents().at(-1)?.replayId;
  const committed = await untilCommitted(kafka, cfg.kafka.topics.offsets, 'contacts', { object: 'Contact' }, (o) => o.replayId === last);
  expect(committed.channel).toBe(channel);
  const messages = await readAll(kafka, (cfg.sources[0] as SalesforceCdcSourceConfig).topic!);
  const changes = (await decodeMessages<Change, { Id: string }>(cfg, messages)).map((m) => m.value!);
  return changes.sort((a, b) => Number(a.replayId) - Number(b.replayId));
}

describe('Salesforce CDC source on a custom channel with enriched fields', () => {
  it('writes an Email-only update of a Contact with its Banyan_Id__c in fields, and changedFields as they changed', async () => {
    // The demo seed: the local stack's BanyanContacts__chn (ContactChangeEvent enriched with Banyan_Id__c).
    const em = await freshEmulator({ seed: 'demo' });
    const cfg = config(em, '/data/BanyanContacts__chn');
    const source = await startRunner(cfg);
    const conn = await loginToEmulator(em);
    const [ada] = (await conn.query<{ Id: string }>("SELECT Id FROM Contact WHERE Banyan_Id__c = 'user-2001'")).records;

    await conn.sobject('Contact').update({ Id: ada!.Id, Email: 'ada@analytical.example' });

    const changes = await readAllChanges(cfg, em, '/data/BanyanContacts__chn');
    expect(changes).toHaveLength(1);
    // Salesforce adds LastModifiedDate to every UPDATE's changed fields; Banyan_Id__c is there unchanged, as enriched.
    expect(changes[0]).toMatchObject({
      op: 'update', entity: 'Contact', recordId: ada!.Id,
      fields: { Email: 'ada@analytical.example', LastModifiedDate: expect.stringMatching(/Z$/), Banyan_Id__c: 'user-2001' },
      changedFields: ['Email', 'LastModifiedDate'],
      nulledFields: [],
    });
    expect(Object.keys(changes[0]!.fields).sort()).toEqual(['Banyan_Id__c', 'Email', 'LastModifiedDate']);
    expect(source.status()).toMatchObject({ events: 1, records: 1, otherEntityEvents: 0, deadLetters: 0 });
  });

  it('reports a channel that does not exist as Salesforce refuses it, retriable (it may be deployed later), and holds no subscription', async () => {
    const em = await freshEmulator({});
    const cfg = config(em, '/data/Nope__chn');
    const source = createSalesforceCdcSource(cfg.salesforce!, cfg.sources[0] as SalesforceCdcSourceConfig, { logger: createRootLogger('silent') });
    cleanups.push(() => source.close());
    await expect(source.connect(new Map())).rejects.toMatchObject({
      retriable: true, stage: 'receiving', code: 'CDC_SUBSCRIBE',
      message: expect.stringContaining('The channel you requested to subscribe to does not exist {/data/Nope__chn}'),
    });
    await expect(source.poll(new AbortController().signal)).rejects.toMatchObject({ code: 'NOT_CONNECTED' });
  });

  it('skips and counts other entities of a multi-entity channel, carries enriched fields on delete, and positions past the skipped events', async () => {
    const channel = '/data/Mixed__chn';
    const em = await freshEmulator({
      channels: [{
        fullName: 'Mixed__chn',
        members: [
          { selectedEntity: 'ContactChangeEvent', enrichedFields: ['Banyan_Id__c'] },
          { selectedEntity: 'AccountChangeEvent', enrichedFields: ['Banyan_Id__c'] },
        ],
      }],
    });
    const cfg = config(em, channel);
    const source = await startRunner(cfg);
    const conn = await loginToEmulator(em);

    const { id: account } = (await conn.sobject('Account').create({ Name: 'Acme', Banyan_Id__c: 'acct-1' })) as { id: string };
    const { id: contact } = (await conn.sobject('Contact').create({ LastName: 'Hopper', Banyan_Id__c: 'user-7', AccountId: account })) as { id: string };
    await conn.sobject('Contact').update({ Id: contact, Phone: '+1 555' });
    await conn.sobject('Contact').destroy(contact);
    await conn.sobject('Account').update({ Id: account, Phone: '+1 556' });

    const changes = await readAllChanges(cfg, em, channel);
    expect(changes.map((c) => [c.op, c.entity, c.recordId])).toEqual([['create', 'Contact', contact], ['update', 'Contact', contact], ['delete', 'Contact', contact]]);
    expect(changes[1]?.fields).toEqual({ Phone: '+1 555', LastModifiedDate: expect.any(String), Banyan_Id__c: 'user-7' });
    expect(changes[1]?.changedFields).toEqual(['Phone', 'LastModifiedDate']);
    expect(changes[2]?.fields).toEqual({ Banyan_Id__c: 'user-7' });
    expect(source.status()).toMatchObject({ events: 3, records: 3, otherEntityEvents: 2, deadLetters: 0 });
  });
});
