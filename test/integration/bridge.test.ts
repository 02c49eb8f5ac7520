import { describe, expect, it } from 'vitest';
import { serviceEvent, user } from '../legacy-databases';
import { waitFor } from '../helpers';
import { bridge, contacts, events, run, settled, sink, status } from '../bridge';
import type { DomainEvent } from '../../src/domain/event';
import { newer } from '../../src/export/plan';
import { testKafka, withAdmin } from '../helpers';

/** The whole bridge end to end (test/bridge.ts): legacy database, domain topics and Salesforce in step, nothing echoes. */
describe('the whole bridge: legacy database, domain topics and Salesforce in step', () => {
  it('a legacy change reaches Salesforce once and comes back nowhere', async () => {
    const b = await run(await bridge());
    await b.db(b.table).insert(user(1));
    await waitFor(async () => (await contacts(b)).length === 1, 'the Contact of legacy user 1');
    await waitFor(() => settled(b), 'the bridge to settle');

    expect((await contacts(b)).map((c) => [c.Banyan_Id__c, c.FirstName, c.LastName, c.Email, c.MailingCity])).toEqual([['1', 'First1', 'Last1', 'u1@example.com', 'Zurich']]);
    // One changelog row: nothing was written back into the legacy row.
    expect(await b.db(b.changelog).count({ n: '*' })).toEqual([{ n: '1' }]);
    // One event per entity, both from the legacy side: the Contact's creation came back as an echo only.
    expect((await events(b, 'user')).map((e) => [e.type, e.origin])).toEqual([['UserChanged', 'legacy']]);
    expect((await events(b, 'address')).map((e) => [e.type, e.origin])).toEqual([['AddressChanged', 'legacy']]);
    const s = await status(b);
    expect(sink(s, 'contacts-out').details).toMatchObject({ written: { created: 1, updated: 0 }, refusedRows: 0 });
    expect(s.sources.find((p) => p.name === 'contacts')!.details).toMatchObject({ events: 1, echoes: 1 });
    expect(s.transforms.find((t) => t.name === 'salesforce-contacts')!.details.dropped).toMatchObject({ echo: 1 });
    expect(sink(s, 'legacy-back').details).toMatchObject({ written: { updated: 0, inserted: 0, deleted: 0 } });
  });

  it('a Salesforce change reaches the legacy row once and comes back nowhere', async () => {
    const b = await run(await bridge());
    await b.db(b.table).insert(user(2));
    await waitFor(async () => (await contacts(b)).length === 1, 'the Contact of legacy user 2');
    await waitFor(() => settled(b), 'the bridge to settle after the insert');
    const [contact] = await contacts(b);
    await b.sf.sobject('Contact').update({ Id: contact!.Id, Email: 'salesforce@example.com' });
    await waitFor(async () => (await b.db(b.table).where({ id: 2 }).first())?.email === 'salesforce@example.com', 'the legacy row to take the Salesforce change');
    await waitFor(() => settled(b), 'the bridge to settle after the Salesforce change');

    // The legacy row changed once (its changelog row is the sink's, tagged), and nothing else.
    expect(await b.db(b.changelog).count({ n: '*' })).toEqual([{ n: '2' }]);
    expect((await events(b, 'user')).map((e) => [e.type, e.origin, e.data.email])).toEqual([
      ['UserChanged', 'legacy', 'u2@example.com'],
      ['UserChanged', 'salesforce', 'salesforce@example.com'],
    ]);
    expect((await events(b, 'address')).map((e) => e.origin)).toEqual(['legacy']);
    expect((await contacts(b)).map((c) => c.Email)).toEqual(['salesforce@example.com']);
    const s = await status(b);
    // Salesforce was written once (the create): its own change was observed, not written back.
    expect(sink(s, 'contacts-out').details).toMatchObject({ written: { created: 1, updated: 0 } });
    expect(sink(s, 'legacy-back').details).toMatchObject({ written: { updated: 1, inserted: 0, deleted: 0 } });
  });

  it("a domain service's UserChanged reaches both once, and neither echoes", async () => {
    const b = await run(await bridge({ rows: [user(3)] }));
    await b.publisher.publish([serviceEvent('UserChanged', 3, { firstName: 'Ada', lastName: 'Lovelace', email: 'ada@example.com' }, Date.now())]);
    await waitFor(async () => (await contacts(b)).length === 1 && (await b.db(b.table).where({ id: 3 }).first())?.email === 'ada@example.com', 'the change in both systems');
    await waitFor(() => settled(b), 'the bridge to settle');

    expect((await contacts(b)).map((c) => [c.Banyan_Id__c, c.FirstName, c.LastName, c.Email])).toEqual([['3', 'Ada', 'Lovelace', 'ada@example.com']]);
    expect(await b.db(b.changelog).count({ n: '*' })).toEqual([{ n: '1' }]);
    expect((await events(b, 'user')).map((e) => [e.type, e.origin])).toEqual([['UserChanged', 'domain']]);
    expect(await events(b, 'address')).toEqual([]);
    const s = await status(b);
    expect(sink(s, 'contacts-out').details).toMatchObject({ written: { created: 1, updated: 0 } });
    expect(sink(s, 'legacy-back').details).toMatchObject({ written: { updated: 1, inserted: 0, deleted: 0 } });
    expect(s.sources.find((p) => p.name === 'contacts')!.details).toMatchObject({ events: 1, echoes: 1 });
  });
});

