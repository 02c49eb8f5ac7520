import { describe, expect, it } from 'vitest';
import { serviceEvent } from '../legacy-databases';
import { createTopic, testKafka, waitFor } from '../helpers';
import { bridge, events, run, settled, sink, status, type Contact } from '../bridge';

/** A large backlog through the whole bridge (test/bridge.ts): Bulk API 2.0 on the way to Salesforce. */
describe('a backlog of 20,000 changes (banyan run, emulator)', () => {
  it('goes through Bulk API 2.0 and lands whole, and none of it comes back', async () => {
    const b = await bridge();
    for (const entity of ['user', 'address']) await createTopic(testKafka(b.config), `${b.prefix}.${entity}`, b.config.kafka.topics.partitions);
    // 20,000 changes of 10,000 users, there before the bridge starts (an outage, a first sync).
    const at = Date.now();
    const users = Array.from({ length: 10_000 }, (_, i) => serviceEvent('UserChanged', i + 1, { firstName: `First${i + 1}`, lastName: `Last${i + 1}`, email: `user${i + 1}@example.com` }, at + i));
    const addresses = Array.from({ length: 10_000 }, (_, i) => serviceEvent('AddressChanged', i + 1, { city: `City${i + 1}`, country: 'CH' }, at + i));
    for (let i = 0; i < users.length; i += 2_000) await b.publisher.publish([...users.slice(i, i + 2_000), ...addresses.slice(i, i + 2_000)]);

    const running = await run(b);
    const count = async () => (await running.sf.query<{ expr0: number }>('SELECT COUNT() FROM Contact')).totalSize;
    await waitFor(async () => (await count()) === 10_000, 'ten thousand Contacts', 240_000);
    await waitFor(() => settled(running), 'the bridge to settle', 240_000);

    const jobs = b.emulator.admin.bulkJobs();
    expect(jobs.length).toBeGreaterThanOrEqual(1);
    expect(jobs.every((j) => j.state === 'JobComplete' && j.numberRecordsFailed === 0)).toBe(true);
    // Each Contact written once: user and address changes of one user meet in one record.
    expect(jobs.reduce((n, j) => n + j.numberRecordsProcessed, 0)).toBe(10_000);
    const s = sink(await status(running), 'contacts-out');
    expect(s.details).toMatchObject({ inputs: 20_000, written: { upserted: 10_000, created: 0, updated: 0 }, refusedRows: 0 });
    const some = (await running.sf.query<Contact>("SELECT Banyan_Id__c, Email, MailingCity FROM Contact WHERE Banyan_Id__c IN ('1', '5000', '10000')")).records;
    expect(some.map((c) => [c.Banyan_Id__c, c.Email, c.MailingCity]).sort()).toEqual([
      ['1', 'user1@example.com', 'City1'],
      ['10000', 'user10000@example.com', 'City10000'],
      ['5000', 'user5000@example.com', 'City5000'],
    ]);
    // Nothing echoed back into the domain.
    expect(await events(running, 'user')).toHaveLength(10_000);
    expect(await events(running, 'address')).toHaveLength(10_000);
  }, 600_000);
});
