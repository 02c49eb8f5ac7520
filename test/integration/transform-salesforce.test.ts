import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config';
import { Headers } from '../../src/core';
import { DomainDecoder } from '../../src/domain/decoder';
import type { DomainEvent } from '../../src/domain/event';
import { catalogOf } from '../../src/transforms/module';
import { startEmulator, type Emulator } from '../../tools/salesforce-emulator/index.js';
import { freshName, listeningUrl, loginToEmulator, readAll, spawnBanyan, testKafka, textHeaders, waitFor, writeConfigFile } from '../helpers';

/**
 * Salesforce Contact changes into domain events through `banyan run`: the CDC source on a custom
 * channel enriched with Banyan_Id__c, and the salesforce-contact code mapping (name and email →
 * UserChanged, the compound MailingAddress → AddressChanged), against the emulator.
 */
const children: ChildProcess[] = [];
let emulator: Emulator | undefined;
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await emulator?.close();
  emulator = undefined;
});

describe('Salesforce Contact changes into domain events (banyan run, emulator)', () => {
  it('honours changedFields and nulled fields, drops echoes, dead-letters a Contact without Banyan_Id__c', async () => {
    emulator = await startEmulator({
      port: 0,
      cometd: { longPollTimeoutMs: 1000 },
      channels: [{ fullName: 'BanyanContacts__chn', members: [{ selectedEntity: 'ContactChangeEvent', enrichedFields: ['Banyan_Id__c'] }] }],
    });
    process.env.TRANSFORM_SF_PASSWORD = emulator.credentials.password;
    process.env.TRANSFORM_SF_CLIENT_SECRET = emulator.credentials.clientSecret;
    const prefix = freshName('domain');
    const topic = freshName('salesforce.Contact');
    const deadLetters = freshName('dlq');
    const yaml = `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${freshName('sf-transform')}
  topics: { offsets: ${freshName('offsets')}, deadLetter: ${deadLetters}, control: ${freshName('control')}, controlAudit: ${freshName('audit')}, domainPrefix: ${prefix} }
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
log: { level: info }
http: { port: 0 }
originTag: ${freshName('banyan')}
salesforce:
  loginUrl: ${emulator.url}
  username: ${emulator.credentials.username}
  password: \${TRANSFORM_SF_PASSWORD}
  clientId: ${emulator.credentials.clientId}
  clientSecret: \${TRANSFORM_SF_CLIENT_SECRET}
sources:
  - { name: contacts, type: salesforce-cdc, object: Contact, channel: /data/BanyanContacts__chn, replayFrom: -2, topic: ${topic}, pollIntervalMs: 50 }
transforms:
  - name: salesforce-contacts
    from: ${topic}
    format: salesforce-cdc
    changeTypes: [user, address]
    mapping: salesforce-contact
    options: { idField: Banyan_Id__c }
`;
    const file = writeConfigFile(yaml);
    const config = parseConfig(yaml, file);

    const conn = await loginToEmulator(emulator);
    const { id } = (await conn.sobject('Contact').create({
      FirstName: 'Ada', LastName: 'Lovelace', Email: 'ada@example.com', Banyan_Id__c: 'u-1',
      MailingStreet: '12 St James Sq', MailingCity: 'London', MailingPostalCode: 'SW1Y 4JH', MailingCountry: 'GB',
    })) as { id: string };
    const { id: unlinked } = (await conn.sobject('Contact').create({ LastName: 'Nobody' })) as { id: string };

    const child = spawnBanyan(file, ['run'], 'pipe');
    children.push(child);
    const url = await listeningUrl(child);
    type Status = { sources: Array<{ records: number }>; transforms: Array<{ records: number; deadLetters: number; details: { inputs: number; dropped: Record<string, number> } }> };
    const status = async () => (await (await fetch(`${url}/status`)).json()) as Status;

    // Only the city of the compound address, and the street set to null.
    await conn.sobject('Contact').update({ Id: id, MailingCity: 'Paris', MailingStreet: null });
    // The last name only.
    await conn.sobject('Contact').update({ Id: id, LastName: 'King' });
    // Written by Banyan itself: an echo.
    const asBanyan = await loginToEmulator(emulator, { client: config.originTag });
    await asBanyan.sobject('Contact').update({ Id: id, Email: 'echo@example.com' });
    // A Contact no legacy user is linked to.
    await conn.sobject('Contact').update({ Id: unlinked, Email: 'nobody@example.com' });

    // Two creates and four updates.
    let seen: Status | undefined;
    await waitFor(async () => (seen = await status()).transforms[0]?.details.inputs === 6, () => `six changes mapped: ${JSON.stringify(seen?.transforms)}`);
    const transform = (await status()).transforms[0]!;
    expect(transform.details.dropped).toMatchObject({ echo: 1 });
    expect(transform.deadLetters).toBe(2); // the unlinked Contact's create and its update

    const kafka = testKafka(config);
    const decoder = new DomainDecoder(config.schemaRegistry.url, catalogOf(config));
    const read = async (entity: string) => {
      const events: DomainEvent[] = [];
      for (const m of await readAll(kafka, `${prefix}.${entity}`)) if (m.value) events.push(await decoder.event(`${prefix}.${entity}`, m.value));
      return events.map((e) => ({ type: e.type, id: e.entityId, origin: e.origin, changed: [...e.changedFields].sort(), known: [...e.knownFields].sort(), data: e.data }));
    };
    expect(await read('user')).toEqual([
      { type: 'UserChanged', id: 'u-1', origin: 'salesforce', changed: ['email', 'firstName', 'lastName'], known: ['email', 'firstName', 'lastName'], data: { firstName: 'Ada', lastName: 'Lovelace', email: 'ada@example.com' } },
      { type: 'UserChanged', id: 'u-1', origin: 'salesforce', changed: ['lastName'], known: ['lastName'], data: { firstName: null, lastName: 'King', email: null } },
    ]);
    const addresses = await read('address');
    expect(addresses).toHaveLength(2);
    expect(addresses[0]).toMatchObject({ type: 'AddressChanged', id: 'u-1', data: { street: '12 St James Sq', city: 'London', postalCode: 'SW1Y 4JH', country: 'GB' } });
    expect(addresses[1]).toMatchObject({ type: 'AddressChanged', id: 'u-1', changed: ['city', 'street'], known: ['city', 'street'], data: { city: 'Paris', street: null } });

    const letters = (await readAll(kafka, deadLetters)).map((m) => textHeaders(m));
    expect(letters.map((h) => h[Headers.deadLetterCode])).toEqual(['NO_ENTITY_ID', 'NO_ENTITY_ID']);
    expect(letters.every((h) => h[Headers.deadLetterReason]!.includes(unlinked))).toBe(true);
  }, 120_000);
});
