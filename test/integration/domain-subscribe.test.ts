import { afterAll, describe, expect, it } from 'vitest';
import { BUILTIN_EVENTS, EventCatalog } from '../../src/domain/catalog';
import type { DomainEvent } from '../../src/domain/event';
import { correlationId, eventId, eventRecords } from '../../src/domain/records';
import { registerDomainSchemas } from '../../src/domain/registry';
import { subscribe, type EventContext, type Subscription } from '../../src/domain/subscribe';
import type { UserEvent } from '../../src/domain/types';
import { createTopic, freshName, requireEnv, testConfig, testKafka, waitFor, withAdmin } from '../helpers';

/**
 * The typed consumer helper on the real broker and registry: events written by eventRecords and
 * framed with the registered ids come back decoded and typed, read_committed, and a group's offset
 * moves only after the handler returned.
 */
const registry = requireEnv('SCHEMA_REGISTRY_URL');
const kafka = testKafka(testConfig());

/** The built-in events on fresh topics, so this file's events are its own. */
function freshCatalog(): { catalog: EventCatalog; userTopic: 'domain.user' } {
  const prefix = freshName('domain');
  const catalog = new EventCatalog(BUILTIN_EVENTS.map((e) => ({ ...e, topic: e.topic.replace(/^domain\./, `${prefix}.`) })));
  // Typed as the built-in topic: the helper types a handler by topic name, and these are its events.
  return { catalog, userTopic: `${prefix}.user` as 'domain.user' };
}

function event(type: 'UserChanged' | 'UserDeleted', id: string, offset: number, data: Record<string, unknown> = {}): DomainEvent {
  const causation = { topic: 'legacy.pg.users', partition: 0, offset: String(offset) };
  return {
    eventId: eventId(causation, type, 0),
    type,
    entity: 'user',
    entityId: id,
    entityKey: { id },
    sourceCommitTime: 1_714_564_800_000 + offset,
    origin: 'legacy',
    causation,
    correlationId: correlationId(causation),
    changedFields: Object.keys(data),
    knownFields: Object.keys(data),
    schemaVersion: 1,
    data,
  };
}

/** Writes the events' records in one transaction (committed, or aborted), framed with the registered ids. */
async function write(catalog: EventCatalog, events: DomainEvent[], commit = true): Promise<void> {
  const ids = await registerDomainSchemas(registry, catalog);
  const frame = (id: number, body: Uint8Array) => Buffer.concat([Buffer.from([0, (id >>> 24) & 255, (id >>> 16) & 255, (id >>> 8) & 255, id & 255]), body]);
  const producer = kafka.producer({ transactionalId: freshName('domain_tx'), maxInFlightRequests: 1, idempotent: true });
  await producer.connect();
  try {
    const tx = await producer.transaction();
    for (const e of events) {
      for (const record of eventRecords(e, catalog)) {
        const { key, value } = ids[record.topic]!;
        await tx.send({
          topic: record.topic,
          messages: [{ key: frame(key, record.encoded!.key), value: record.encoded!.value && frame(value, record.encoded!.value), headers: record.headers, timestamp: String(record.timestamp) }],
        });
      }
    }
    await (commit ? tx.commit() : tx.abort());
  } finally {
    await producer.disconnect();
  }
}

async function committedOffset(groupId: string, topic: string): Promise<number> {
  return withAdmin(kafka, async (admin) => {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return Number(offsets!.partitions[0]!.offset);
  });
}

const subscriptions: Subscription[] = [];
afterAll(async () => {
  for (const s of subscriptions) await s.stop().catch(() => undefined);
});

