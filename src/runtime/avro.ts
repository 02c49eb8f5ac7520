import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { BanyanError, errorMessage } from '../core';
import type { RuntimeConfig } from './config';
import { grown } from './record-batch';
import { registerAvro, registryAuthHeaders } from './registry';

/**
 * Avro longs as BigInt: BIGINT columns and nanosecond timestamps exceed 2^53, and a sync bridge
 * must not round them. Every `long` in a Banyan schema reads and writes as BigInt.
 */
const longBytes = Buffer.alloc(8);
const BigIntLongBase = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  // avsc packs these 8 bytes into the output at once, so one buffer serves every long.
  toBuffer: (n: bigint) => {
    longBytes.writeBigInt64LE(n);
    return longBytes;
  },
  fromJSON: (n: number | string) => BigInt(n),
  toJSON: (n: bigint) => Number(n),
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

interface Tap {
  buf: Buffer;
  pos: number;
  writeLong(n: number): void;
  readLong(): number;
}
const SAFE = 2n ** 52n;
/**
 * avsc writes a custom long by packing its 8 bytes; a BigInt within ±2^52 is written by avsc’s own
 * number path instead (the same zigzag varint bytes, measured 3× faster). `_write` and
 * `Tap.writeLong` are avsc 5.7 internals; avro.spec.ts pins the bytes.
 */
const BigIntLong: avro.Type = Object.create(BigIntLongBase, {
  _write: {
    value(this: { _write(tap: Tap, n: unknown): void }, tap: Tap, n: unknown) {
      if (typeof n === 'bigint' && n <= SAFE && n >= -SAFE) tap.writeLong(Number(n));
      else (BigIntLongBase as unknown as { _write(tap: Tap, n: unknown): void })._write.call(this, tap, n);
    },
  },
  // Reading likewise: a varint of at most 7 bytes holds a zigzag value below 2^49, which avsc's
  // number path reads exactly, without the 8-byte buffer its custom-long path makes per value.
  _read: {
    value(this: unknown, tap: Tap): unknown {
      const { buf, pos } = tap;
      let end = pos;
      while (end - pos < 7 && buf[end]! & 0x80) end++;
      if (end - pos < 7) return BigInt(tap.readLong());
      return (BigIntLongBase as unknown as { _read(tap: Tap): unknown })._read.call(this, tap);
    },
  },
});

export function avroType(schema: object): avro.Type {
  return avro.Type.forSchema(schema as avro.Schema, {
    registry: { long: BigIntLong },
    // A long with a logical type (timestamp-micros…) is built from its object form, which the
    // registry override does not reach: the hook does.
    typeHook: (s) => (typeof s === 'object' && (s as { type?: unknown }).type === 'long' ? BigIntLong : undefined),
  });
}

/** Avro names allow [A-Za-z0-9_] only; legacy columns may hold spaces or dashes. */
export function avroName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[A-Za-z_]/.test(cleaned) ? cleaned : `_${cleaned}`;
}

/**
 * Encodes into a buffer of its own that the next call overwrites: the view it returns must be
 * copied out (e.g. into a record batch) before the encoder runs again.
 */
export type TransientEncoder = (value: unknown) => Buffer;

/**
 * Encodes values in the Confluent wire format (magic byte 0, 4-byte schema id, Avro body) after
 * registering each schema once per subject. Encoding is local: no registry call per record.
 */
export class AvroEncoder {
  /** By subject, then by schema object: sources hand the same schema object to every record. */
  private readonly registered = new Map<string, WeakMap<object, Promise<{ id: number; type: avro.Type }>>>();

  constructor(private readonly registry: SchemaRegistry) {}

  /** Registers `schema` under `subject` (once per schema object) and returns a sync encoder. */
  async encoderFor(subject: string, schema: object): Promise<TransientEncoder> {
    const { id, type } = await this.register(subject, schema);
    return framed(id, type);
  }

  /** As encoderFor, for values the caller encoded itself: frames an Avro body (copied, into a reused buffer). */
  async framerFor(subject: string, schema: object): Promise<(body: Uint8Array) => Buffer> {
    const { id } = await this.register(subject, schema);
    let buf: Buffer = Buffer.alloc(4096);
    buf.writeInt32BE(id, 1);
    return (body) => {
      if (body.length + 5 > buf.length) buf = grown(buf, 5, body.length);
      buf.set(body, 5);
      return buf.subarray(0, body.length + 5);
    };
  }

