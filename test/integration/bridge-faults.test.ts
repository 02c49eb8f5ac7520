import { describe, expect, it } from 'vitest';
import { Headers } from '../../src/core';
import { serviceEvent } from '../legacy-databases';
import { createTopic, readAll, testKafka, textHeaders, waitFor } from '../helpers';
import { bridge, children, contacts, events, run, settled, sink, status, type Bridge } from '../bridge';

/**
 * The Salesforce side of the bridge under faults (test/bridge.ts): Salesforce refusing calls and
 * rows, ending the session, the sink killed mid-batch, and a backlog through Bulk API 2.0. Counts
 * are exact: every record lands once, what cannot land is dead-lettered with Salesforce's reason.
 */

/** `n` domain-service UserChanged events for users `from`…, each with every user field. */
function created(from: number, n: number, at: number, email = (id: number) => `user${id}@example.com`) {
  return Array.from({ length: n }, (_, i) => serviceEvent('UserChanged', from + i, { firstName: `First${from + i}`, lastName: `Last${from + i}`, email: email(from + i) }, at + i));
}

async function deadLetters(b: Bridge): Promise<Array<Record<string, string>>> {
  return (await readAll(testKafka(b.config), b.config.kafka.topics.deadLetter)).map((m) => textHeaders(m));
}

