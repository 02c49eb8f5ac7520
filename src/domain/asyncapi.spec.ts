import { readFileSync } from 'node:fs';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AVRO_FORMAT, asyncApiYaml } from './asyncapi';
import { builtinCatalog } from './catalog';
import { fromAvroValue } from './codec';

/**
 * docs/asyncapi.yaml is what the generator writes now (run `npm run asyncapi` after a catalog
 * change), and its structure is the one AsyncAPI 3.0 requires. The full @asyncapi/parser is not a
 * dependency of the project; the document was checked with it when the generator was written (see
 * docs/domain.md); here the rules that matter are checked offline: every reference resolves, every
 * operation's messages belong to its channel, every payload is an Avro schema and every example a
 * value of it.
 */
const file = readFileSync('docs/asyncapi.yaml', 'utf8');
const doc = parse(file) as Record<string, any>;

/** A local JSON pointer `#/a/b` in the document (escaped as RFC 6901 says). */
function resolve(ref: string): any {
  expect(ref.startsWith('#/'), ref).toBe(true);
  let node: any = doc;
  for (const part of ref.slice(2).split('/')) {
    node = node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    expect(node, `${ref} resolves`).toBeDefined();
  }
  return node;
}

describe('docs/asyncapi.yaml', () => {
  it('is what `npm run asyncapi` writes from the catalog now', () => {
    expect(file, 'docs/asyncapi.yaml is out of date: run `npm run asyncapi`').toBe(asyncApiYaml(builtinCatalog()));
  });

  it('has the AsyncAPI 3.0 structure: info, kafka servers, a channel per topic, receive operations', () => {
    expect(doc.asyncapi).toBe('3.0.0');
    expect(typeof doc.info.title).toBe('string');
    expect(typeof doc.info.version).toBe('string');
    for (const server of Object.values<any>(doc.servers)) expect(server).toMatchObject({ host: expect.stringMatching(/^[^:/]+:\d+$/), protocol: 'kafka' });
    const addresses = Object.values<any>(doc.channels).map((c) => c.address);
    expect(addresses).toEqual(builtinCatalog().topics());
    for (const [id, channel] of Object.entries<any>(doc.channels)) {
      expect(channel.messages, id).toBeTypeOf('object');
      for (const message of Object.values<any>(channel.messages)) expect(resolve(message.$ref).payload).toBeDefined();
    }
    expect(Object.keys(doc.operations)).toHaveLength(addresses.length);
    for (const [id, operation] of Object.entries<any>(doc.operations)) {
      expect(operation.action, id).toBe('receive');
      const channelRef: string = operation.channel.$ref;
      const channel = resolve(channelRef);
      // An operation's messages must be messages of its channel (an AsyncAPI 3.0 rule).
      for (const message of operation.messages) expect(message.$ref.startsWith(`${channelRef}/messages/`), message.$ref).toBe(true);
      expect(operation.messages.map((m: any) => resolve(resolve(m.$ref).$ref))).toEqual(Object.values<any>(channel.messages).map((m) => resolve(m.$ref)));
    }
  });

  it('gives every message an Avro payload, a key, headers, and an example that is a value of the payload schema', () => {
    const messages = Object.entries<any>(doc.components.messages);
    expect(messages.map(([name]) => name)).toEqual(builtinCatalog().events.map((e) => e.name));
    for (const [name, message] of messages) {
      const payload = resolve(message.payload.$ref);
      expect(payload.schemaFormat).toBe(AVRO_FORMAT);
      const type = avro.Type.forSchema(payload.schema);
      expect(message.bindings.kafka.key.type).toBe('object');
      expect(message.headers.required).toContain('banyan.event.type');
      expect(message.examples.length).toBeGreaterThan(0);
      for (const example of message.examples) {
        // Avro's JSON encoding of the example, read with the payload schema: a wrong example throws.
        const event = fromAvroValue(type.fromString(JSON.stringify(example.payload)) as Record<string, unknown>);
        expect(event.type, name).toBe(name);
        expect(example.headers['banyan.event.type']).toBe(name);
      }
    }
  });
});
