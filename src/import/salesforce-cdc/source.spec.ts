import { describe, expect, it, vi } from 'vitest';
import { Headers, partitionKey, type Json } from '../../core';
import type { SalesforceClient } from '../../clients/salesforce/client';
import { parseConfig, type SalesforceCdcSourceConfig } from '../../config';
import { createRootLogger } from '../../runtime/logger';
import type { CdcOptions } from './config';
import type { RawChangeMessage } from './event';
import { SalesforceCdcSource } from './source';

/**
 * The source against a scripted Streaming API (a fake faye client) and a fake Salesforce client:
 * batching, offsets, dead letters, backpressure and the subscribe decisions, without a server.
 */

type Extension = { outgoing?: (m: Record<string, unknown>, cb: (m: Record<string, unknown>) => void) => void; incoming?: (m: Record<string, unknown>, cb: (m: unknown) => void) => void };

class FakeStreaming {
  /** The replayId each subscription asked for, in order. */
  readonly subscriptions: number[] = [];
  /** The channel of each subscription, in order. */
  readonly channels: string[] = [];
  /** Answers for the next subscriptions: a Bayeux error string refuses one. */
  readonly refusals: Array<string | undefined> = [];
  listener: ((m: RawChangeMessage) => void) | undefined;
  disconnects = 0;

  createClient(extensions: Extension[]) {
    return {
      subscribe: (channel: string, listener: (m: RawChangeMessage) => void) => {
        const message: Record<string, unknown> = { channel: '/meta/subscribe', subscription: channel };
        for (const ext of extensions) ext.outgoing?.(message, () => undefined);
        this.subscriptions.push((message.ext as { replay: Record<string, number> }).replay[channel]!);
        this.channels.push(channel);
        const refusal = this.refusals.shift();
        if (refusal) {
          for (const ext of extensions) ext.incoming?.({ channel: '/meta/subscribe', successful: false, error: refusal }, () => undefined);
          return Promise.reject(new Error(refusal));
        }
        this.listener = listener;
        return Promise.resolve();
      },
      disconnect: () => {
        this.disconnects += 1;
      },
    };
  }

  push(...messages: RawChangeMessage[]): void {
    for (const m of messages) this.listener?.(m);
  }
}

const ids = ['003Em0000000001IAA', '003Em0000000002IAA', '003Em0000000003IAA'];

function event(replayId: number, changeType = 'UPDATE', recordIds = [ids[0]!], fields: Record<string, unknown> = { Phone: String(replayId) }): RawChangeMessage {
  return {
    payload: {
      ChangeEventHeader: {
        entityName: 'Contact', recordIds, changeType, changeOrigin: 'com/salesforce/api/rest/62.0', transactionKey: 't', sequenceNumber: 1,
        commitTimestamp: 1_700_000_000_000 + replayId, commitNumber: 1, commitUser: '005Em0000000001IAA',
        changedFields: changeType === 'UPDATE' ? Object.keys(fields) : [], nulledFields: [], diffFields: [],
      },
      ...fields,
    },
    event: { replayId },
  };
}

function ofEntity(entityName: string, message: RawChangeMessage): RawChangeMessage {
  const payload = message.payload as { ChangeEventHeader: Record<string, unknown> };
  return { ...message, payload: { ...payload, ChangeEventHeader: { ...payload.ChangeEventHeader, entityName } } };
}

