import { Writable } from 'node:stream';
import type { Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config';
import { ConfigError } from '../core';
import {
  CHANGE_TYPE_STATES,
  ChangeTypeError,
  ChangeTypeTable,
  KafkaChangeTypes,
  parseChangeTypeRecord,
  transitionProblem,
  type ChangeTypeState,
  type ChangeTypesConfig,
} from './change-types';
import { createRootLogger } from './logger';

function capture() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const lines = () =>
    chunks
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger: createRootLogger('info', stream), lines };
}

const TYPES: ChangeTypesConfig = { user: { initial: 'legacy-owned' }, address: { initial: 'dual' } };

function record(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'user', state: 'dual', from: 'legacy-owned', at: '2025-01-02T03:04:05.000Z', by: 'alice', why: 'pilot', seq: 1, ...fields };
}

function message(offset: number, value: Record<string, unknown> | string | null, key: string | null = 'user') {
  return {
    key: key === null ? null : Buffer.from(key),
    value: value === null ? null : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
    offset: String(offset),
  };
}

describe('transitions', () => {
  const [legacy, dual, owned, decommissioned] = ['legacy-owned', 'dual', 'new-owned', 'decommissioned'] as const;
  // [from, to, allowed]: any forward move, back one step, never to the same state.
  const table: Array<[ChangeTypeState, ChangeTypeState, boolean]> = [
    [legacy, dual, true],
    [legacy, owned, true],
    [legacy, decommissioned, true],
    [dual, owned, true],
    [dual, decommissioned, true],
    [owned, decommissioned, true],
    [dual, legacy, true],
    [owned, dual, true],
    [decommissioned, owned, true],
    [owned, legacy, false],
    [decommissioned, dual, false],
    [decommissioned, legacy, false],
    [legacy, legacy, false],
    [dual, dual, false],
    [owned, owned, false],
    [decommissioned, decommissioned, false],
  ];
  it.each(table)('%s → %s allowed: %s', (from, to, allowed) => {
    expect(transitionProblem(from, to) === undefined).toBe(allowed);
  });

  it('covers every state', () => {
    expect(CHANGE_TYPE_STATES).toEqual([legacy, dual, owned, decommissioned]);
  });

  it('says what to do when a move goes back too far, or nowhere', () => {
    expect(transitionProblem('decommissioned', 'legacy-owned')).toBe(
      'decommissioned → legacy-owned goes back 3 steps; go back one step at a time (next: decommissioned → new-owned)',
    );
    expect(transitionProblem('dual', 'dual')).toBe('it is already dual');
  });
});

describe('parseChangeTypeRecord', () => {
  it('reads a record and keeps only its known fields', () => {
    expect(parseChangeTypeRecord('user', JSON.stringify(record({ host: 'h1', extra: 1 })))).toEqual({
      type: 'user',
      state: 'dual',
      from: 'legacy-owned',
      at: '2025-01-02T03:04:05.000Z',
      by: 'alice',
      why: 'pilot',
      seq: 1,
      host: 'h1',
    });
    // seq is informational: a record written by hand without it is still read.
    expect(parseChangeTypeRecord('user', JSON.stringify(record({ seq: undefined })))).not.toHaveProperty('seq');
  });

  it.each([
    ['not JSON', 'user', '{"type":', /value is not JSON/],
    ['an array', 'user', '[]', /not a JSON object/],
    ['null', 'user', 'null', /not a JSON object/],
    ['a key of another type', 'address', JSON.stringify(record()), /key "address" but the value is about "user"/],
    ['no key', null, JSON.stringify(record()), /key is missing/],
    ['an unknown state', 'user', JSON.stringify(record({ state: 'owned' })), /"state" "owned" is none of legacy-owned, dual, new-owned, decommissioned/],
    ['an unknown from', 'user', JSON.stringify(record({ from: null })), /"from" null is none of/],
    ['no by', 'user', JSON.stringify(record({ by: undefined })), /"by" must be a non-empty string/],
    ['a blank why', 'user', JSON.stringify(record({ why: '  ' })), /"why" must be a non-empty string/],
    ['a bad date', 'user', JSON.stringify(record({ at: 'yesterday' })), /"at" "yesterday" is not a date/],
    ['a seq of 0', 'user', JSON.stringify(record({ seq: 0 })), /"seq" 0 is not a positive integer/],
    ['a seq as text', 'user', JSON.stringify(record({ seq: '2' })), /"seq" "2" is not a positive integer/],
  ])('refuses %s, saying what is wrong', (_what, key, value, error) => {
    expect(() => parseChangeTypeRecord(key, value)).toThrow(error);
  });
});

