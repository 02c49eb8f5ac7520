import { describe, expect, it } from 'vitest';
import { builtinCatalog, BUILTIN_EVENTS, EventCatalog } from '../../src/domain/catalog';
import { registerBackward, registerDomainSchemas, SchemaRegistrationError } from '../../src/domain/registry';
import { registerAvro, createSchemaRegistry } from '../../src/runtime/registry';
import { freshName, requireEnv } from '../helpers';

/**
 * The registry keeps the domain schemas BACKWARD compatible: once a schema is registered, one that
 * readers of it could not use is refused (HTTP 409) before any event is written with it, and a
 * compatible change (a new optional field, a new event type) is accepted.
 */
const registry = requireEnv('SCHEMA_REGISTRY_URL');
const userValue = builtinCatalog().schemas('domain.user').value as { fields: Array<{ name: string; type: unknown }> };

/** The user value schema with its data branches changed by `change` (a deep copy). */
function variant(change: (branches: Array<{ name: string; fields: Array<Record<string, unknown>> }>) => void): object {
  const copy = structuredClone(userValue);
  const data = copy.fields.find((f) => f.name === 'data')!;
  change(data.type as Array<{ name: string; fields: Array<Record<string, unknown>> }>);
  return copy;
}

async function refusal(subject: string, schema: object): Promise<SchemaRegistrationError> {
  const error = await registerBackward(registry, subject, schema).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SchemaRegistrationError);
  return error as SchemaRegistrationError;
}

describe('domain schemas in the registry, under BACKWARD', () => {
  it('sets the subject to BACKWARD, then refuses breaking changes with 409 and accepts compatible ones', async () => {
    const subject = `${freshName('domain_user')}-value`;
    const v1 = await registerBackward(registry, subject, userValue);
    const config = (await (await fetch(`${registry}/config/${subject}`)).json()) as { compatibilityLevel?: string; compatibility?: string };
    expect(config.compatibilityLevel ?? config.compatibility).toBe('BACKWARD');

    const typeChanged = variant((branches) => {
      branches[0]!.fields.find((f) => f.name === 'email')!.type = ['null', 'int'];
    });
    const branchRemoved = variant((branches) => void branches.splice(1, 1));
    const requiredAdded = variant((branches) => void branches[0]!.fields.push({ name: 'phone', type: 'string' }));
    for (const breaking of [typeChanged, branchRemoved, requiredAdded]) {
      const error = await refusal(subject, breaking);
      expect(error.status).toBe(409);
      expect(error.subject).toBe(subject);
      expect(error.message).toContain(`registering the schema of ${subject}: it is not BACKWARD compatible`);
    }

    const optionalAdded = variant((branches) => void branches[0]!.fields.push({ name: 'phone', type: ['null', 'string'], default: null }));
    const v2 = await registerBackward(registry, subject, optionalAdded);
    expect(v2).not.toBe(v1);
    const versions = (await (await fetch(`${registry}/subjects/${subject}/versions`)).json()) as number[];
    expect(versions).toEqual([1, 2]);
  });

  it('registers every topic’s key and value schema, the same ids again on a second start, and a new event type is a compatible change', async () => {
    const prefix = freshName('domain');
    const onFreshTopics = (events = BUILTIN_EVENTS) => new EventCatalog(events.map((e) => ({ ...e, topic: e.topic.replace(/^domain\./, `${prefix}.`) })));
    const first = await registerDomainSchemas(registry, onFreshTopics());
    expect(Object.keys(first)).toEqual([`${prefix}.user`, `${prefix}.address`]);
    expect(first[`${prefix}.user`]!.valueSubject).toBe(`${prefix}.user-value`);
    expect(first[`${prefix}.user`]!.keySubject).toBe(`${prefix}.user-key`);
    expect(await registerDomainSchemas(registry, onFreshTopics())).toEqual(first);
    // The runtime registers the schema objects of eventRecords' records itself: it must find the same ids.
    const catalog = onFreshTopics();
    const runtimeId = await registerAvro(createSchemaRegistry({ url: registry }), `${prefix}.user-value`, catalog.schemas(`${prefix}.user`).value);
    expect(runtimeId).toBe(first[`${prefix}.user`]!.value);

    const withNewEvent = onFreshTopics([
      ...BUILTIN_EVENTS,
      { name: 'UserEmailVerified', entity: 'user', topic: 'domain.user', kind: 'changed', fields: { email: { type: 'string' }, at: { type: 'timestamp' } } },
    ]);
    const second = await registerDomainSchemas(registry, withNewEvent, { topics: [`${prefix}.user`] });
    expect(second[`${prefix}.user`]!.key).toBe(first[`${prefix}.user`]!.key);
    expect(second[`${prefix}.user`]!.value).not.toBe(first[`${prefix}.user`]!.value);
  });
});