describe('the Salesforce sink under faults (banyan run, emulator)', () => {
  it('REQUEST_LIMIT_EXCEEDED, 5xx, UNABLE_TO_LOCK_ROW and an ended session: every record lands once; a validation error is dead-lettered, the rest land', async () => {
    const b = await run(await bridge({ sink: ', maxRecordsPerCall: 50' }));
    await waitFor(() => settled(b), 'the bridge to start');
    const { admin } = b.emulator;
    // The next calls: one over the limit, two unavailable; two Contacts locked twice each; every session ended.
    admin.rateLimitNextCalls(1);
    admin.failNextCalls(2, 503);
    admin.lockRows({ object: 'Contact', externalIds: { field: 'Banyan_Id__c', values: ['105', '110'] }, times: 2 });
    admin.expireSessions();
    const at = Date.now();
    await b.publisher.publish([...created(100, 200, at), ...created(300, 1, at + 1000, () => 'not-an-email')]);

    await waitFor(async () => (await contacts(b)).length === 200 && (await deadLetters(b)).length === 1, 'two hundred Contacts and one dead letter');
    await waitFor(() => settled(b), 'the bridge to settle');

    const all = await contacts(b);
    expect(all).toHaveLength(200);
    expect(new Set(all.map((c) => c.Banyan_Id__c)).size).toBe(200);
    for (const c of all) expect(c.Email).toBe(`user${c.Banyan_Id__c}@example.com`);
    const [letter] = await deadLetters(b);
    expect(letter![Headers.deadLetterCode]).toBe('INVALID_EMAIL_ADDRESS');
    expect(letter![Headers.deadLetterReason]).toMatch(/Contact Banyan_Id__c=300: Salesforce refused the record: INVALID_EMAIL_ADDRESS: .*not-an-email.*\(fields: Email\)/);
    const s = sink(await status(b), 'contacts-out');
    expect(s.details).toMatchObject({ written: { created: 200, updated: 0 }, refusedRows: 1 });
    expect(s.deadLetters).toBe(1);
    // The lock holds for two writes of those Contacts in all.
    expect(s.details.retriedRecords).toBe(2);
    expect(s.details.sessionRefreshes as number).toBeGreaterThanOrEqual(1);
    // Nothing came back: the service's 201 events are all the domain has.
    expect(await events(b, 'user')).toHaveLength(201);
    expect(admin.state().faults).toMatchObject({ rateLimitedCalls: 0, failingCalls: 0, rowLocks: 0 });
  }, 180_000);

  it('the sink killed with SIGKILL mid-batch and restarted leaves every Salesforce record correct', async () => {
    const first = await run(await bridge({ sink: ', maxRecordsPerCall: 10' }));
    await waitFor(() => settled(first), 'the bridge to start');
    const at = Date.now();
    // Each user created, then its email changed: 800 events for 400 Contacts.
    await first.publisher.publish([...created(1000, 400, at), ...created(1000, 400, at + 10_000, (id) => `changed${id}@example.com`)]);
    await waitFor(async () => ((sink(await status(first), 'contacts-out').details.written as { created: number }).created ?? 0) >= 100, 'a hundred Contacts written');
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    children.splice(children.indexOf(first.child), 1);

    const again = await run(first);
    await waitFor(async () => {
      const all = await contacts(again);
      return all.length === 400 && all.every((c) => c.Email === `changed${c.Banyan_Id__c}@example.com`);
    }, 'every Contact with its last email', 120_000);
    await waitFor(() => settled(again), 'the bridge to settle', 120_000);

    const all = await contacts(again);
    expect(all).toHaveLength(400);
    expect(new Set(all.map((c) => c.Banyan_Id__c)).size).toBe(400);
    for (const c of all) expect([c.FirstName, c.LastName, c.Email]).toEqual([`First${c.Banyan_Id__c}`, `Last${c.Banyan_Id__c}`, `changed${c.Banyan_Id__c}@example.com`]);
    expect(await deadLetters(again)).toEqual([]);
    // Nothing echoed into the domain, before or after the kill.
    expect(await events(again, 'user')).toHaveLength(800);
  }, 300_000);

  it('a backlog goes through one Bulk API 2.0 job; its changes come back as echoes by their fingerprints', async () => {
    const b = await bridge({ sink: ', bulk: { threshold: 100, pollMs: 50 }' });
    // The backlog is there before the bridge starts (in the topics a domain service would have made).
    for (const entity of ['user', 'address']) await createTopic(testKafka(b.config), `${b.prefix}.${entity}`, b.config.kafka.topics.partitions);
    await b.publisher.publish(created(5000, 300, Date.now()));
    const running = await run(b);
    await waitFor(async () => (await contacts(running)).length === 300, 'three hundred Contacts');
    await waitFor(() => settled(running), 'the bridge to settle');

    const jobs = b.emulator.admin.bulkJobs();
    expect(jobs.length).toBeGreaterThanOrEqual(1);
    expect(jobs.reduce((n, j) => n + j.numberRecordsProcessed, 0), JSON.stringify(jobs)).toBe(300);
    const s = await status(running);
    // Bulk results tell no creates from updates (the successful results are not read).
    expect(sink(s, 'contacts-out').details).toMatchObject({ written: { created: 0, updated: 0, upserted: 300 } });
    expect(sink(s, 'contacts-out').details.bulkJobs).toBe(jobs.length);
    // Bulk writes' change events name no client (the emulator's reading): only the fingerprints know them.
    const cdc = s.sources.find((p) => p.name === 'contacts')!.details;
    expect(cdc.fingerprintEchoes).toBe(cdc.events);
    expect(cdc.echoes).toBe(300);
    expect(await events(running, 'user')).toHaveLength(300);
  }, 180_000);

  it('at its share of the daily API limit the sink pauses, loudly, and goes on when the org uses less', async () => {
    const b = await run(await bridge({ sink: ', apiBudget: { share: 0.5, recheckMs: 100 }' }));
    await waitFor(() => settled(b), 'the bridge to start');
    // Waits read Banyan's status, not Salesforce: every query would spend the org's budget too.
    const contactsCreated = async () => (sink(await status(b), 'contacts-out').details.written as { created: number }).created;
    // A first Contact, and its change event read: every process's calls at start (the CDC source's describe) are behind.
    await b.publisher.publish(created(7000, 1, Date.now()));
    await waitFor(async () => (await contactsCreated()) === 1 && ((await status(b)).sources.find((p) => p.name === 'contacts')!.details.events as number) >= 1, 'the first Contact and its echo');
    // The org has used 60 % of its day: the answer to the next write says so, and the sink pauses after it.
    b.emulator.admin.setApiUsage({ used: 600, max: 1000 });
    await b.publisher.publish(created(7001, 1, Date.now()));
    await waitFor(async () => (await contactsCreated()) === 2, 'the second Contact (its answer reports the usage)');
    await waitFor(() => settled(b), 'the bridge to settle');
    await b.publisher.publish(created(7002, 1, Date.now()));
    await waitFor(async () => (sink(await status(b), 'contacts-out').details.apiBudget as { state: string }).state === 'paused', 'the sink to pause');
    expect((await contacts(b)).map((c) => c.Banyan_Id__c).sort()).toEqual(['7000', '7001']);
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(metrics).toContain('banyan_sink_api_budget_state{sink="contacts-out",state="paused"} 1');
    expect(metrics).toMatch(/banyan_salesforce_api_max\{sink="contacts-out"\} 1000/);
    // A new day (or a raised limit): the sink's next look at /limits lets it go on.
    b.emulator.admin.setApiUsage({ used: 0 });
    await waitFor(async () => (await contactsCreated()) === 3, 'the third Contact');
    expect((await contacts(b)).map((c) => c.Banyan_Id__c).sort()).toEqual(['7000', '7001', '7002']);
    expect((sink(await status(b), 'contacts-out').details.apiBudget as { state: string }).state).toBe('ok');
  }, 180_000);
});