  private register(subject: string, schema: object): Promise<{ id: number; type: avro.Type }> {
    let bySchema = this.registered.get(subject);
    if (!bySchema) this.registered.set(subject, (bySchema = new WeakMap()));
    let registered = bySchema.get(schema);
    if (!registered) {
      registered = registerAvro(this.registry, subject, schema).then((id) => ({ id, type: avroType(schema) }));
      registered.catch(() => bySchema.delete(schema));
      bySchema.set(schema, registered);
    }
    return registered;
  }
}

/** Magic byte 0, the schema id, then the Avro body, written into one growing buffer. */
function framed(id: number, type: avro.Type): TransientEncoder {
  let buf: Buffer = Buffer.alloc(4096);
  buf.writeInt32BE(id, 1);
  return (value) => {
    let end = type.encode(value, buf, 5);
    if (end < 0) {
      // avsc answers a too-small buffer with minus the bytes it lacked.
      buf = grown(buf, 5, buf.length - end - 5);
      end = type.encode(value, buf, 5);
    }
    return buf.subarray(0, end);
  };
}

/** Decodes Confluent-framed Avro with BigInt longs, fetching each writer schema by id once. */
export class AvroDecoder {
  /** What decodeKnown answers for a schema id not fetched yet: decode (which waits for it) instead. */
  static readonly NOT_FETCHED: unique symbol = Symbol('schema not fetched yet');
  /** Each schema id's reader: the reader once fetched, the fetch while it is under way. */
  private readonly types = new Map<number, avro.Type | Promise<avro.Type>>();

  /** `typeFor` builds the reader of a writer schema: BigInt longs by default, or e.g. readerType (logical types as text). */
  constructor(
    private readonly config: RuntimeConfig['schemaRegistry'],
    private readonly typeFor: (schema: object) => avro.Type = avroType,
  ) {}

  async decode(buffer: Buffer): Promise<unknown> {
    const id = schemaId(buffer);
    let type = this.types.get(id);
    if (!type) {
      const fetching = this.fetchType(id).then((fetched) => {
        this.types.set(id, fetched);
        return fetched;
      });
      fetching.catch(() => this.types.delete(id));
      this.types.set(id, (type = fetching));
    }
    return (await type).fromBuffer(buffer.subarray(5));
  }

  /**
   * As decode, at once, when the writer schema was fetched already (the usual case: a topic has a
   * schema or a few); AvroDecoder.NOT_FETCHED otherwise. Throws as decode does for bytes that are
   * not Confluent-framed or not Avro of their schema.
   */
  decodeKnown(buffer: Buffer): unknown {
    const type = this.types.get(schemaId(buffer));
    return type && !(type instanceof Promise) ? type.fromBuffer(buffer.subarray(5)) : AvroDecoder.NOT_FETCHED;
  }

  private async fetchType(id: number): Promise<avro.Type> {
    const headers = registryAuthHeaders(this.config);
    const response = await fetch(`${this.config.url.replace(/\/$/, '')}/schemas/ids/${id}`, { headers }).catch((error: unknown) => {
      throw new BanyanError(`schema id ${id}: the registry did not answer: ${errorMessage((error as { cause?: unknown }).cause ?? error)}`, {
        retriable: true,
        stage: 'receiving',
        code: 'REGISTRY_UNREACHABLE',
        cause: error,
      });
    });
    if (!response.ok) {
      // An unknown id is the record's fault; a registry that fails or refuses us is an outage to wait out.
      throw new BanyanError(`schema id ${id}: the registry answered HTTP ${response.status}`, {
        retriable: response.status >= 500 || response.status === 401 || response.status === 403 || response.status === 429,
        stage: 'receiving',
        code: `REGISTRY_HTTP_${response.status}`,
      });
    }
    const { schema } = (await response.json()) as { schema: string };
    return this.typeFor(JSON.parse(schema) as object);
  }
}

/** The schema id of Confluent-framed bytes (magic byte 0, then the id). */
function schemaId(buffer: Buffer): number {
  if (buffer.length < 5 || buffer.readUInt8(0) !== 0) throw new Error('not in the Confluent wire format (magic byte 0)');
  return buffer.readInt32BE(1);
}