describe('subscribe', () => {
  it('hands over decoded, typed events in order, read_committed, skips tombstones, and retries a handler that threw', async () => {
    const { catalog, userTopic } = freshCatalog();
    await createTopic(kafka, userTopic, 1);
    await write(catalog, [event('UserChanged', '1', 10, { firstName: 'Ada', email: 'ada@example.org' }), event('UserDeleted', '1', 11)]);
    await write(catalog, [event('UserChanged', '666', 12, { email: 'aborted@example.org' })], false);
    await write(catalog, [event('UserChanged', '2', 13, { lastName: 'Hopper' })]);

    const seen: string[] = [];
    const handled: UserEvent[] = [];
    const contexts: EventContext[] = [];
    let failedOnce = false;
    const groupId = freshName('domain_group');
    const subscription = await subscribe(
      { kafka, schemaRegistry: registry, catalog },
      userTopic,
      (e, context) => {
        seen.push(`${e.type}:${e.entityId}`);
        if (e.type === 'UserDeleted' && !failedOnce) {
          failedOnce = true;
          throw new Error('the handler fails once');
        }
        // Typed: a UserChanged's data has the user fields.
        if (e.type === 'UserChanged') expect(typeof e.data.email === 'string' || e.data.email === null).toBe(true);
        handled.push(e);
        contexts.push(context);
      },
      { groupId, fromBeginning: true, retryBackoffMs: 10 },
    );
    subscriptions.push(subscription);
    await waitFor(() => handled.length >= 3, () => `three events handled (seen: ${seen.join(', ')})`);
    expect(seen).toEqual(['UserChanged:1', 'UserDeleted:1', 'UserDeleted:1', 'UserChanged:2']);
    expect(handled[0]).toEqual({ ...event('UserChanged', '1', 10, { firstName: 'Ada', email: 'ada@example.org' }), data: { firstName: 'Ada', lastName: null, email: 'ada@example.org' } });
    expect(handled[1]).toEqual(event('UserDeleted', '1', 11));
    expect(handled[2]!.data).toEqual({ firstName: null, lastName: 'Hopper', email: null });
    expect(contexts[0]!.key).toEqual({ id: '1' });
    expect(contexts[0]!.headers['banyan.event.type']).toBe('UserChanged');
    expect(contexts[0]!.timestamp).toBe(1_714_564_800_010);
    // Past the last event: the tombstone's offset was committed too.
    await waitFor(async () => (await committedOffset(groupId, userTopic)) === Number(contexts[2]!.offset) + 1, 'the offset after the last event committed');
    await subscription.stop();
    await subscription.done;
  });

  it('commits an event’s offset only after its handler returned; one that spent its retries stops the subscription and comes again', async () => {
    const { catalog, userTopic } = freshCatalog();
    await createTopic(kafka, userTopic, 1);
    await write(catalog, [event('UserChanged', '1', 20, { email: 'a@example.org' }), event('UserChanged', '2', 21, { email: 'b@example.org' })]);
    const groupId = freshName('domain_group');

    // The handler of the first event waits for the test: meanwhile nothing is committed.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const offsets: string[] = [];
    const first = await subscribe(
      { kafka, schemaRegistry: registry, catalog },
      userTopic,
      async (e, context) => {
        offsets.push(context.offset);
        if (e.entityId === '1') await released;
        else throw new Error(`cannot handle ${e.entityId}`);
      },
      { groupId, fromBeginning: true, retries: 0 },
    );
    subscriptions.push(first);
    await waitFor(() => offsets.length === 1, 'the first event handed over');
    // The group's answer while the handler runs: no offset committed yet (-1).
    expect(await committedOffset(groupId, userTopic)).toBe(-1);
    release();
    await waitFor(async () => (await committedOffset(groupId, userTopic)) === Number(offsets[0]) + 1, 'the first event’s offset committed');
    // The second event's handler throws, with no retry: the subscription stops with its error.
    await expect(first.done).rejects.toThrow('cannot handle 2');
    expect(await committedOffset(groupId, userTopic)).toBe(Number(offsets[0]) + 1);

    const again: string[] = [];
    const second = await subscribe({ kafka, schemaRegistry: registry, catalog }, userTopic, (e) => void again.push(e.entityId), { groupId });
    subscriptions.push(second);
    await waitFor(() => again.length === 1, 'the failed event delivered to the next subscription of the group');
    expect(again).toEqual(['2']);
    await second.stop();
  });
});
