import type avro from 'avsc';
import { domainAvroType } from './avro';
import type { EventCatalog } from './catalog';
import { fromAvroValue } from './codec';
import type { DomainEvent } from './event';
import { schemaById, type RegistryOptions } from './registry';

/**
 * Reads Confluent-framed domain records (magic byte 0, schema id, Avro body). The writer schema is
 * fetched by id once; a topic the catalog knows is read through the catalog's own schema (Avro
 * schema resolution), so a consumer sees the fields it was built with: a field a newer writer added
 * is left out, one an older writer lacked is null. An event type the catalog does not know yet
 * cannot be resolved and is read with the writer's schema alone (its `type` tells it apart).
 */
export class DomainDecoder {
  private readonly readers = new Map<string, Promise<(body: Buffer) => unknown>>();

  constructor(
    private readonly registry: string | RegistryOptions,
    private readonly catalog: EventCatalog,
  ) {}

  /** The event in a framed value. */
  async event(topic: string, buffer: Buffer): Promise<DomainEvent> {
    return fromAvroValue((await this.read(topic, 'value', buffer)) as Record<string, unknown>);
  }

  /** The key fields in a framed key. */
  async key(topic: string, buffer: Buffer): Promise<Record<string, string>> {
    return { ...(await this.read(topic, 'key', buffer)) as Record<string, string> };
  }

  private async read(topic: string, part: 'key' | 'value', buffer: Buffer): Promise<unknown> {
    if (buffer.length < 5 || buffer.readUInt8(0) !== 0) throw new Error(`${topic} ${part}: not in the Confluent wire format (magic byte 0)`);
    const id = buffer.readInt32BE(1);
    const cacheKey = `${topic}\u0000${part}\u0000${id}`;
    let reader = this.readers.get(cacheKey);
    if (!reader) {
      reader = this.readerFor(topic, part, id);
      reader.catch(() => this.readers.delete(cacheKey));
      this.readers.set(cacheKey, reader);
    }
    return (await reader)(buffer.subarray(5));
  }

  private async readerFor(topic: string, part: 'key' | 'value', id: number): Promise<(body: Buffer) => unknown> {
    const writer = domainAvroType(await schemaById(this.registry, id));
    if (!this.catalog.topics().includes(topic)) return (body) => writer.fromBuffer(body);
    const own: avro.Type = this.catalog.types(topic)[part];
    let resolver: ReturnType<avro.Type['createResolver']>;
    try {
      resolver = own.createResolver(writer);
    } catch {
      return (body) => writer.fromBuffer(body);
    }
    return (body) => own.fromBuffer(body, resolver, true);
  }
}
