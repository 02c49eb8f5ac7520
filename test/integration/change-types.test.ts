import { ConfigResourceTypes } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig, type BanyanConfig } from '../../src/config';
import { createChangeTypes, type ChangeTypeChange, type KafkaChangeTypes } from '../../src/runtime/change-types';
import { createKafka } from '../../src/runtime/kafka';
import { createRootLogger } from '../../src/runtime/logger';
import { freshName, readAll, runBanyan, testKafka, waitFor, withAdmin, writeConfigFile } from '../helpers';

/**
 * Change types on the real broker: one config (fresh client id and control topics) shared by the
 * CLI in a child process and by ChangeTypes objects in this one, as `banyan run` instances would.
 */
function fixture(): { config: BanyanConfig; file: string } {
  const control = freshName('control');
  const yaml = `
kafka:
  brokers: \${KAFKA_BROKERS}
  clientId: ${freshName('banyan-ct')}
  topics:
    control: ${control}
    controlAudit: ${control}.audit
schemaRegistry:
  url: \${SCHEMA_REGISTRY_URL}
log:
  level: \${BANYAN_TEST_LOG_LEVEL:-silent}
changeTypes:
  user:
  address:
`;
  return { config: parseConfig(yaml, 'change-types test config'), file: writeConfigFile(yaml) };
}

const running: KafkaChangeTypes[] = [];

async function started(config: BanyanConfig): Promise<KafkaChangeTypes> {
  const logger = createRootLogger(config.log.level);
  const changeTypes = createChangeTypes(config, createKafka(config.kafka, logger), logger);
  running.push(changeTypes);
  await changeTypes.start();
  return changeTypes;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
});