function setup(options: Partial<CdcOptions> = {}, batchSize = 100, sourceExtra = '') {
  const streaming = new FakeStreaming();
  const conn = { streaming, describe: async () => ({ fields: [{ name: 'Id', type: 'id' }, { name: 'Phone', type: 'phone' }] }) };
  const client = {
    connection: conn,
    connect: async () => conn,
    refreshSession: vi.fn(async () => undefined),
    call: async (_purpose: string, _what: string, fn: (c: unknown) => unknown) => fn(conn),
    usage: () => ({ callsByPurpose: {} }),
  } as unknown as SalesforceClient;
  const yaml = `
kafka: { brokers: '127.0.0.1:1' }
schemaRegistry: { url: 'http://127.0.0.1:1' }
salesforce:
  loginUrl: http://127.0.0.1:1
  clientId: x
  clientSecret: \${S}
sources:
  - { name: contacts, type: salesforce-cdc, object: Contact, batchSize: ${batchSize}, pollIntervalMs: 10${sourceExtra} }
`;
  const config = parseConfig(yaml, 'spec', { S: 'secret' });
  const logs: Array<Record<string, unknown>> = [];
  const logger = createRootLogger('info', { write: (line: string) => void logs.push(JSON.parse(line)) });
  const source = new SalesforceCdcSource(config.sources[0] as SalesforceCdcSourceConfig, { client, logger, callOptionsClient: 'banyan', options });
  const offsets = (offset?: Record<string, Json>) => new Map(offset ? [[partitionKey('contacts', { object: 'Contact' }), offset]] : []);
  return { source, streaming, client, logs, offsets, signal: new AbortController().signal };
}