describe('the whole bridge: conflicts and replays', () => {
  it('dual: the same field changed in the legacy database and in Salesforce within a second converges, on all three sides, to the value the rule picks', async () => {
    const b = await run(await bridge());
    await b.db(b.table).insert(user(4));
    await waitFor(async () => (await contacts(b)).length === 1, 'the Contact of legacy user 4');
    await waitFor(() => settled(b), 'the bridge to settle after the insert');
    const [contact] = await contacts(b);
    // The legacy change first, the Salesforce change right after: Salesforce's commit time is the
    // later one, or the same millisecond (then the legacy database wins the tie, docs/conflicts.md).
    await b.db(b.table).where({ id: 4 }).update({ email: 'legacy@example.com' });
    await b.sf.sobject('Contact').update({ Id: contact!.Id, Email: 'salesforce@example.com' });
    await waitFor(async () => (await events(b, 'user')).length === 3, 'the two changes as domain events');
    const users = await events(b, 'user');
    const [, legacyChange, salesforceChange] = [...users].sort((x, y) => x.sourceCommitTime - y.sourceCommitTime || (x.origin === 'legacy' ? -1 : 1));
    expect([legacyChange, salesforceChange].map((e) => [e!.origin, e!.data.email])).toEqual([
      ['legacy', 'legacy@example.com'],
      ['salesforce', 'salesforce@example.com'],
    ]);
    const version = (e: DomainEvent) => ({ versionMs: e.sourceCommitTime, origin: e.origin, eventId: e.eventId });
    const winner = newer(version(salesforceChange!), version(legacyChange!)) ? salesforceChange! : legacyChange!;
    let seen = '';
    await waitFor(
      async () => {
        const legacy = (await b.db(b.table).where({ id: 4 }).first())?.email;
        const sf = (await contacts(b))[0]?.Email;
        seen = `legacy ${legacy}, Salesforce ${sf}, winner ${winner.origin} ${winner.data.email} at ${winner.sourceCommitTime}`;
        return legacy === winner.data.email && sf === winner.data.email;
      },
      () => `both systems to hold the value the rule picks (${seen})`,
    );
    await waitFor(() => settled(b), 'the bridge to settle after the conflict');

    // Nothing more came: the domain has the three changes, and all three sides hold the winner.
    expect(await events(b, 'user')).toHaveLength(3);
    expect((await b.db(b.table).where({ id: 4 }).first()).email).toBe(winner.data.email);
    expect((await contacts(b)).map((c) => c.Email)).toEqual([winner.data.email]);
    const guard = await b.db(b.changelog.replace('banyan_cl_users', 'banyan_guard')).where({ entity: 'user', entity_id: '4', field: 'email' }).first();
    expect(guard).toMatchObject({ origin: winner.origin, version_ms: String(winner.sourceCommitTime) });
  }, 180_000);

  it('the domain topics replayed from their start change nothing in Salesforce', async () => {
    const first = await run(await bridge());
    await first.db(first.table).insert([user(5), user(6), user(7)]);
    await waitFor(async () => (await contacts(first)).length === 3, 'three Contacts');
    await first.publisher.publish([serviceEvent('UserChanged', 5, { email: 'five@example.com' }, Date.now())]);
    await waitFor(async () => (await contacts(first)).length === 3 && (await contacts(first)).some((c) => c.Email === 'five@example.com'), 'three Contacts, one changed by a service');
    await waitFor(() => settled(first), 'the bridge to settle');
    const before = await first.sf.query<{ Id: string; Email: string; LastModifiedDate: string }>('SELECT Id, Email, LastModifiedDate FROM Contact');
    const eventsBefore = (await events(first, 'user')).length + (await events(first, 'address')).length;
    first.child.kill('SIGTERM');
    await new Promise((resolve) => first.child.once('exit', resolve));

    // The Salesforce sink's group goes back to the start of every domain topic.
    const groupId = `${first.config.kafka.clientId}.sink.contacts-out`;
    await withAdmin(testKafka(first.config), async (admin) => {
      for (const topic of [`${first.prefix}.user`, `${first.prefix}.address`]) await admin.resetOffsets({ groupId, topic, earliest: true });
    });
    const again = await run(first);
    await waitFor(async () => ((await status(again)).sinks.find((p) => p.name === 'contacts-out')?.details.inputs ?? 0) >= eventsBefore, 'the replayed events read again');
    await waitFor(() => settled(again), 'the bridge to settle after the replay');

    const s = sink(await status(again), 'contacts-out');
    expect(s.details.inputs).toBe(eventsBefore);
    expect(s.details).toMatchObject({ written: { created: 0, updated: 0 }, calls: { collections: 0, bulk: 0 } });
    expect(s.details.stale).toBeGreaterThan(0);
    const after = await again.sf.query<{ Id: string; Email: string; LastModifiedDate: string }>('SELECT Id, Email, LastModifiedDate FROM Contact');
    expect(after.records).toEqual(before.records);
  }, 180_000);
});