describe('change types', () => {
  it('a transition set by the CLI in another process is seen by a running instance, and audited', async () => {
    const { config, file } = fixture();
    const b = await started(config);
    expect(b.stateOf('user')).toBe('legacy-owned');
    const seen: ChangeTypeChange[] = [];
    b.onChange((change) => seen.push(change));

    const before = Date.now();
    const set = await runBanyan(file, ['changetypes', 'set', 'user', 'dual', '--why', 'pilot with team A', '--by', 'alice']);
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/^user: legacy-owned → dual \(by alice at .+, transition 1\)\n$/);

    await waitFor(() => b.stateOf('user') === 'dual', 'instance B to see user become dual');
    expect(seen).toEqual([{ type: 'user', state: 'dual', previous: 'legacy-owned', record: expect.objectContaining({ by: 'alice', why: 'pilot with team A' }) }]);
    expect(b.stateOf('address')).toBe('legacy-owned');
    expect(b.snapshot()).toEqual([
      { type: 'address', state: 'legacy-owned', since: null, by: null },
      { type: 'user', state: 'dual', since: seen[0]!.record!.at, by: 'alice' },
    ]);

    const history = await b.history();
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({ type: 'user', from: 'legacy-owned', state: 'dual', by: 'alice', why: 'pilot with team A', seq: 1 });
    expect(Date.parse(history[0]!.at)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(history[0]!.at)).toBeLessThanOrEqual(Date.now());

    const listed = await runBanyan(file, ['changetypes', 'list', '--json']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).changeTypes).toEqual([
      { type: 'address', state: 'legacy-owned', configured: true, since: null, by: null, why: null, from: null, seq: null },
      { type: 'user', state: 'dual', configured: true, since: history[0]!.at, by: 'alice', why: 'pilot with team A', from: 'legacy-owned', seq: 1 },
    ]);
    const audit = await runBanyan(file, ['changetypes', 'history', 'user']);
    expect(audit.stdout).toMatch(/AT +TYPE +FROM +TO +BY +WHY\n\S+ +user +legacy-owned +dual +alice +pilot with team A\n$/);
  });

  it('keeps the state compacted and the audit forever', async () => {
    const { config } = fixture();
    const a = await started(config);
    await a.set('user', 'dual', { by: 'alice', why: 'one' });
    await a.set('user', 'new-owned', { by: 'bob', why: 'two' });
    const { control, controlAudit } = config.kafka.topics;
    const configs = await withAdmin(testKafka(config), (admin) =>
      admin.describeConfigs({
        includeSynonyms: false,
        resources: [control, controlAudit].map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ['cleanup.policy', 'retention.ms'] })),
      }),
    );
    const entry = (topic: string, name: string) =>
      configs.resources.find((r) => r.resourceName === topic)!.configEntries.find((e) => e.configName === name)!.configValue;
    expect(entry(control, 'cleanup.policy')).toBe('compact');
    expect(entry(controlAudit, 'cleanup.policy')).toBe('delete');
    expect(entry(controlAudit, 'retention.ms')).toBe('-1');
    // The two transitions went to both topics, each in one transaction with its audit record.
    const audit = (await readAll(testKafka(config), controlAudit)).map((m) => JSON.parse(m.value!.toString()));
    expect(audit.map((r) => [r.from, r.state, r.by, r.why])).toEqual([
      ['legacy-owned', 'dual', 'alice', 'one'],
      ['dual', 'new-owned', 'bob', 'two'],
    ]);
    expect((await readAll(testKafka(config), control)).map((m) => m.key!.toString())).toEqual(['user', 'user']);
  });

  it('refuses a set based on a stale read, and one whose expected state no longer holds, writing nothing', async () => {
    const { config, file } = fixture();
    const a = await started(config);
    const b = await started(config);
    const read = b.view('user');
    await a.set('user', 'dual', { by: 'alice', why: 'first' });

    // B acts on what it read before A's transition (B's follower may or may not have seen it yet).
    await expect(b.set('user', 'new-owned', { by: 'bob', why: 'second', expected: { version: read.version } })).rejects.toMatchObject({
      code: 'STALE_STATE',
      message: expect.stringMatching(/^"user" changed since it was read: it is now dual \(set by alice at .+: "first"\); nothing was written/),
    });
    const cli = await runBanyan(file, ['changetypes', 'set', 'user', 'new-owned', '--why', 'third', '--expect', 'legacy-owned']);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/^error: "user" changed since it was read: it is now dual/);
    expect((await a.history('user')).map((r) => r.why)).toEqual(['first']);
    await waitFor(() => b.stateOf('user') === 'dual', 'instance B to see user become dual');
    expect(a.stateOf('user')).toBe('dual');
  });

  it('lets only one of two sets made at once from the same read win', async () => {
    const { config } = fixture();
    const a = await started(config);
    const b = await started(config);
    const results = await Promise.allSettled([
      a.set('address', 'dual', { by: 'alice', why: 'from a' }),
      b.set('address', 'new-owned', { by: 'bob', why: 'from b' }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won.length).toBeLessThanOrEqual(1);
    for (const r of lost) expect(['STALE_STATE', 'CONCURRENT_WRITER']).toContain((r.reason as { code?: string }).code);
    // Whatever the race, the audit holds exactly the transitions that were reported made, from legacy-owned.
    const audit = await a.history('address');
    expect(audit.map((r) => r.why)).toEqual(won.map((r) => (r as PromiseFulfilledResult<{ why: string }>).value.why));
    expect(audit.every((r) => r.from === 'legacy-owned')).toBe(true);
  });

  it('skips a bad record in the control topic and goes on; a restart reads the latest state', async () => {
    const { config, file } = fixture();
    const b = await started(config);
    await runBanyan(file, ['changetypes', 'set', 'user', 'new-owned', '--why', 'cut over', '--by', 'carol']).then((r) => expect(r.code).toBe(0));
    await waitFor(() => b.stateOf('user') === 'new-owned', 'instance B to see user become new-owned');

    const producer = testKafka(config).producer();
    await producer.connect();
    await producer.send({ topic: config.kafka.topics.control, messages: [{ key: 'user', value: '{not json' }] });
    await producer.disconnect();
    await runBanyan(file, ['changetypes', 'set', 'address', 'dual', '--why', 'after the bad record']).then((r) => expect(r.code).toBe(0));
    await waitFor(() => b.stateOf('address') === 'dual', 'instance B to read past the bad record');
    expect(b.badRecords).toBe(1);
    expect(b.stateOf('user')).toBe('new-owned');

    await b.stop();
    const restarted = await started(config);
    expect(restarted.stateOf('user')).toBe('new-owned');
    expect(restarted.view('user').record).toMatchObject({ by: 'carol', why: 'cut over', from: 'legacy-owned' });
    expect(restarted.stateOf('address')).toBe('dual');
    expect(restarted.badRecords).toBe(1);
  });
});