describe('ChangeTypeTable', () => {
  it('gives each configured type its initial state until a record says otherwise', () => {
    const table = new ChangeTypeTable(TYPES, capture().logger);
    expect(table.view('user')).toEqual({ type: 'user', state: 'legacy-owned', configured: true, version: null });
    expect(table.view('address').state).toBe('dual');
    expect(table.views().map((v) => v.type)).toEqual(['address', 'user']);
  });

  it('refuses a type it does not know, naming the configured ones', () => {
    const table = new ChangeTypeTable(TYPES, capture().logger);
    const error = (() => {
      try {
        table.view('usr');
      } catch (e) {
        return e;
      }
    })() as ChangeTypeError;
    expect(error).toBeInstanceOf(ChangeTypeError);
    expect(error.code).toBe('UNKNOWN_CHANGE_TYPE');
    expect(error.message).toBe('unknown change type "usr" (configured: user, address; see changeTypes in the config)');
  });

  it('applies records in offset order, once: a record read again (a reread after a restart) changes nothing', () => {
    const table = new ChangeTypeTable(TYPES, capture().logger);
    expect(table.apply('ctl', 0, message(4, record()))).toEqual({ type: 'user', state: 'dual', previous: 'legacy-owned', record: expect.objectContaining({ by: 'alice' }) });
    expect(table.apply('ctl', 0, message(4, record()))).toBeUndefined();
    expect(table.apply('ctl', 0, message(7, record({ state: 'new-owned', from: 'dual', seq: 2 })))!.state).toBe('new-owned');
    // An older record read after a newer one (a follower reading the topic again) is ignored.
    expect(table.apply('ctl', 0, message(4, record()))).toBeUndefined();
    expect(table.view('user')).toMatchObject({ state: 'new-owned', version: '7', record: { seq: 2 } });
  });

  it('skips a bad record with an error naming topic, partition and offset, keeps the state, and logs it once', () => {
    const { logger, lines } = capture();
    const table = new ChangeTypeTable(TYPES, logger);
    table.apply('ctl', 0, message(1, record()));
    expect(table.apply('ctl', 0, message(2, '{oops'))).toBeUndefined();
    expect(table.apply('ctl', 0, message(3, record({ state: 'gone' })))).toBeUndefined();
    expect(table.apply('ctl', 0, message(4, record(), null))).toBeUndefined();
    expect(table.apply('ctl', 0, message(2, '{oops'))).toBeUndefined();
    expect(table.view('user')).toMatchObject({ state: 'dual', version: '1' });
    expect(table.badRecords).toBe(3);
    const errors = lines().filter((l) => l.event === 'changetypes.bad_record');
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatchObject({ level: 50, topic: 'ctl', partition: 0, offset: '2', key: 'user', reason: expect.stringMatching(/not JSON/) });
    expect(errors[0]!.msg).toMatch(/^skipped a bad change-type record at ctl\/0\/2: value is not JSON/);
    expect(errors[2]).toMatchObject({ offset: '4', key: null, reason: 'the record has no key (the change type)' });
  });

  it('takes a tombstone back to the initial state, and says so', () => {
    const { logger, lines } = capture();
    const table = new ChangeTypeTable(TYPES, logger);
    table.apply('ctl', 0, message(1, record()));
    expect(table.apply('ctl', 0, message(2, null))).toEqual({ type: 'user', state: 'legacy-owned', previous: 'dual', record: null });
    expect(table.view('user')).toEqual({ type: 'user', state: 'legacy-owned', configured: true, version: '2' });
    expect(lines().some((l) => l.event === 'changetypes.deleted' && l.offset === '2')).toBe(true);
  });

  it('lists a type only the control topic names, as not configured, and warns once', () => {
    const { logger, lines } = capture();
    const table = new ChangeTypeTable(TYPES, logger);
    table.apply('ctl', 0, message(1, record({ type: 'order' }), 'order'));
    table.apply('ctl', 0, message(2, record({ type: 'order', state: 'new-owned', from: 'dual' }), 'order'));
    expect(table.view('order')).toMatchObject({ state: 'new-owned', configured: false });
    expect(table.views().map((v) => [v.type, v.configured])).toEqual([
      ['address', true],
      ['order', false],
      ['user', true],
    ]);
    expect(lines().filter((l) => l.event === 'changetypes.not_configured')).toHaveLength(1);
  });
});

describe('KafkaChangeTypes.set before start', () => {
  it('is refused: it would compare against states it never read', async () => {
    const changeTypes = new KafkaChangeTypes({
      kafka: {} as Kafka,
      clientId: 'c',
      topic: 'ctl',
      auditTopic: 'ctl.audit',
      replicationFactor: 1,
      types: TYPES,
      logger: capture().logger,
    });
    await expect(changeTypes.set('user', 'dual', { why: 'x' })).rejects.toMatchObject({ code: 'NOT_STARTED' });
  });
});

describe('changeTypes config', () => {
  const base = 'kafka:\n  brokers: 127.0.0.1:19092\nschemaRegistry:\n  url: http://127.0.0.1:18081/apis/ccompat/v7\n';

  it('defaults to user and address, legacy-owned, and to the banyan.control topics', () => {
    const config = parseConfig(base, 'test');
    expect(config.changeTypes).toEqual({ user: { initial: 'legacy-owned' }, address: { initial: 'legacy-owned' } });
    expect(config.kafka.topics).toMatchObject({ control: 'banyan.control', controlAudit: 'banyan.control.audit' });
  });

  it('reads a type written with no settings, and an initial state', () => {
    const config = parseConfig(`${base}changeTypes:\n  user:\n  order: { initial: dual, description: orders and lines }\n`, 'test');
    expect(config.changeTypes).toEqual({ user: { initial: 'legacy-owned' }, order: { initial: 'dual', description: 'orders and lines' } });
  });

  it('names the path and line of an unknown state', () => {
    expect(() => parseConfig(`${base}changeTypes:\n  user: { initial: owned }\n`, 'test')).toThrow(ConfigError);
    expect(() => parseConfig(`${base}changeTypes:\n  user: { initial: owned }\n`, 'test')).toThrow(/changeTypes\.user\.initial \(line 6\): expected one of legacy-owned\|dual\|new-owned\|decommissioned/);
  });
});