describe('SalesforceCdcSource', () => {
  it('refuses a poll after a connect that failed, and resumes after the stored replayId once connected', async () => {
    const { source, streaming, offsets, signal } = setup();
    streaming.refusals.push('400::subscription refused');
    await expect(source.connect(offsets({ replayId: 41, commitTimestamp: 1 }))).rejects.toMatchObject({ retriable: true });
    await expect(source.poll(signal)).rejects.toMatchObject({ code: 'NOT_CONNECTED', retriable: true });
    await source.connect(offsets({ replayId: 41, commitTimestamp: 1 }));
    streaming.push(event(42));
    expect((await source.poll(signal)).offsets[0]?.offset.replayId).toBe(42);
    expect(streaming.subscriptions).toEqual([41, 41]);
  });

  it('closes what it opened when a connect fails part-way (the Source contract)', async () => {
    const expired = '400::The replayId {3} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.';
    const { source, streaming, offsets } = setup({ replayExpiredPolicy: 'latest' });
    // The stored replayId is gone; the subscription "from now" that follows is refused too.
    streaming.refusals.push(expired, '403::Unknown client');
    await expect(source.connect(offsets({ replayId: 3, commitTimestamp: 1 }))).rejects.toThrow();
    expect(streaming.subscriptions).toEqual([3, -1]);
    // Both streaming clients it made are gone, and it refuses a poll until connected again.
    expect(streaming.disconnects).toBe(2);
    await expect(source.poll(new AbortController().signal)).rejects.toMatchObject({ code: 'NOT_CONNECTED' });
  });

  it('subscribes after the stored replayId, or from replayFrom without one', async () => {
    const a = setup();
    await a.source.connect(a.offsets({ replayId: 41, commitTimestamp: 1 }));
    const b = setup({ replayFrom: -2 });
    await b.source.connect(b.offsets());
    expect([a.streaming.subscriptions, b.streaming.subscriptions]).toEqual([[41], [-2]]);
  });

  it('writes one record per record id, dead-letters what it cannot read, and positions the batch after its last event', async () => {
    const { source, streaming, offsets, signal } = setup();
    await source.connect(offsets());
    streaming.push(
      event(5, 'CREATE', [ids[0]!, ids[1]!], { Phone: '1' }),
      { payload: { ChangeEventHeader: { changeType: 'MERGE' } }, event: { replayId: 6 } },
      event(7, 'UPDATE', [ids[0]!], { Phone: null }),
    );
    const result = await source.poll(signal);
    expect(result.records.map((r) => [r.key, (r.value as { op: string }).op, r.headers[Headers.sourcePosition]])).toEqual([
      [{ Id: ids[0] }, 'create', '5'],
      [{ Id: ids[1] }, 'create', '5'],
      [{ Id: ids[0] }, 'update', '7'],
    ]);
    expect((result.records[2]?.value as { fields: unknown }).fields).toEqual({ Phone: null });
    expect(result.deadLetters).toEqual([expect.objectContaining({ source: 'salesforce:Contact', key: '6', topic: 'salesforce.Contact', code: 'UNKNOWN_CHANGE_TYPE', reason: expect.stringContaining('replayId 6') })]);
    expect(result.offsets).toEqual([{ partition: { object: 'Contact' }, offset: { replayId: 7, commitTimestamp: 1_700_000_000_007, channel: '/data/ContactChangeEvent' } }]);
    await result.ack();
    expect(source.status()).toMatchObject({ events: 2, records: 3, deadLetters: 1, lastReplayId: 7 });
  });

  it('keeps batches to batchSize and returns an empty result when nothing came', async () => {
    const { source, streaming, offsets, signal } = setup({}, 2);
    await source.connect(offsets());
    expect(await source.poll(signal)).toMatchObject({ records: [], offsets: [] });
    streaming.push(event(1), event(2), event(3));
    expect((await source.poll(signal)).offsets[0]?.offset.replayId).toBe(2);
    expect((await source.poll(signal)).offsets[0]?.offset.replayId).toBe(3);
  });

  it('unsubscribes when the queue is full and subscribes again from the last queued event once it drained', async () => {
    const { source, streaming, offsets, signal } = setup({ queueCapacity: 4 }, 3);
    await source.connect(offsets({ replayId: 0, commitTimestamp: 0 }));
    streaming.push(event(1), event(2), event(3), event(4), event(5));
    expect(streaming.disconnects).toBe(1);
    expect((await source.poll(signal)).records).toHaveLength(3);
    expect((await source.poll(signal)).records).toHaveLength(1);
    // Event 5 arrived after the pause: not queued, replayed by the new subscription after 4.
    expect(streaming.subscriptions).toEqual([0, 4]);
    expect(source.status()).toMatchObject({ backpressurePauses: 1, queueDepth: 0 });
  });

  it('without a stored offset, resumes just before the first event it saw rather than from a new "now"', async () => {
    const { source, streaming, offsets } = setup();
    await source.connect(offsets());
    streaming.push(event(12), event(13));
    await source.connect(offsets());
    expect(streaming.subscriptions).toEqual([-1, 11]);
  });

  it('applies replayExpiredPolicy latest and fail loudly', async () => {
    const expired = '400::The replayId {3} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.';
    const latest = setup({ replayExpiredPolicy: 'latest' });
    latest.streaming.refusals.push(expired);
    await latest.source.connect(latest.offsets({ replayId: 3, commitTimestamp: 5 }));
    expect(latest.streaming.subscriptions).toEqual([3, -1]);
    expect(latest.logs.find((l) => l.event === 'cdc.replay_expired')).toMatchObject({ level: 50, policy: 'latest', replayId: 3 });
    expect(latest.source.status().replayExpired).toBe(1);

    const fail = setup({ replayExpiredPolicy: 'fail' });
    fail.streaming.refusals.push(expired);
    await expect(fail.source.connect(fail.offsets({ replayId: 3, commitTimestamp: 5 }))).rejects.toMatchObject({ code: 'CDC_REPLAY_EXPIRED', retriable: false });
    expect(fail.streaming.subscriptions).toEqual([3]);
  });

  it('subscribes to its configured channel, skips and counts other entities’ events there, and moves its position past them', async () => {
    const { source, streaming, offsets, signal } = setup({}, 100, ', channel: /data/BanyanContacts__chn');
    await source.connect(offsets());
    expect(streaming.channels).toEqual(['/data/BanyanContacts__chn']);
    streaming.push(event(1, 'UPDATE', [ids[0]!], { Phone: '1' }), ofEntity('Account', event(2, 'CREATE', ['001Em0000000001IAA'], { Name: 'Acme' })));
    const result = await source.poll(signal);
    expect(result.records.map((r) => (r.value as { entity: string }).entity)).toEqual(['Contact']);
    expect(result.deadLetters).toEqual([]);
    expect(result.offsets).toEqual([{ partition: { object: 'Contact' }, offset: { replayId: 2, commitTimestamp: 1_700_000_000_002, channel: '/data/BanyanContacts__chn' } }]);
    expect(source.status()).toMatchObject({ events: 1, records: 1, otherEntityEvents: 1, deadLetters: 0 });
  });

  it('dead-letters another entity’s event on its object’s own channel', async () => {
    const { source, streaming, offsets, signal } = setup();
    await source.connect(offsets());
    streaming.push(ofEntity('Account', event(4, 'CREATE', ['001Em0000000001IAA'], { Name: 'Acme' })));
    const result = await source.poll(signal);
    expect(result.deadLetters).toEqual([expect.objectContaining({ code: 'UNEXPECTED_ENTITY' })]);
    expect(source.status()).toMatchObject({ otherEntityEvents: 0, deadLetters: 1 });
  });

  it('treats a stored replayId of another channel as no position here: the replayExpiredPolicy, loudly', async () => {
    const custom = ', channel: /data/BanyanContacts__chn';
    // Offsets written before the channel was stored are positions on the object's own channel.
    const latest = setup({ replayExpiredPolicy: 'latest' }, 100, custom);
    await latest.source.connect(latest.offsets({ replayId: 3, commitTimestamp: 5 }));
    expect(latest.streaming.subscriptions).toEqual([-1]);
    expect(latest.logs.find((l) => l.event === 'cdc.channel_changed')).toMatchObject({
      level: 50, policy: 'latest', replayId: 3, storedChannel: '/data/ContactChangeEvent', channel: '/data/BanyanContacts__chn',
    });
    expect(latest.source.status()).toMatchObject({ channelChanges: 1, replayExpired: 0 });

    const fail = setup({ replayExpiredPolicy: 'fail' }, 100, custom);
    await expect(fail.source.connect(fail.offsets({ replayId: 3, commitTimestamp: 5, channel: '/data/ChangeEvents' }))).rejects.toMatchObject({ code: 'CDC_CHANNEL_CHANGED', retriable: false });
    expect(fail.streaming.subscriptions).toEqual([]);

    const same = setup({ replayExpiredPolicy: 'fail' }, 100, custom);
    await same.source.connect(same.offsets({ replayId: 3, commitTimestamp: 5, channel: '/data/BanyanContacts__chn' }));
    expect(same.streaming.subscriptions).toEqual([3]);
  });

  it('refuses a single-entity channel of another object in the config, naming the path', () => {
    const yaml = (channel: string) => `
kafka: { brokers: '127.0.0.1:1' }
schemaRegistry: { url: 'http://127.0.0.1:1' }
salesforce:
  loginUrl: http://127.0.0.1:1
  clientId: x
  clientSecret: \${S}
sources:
  - { name: contacts, type: salesforce-cdc, object: Contact, channel: ${channel} }
`;
    expect(() => parseConfig(yaml('/data/AccountChangeEvent'), 'spec', { S: 's' })).toThrow(/sources\[0\]\.channel \(line 9\): \/data\/AccountChangeEvent carries only Account changes, not Contact/);
    expect(() => parseConfig(yaml('ContactChangeEvent'), 'spec', { S: 's' })).toThrow(/sources\[0\]\.channel/);
    for (const ok of ['/data/ContactChangeEvent', '/data/ChangeEvents', '/data/BanyanContacts__chn']) {
      expect((parseConfig(yaml(ok), 'spec', { S: 's' }).sources[0] as SalesforceCdcSourceConfig).channel).toBe(ok);
    }
  });

  it('renews an ended session when the subscription is refused for it', async () => {
    const { source, streaming, client, offsets } = setup();
    streaming.refusals.push('401::Authentication invalid');
    await source.connect(offsets({ replayId: 9, commitTimestamp: 1 }));
    expect(streaming.subscriptions).toEqual([9, 9]);
    expect(client.refreshSession).toHaveBeenCalledTimes(1);
  });
});
