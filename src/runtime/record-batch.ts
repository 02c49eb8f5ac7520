/**
 * Kafka's record format (magic 2), written directly into one buffer per topic partition.
 *
 * kafkajs builds each record through its generic protocol Encoder (a zero-filled 511-byte buffer
 * per record and per header, 64-bit varints through BigInt) and groups messages per partition by
 * copying the growing array for every message: ~50 µs a record on our machine, more than the rest
 * of the pipeline together. A source's records are therefore encoded here, once, and handed to
 * kafkajs as finished record batches (see encoded-produce.ts): kafkajs still owns connections,
 * metadata, transactions, retries and responses.
 *
 * Layout (https://kafka.apache.org/documentation/#recordbatch): a 61-byte batch header, then the
 * records. The header holds the producer id, epoch and sequence, which are known only when the
 * batch is sent, so the writer leaves room for it and `sealBatch` fills it in place.
 */

export const BATCH_HEADER_BYTES = 61;
/** Bytes of the header before the CRC'd part: baseOffset, batchLength, partitionLeaderEpoch, magic, crc. */
const CRC_START = 21;
const TRANSACTIONAL = 0x10;

export type Bytes = Buffer | string | null;

/** Records of one topic partition, appended in order; sealed into one record batch. */
export class RecordSetWriter {
  private buf: Buffer;
  private pos = BATCH_HEADER_BYTES;
  count = 0;
  private readonly headerLengths: number[] = [];
  firstTimestamp = 0;
  maxTimestamp = 0;

  constructor(
    readonly topic: string,
    readonly partition: number,
    initialBytes = 64 * 1024,
  ) {
    this.buf = Buffer.allocUnsafeSlow(Math.max(initialBytes, 256));
  }

  /** Bytes so far, the batch header included. */
  get size(): number {
    return this.pos;
  }

  /**
   * Appends one record and returns its encoded size; a record larger than `room` is not written
   * and its size is returned negated. `headers` values and string keys or values are UTF-8.
   */
  append(key: Bytes, value: Bytes, headers: Readonly<Record<string, string>> | undefined, timestamp: number, room = Infinity): number {
    const timestampDelta = this.count === 0 ? 0 : timestamp - this.firstTimestamp;
    const keyLength = byteLength(key);
    const valueLength = byteLength(value);
    let body =
      1 +
      varintSize(timestampDelta) +
      varintSize(this.count) +
      varintSize(keyLength) +
      Math.max(keyLength, 0) +
      varintSize(valueLength) +
      Math.max(valueLength, 0);
    // Header names and values, and their UTF-8 lengths, measured once for the size and the write.
    const lengths = this.headerLengths;
    let headerCount = 0;
    if (headers) {
      for (const name in headers) {
        const k = utf8Length(name);
        const v = utf8Length(headers[name]!);
        body += varintSize(k) + k + varintSize(v) + v;
        lengths[2 * headerCount] = k;
        lengths[2 * headerCount + 1] = v;
        headerCount++;
      }
    }
    body += varintSize(headerCount);
    const size = varintSize(body) + body;
    if (size > room) return -size;
    if (this.count === 0) {
      this.firstTimestamp = timestamp;
      this.maxTimestamp = timestamp;
    } else if (timestamp > this.maxTimestamp) {
      this.maxTimestamp = timestamp;
    }
    this.ensure(size);
    let p = writeVarint(this.buf, this.pos, body);
    this.buf[p++] = 0; // attributes: unused for records
    p = writeVarint(this.buf, p, timestampDelta);
    p = writeVarint(this.buf, p, this.count);
    p = writeBytes(this.buf, p, key, keyLength);
    p = writeBytes(this.buf, p, value, valueLength);
    p = writeVarint(this.buf, p, headerCount);
    if (headers) {
      let i = 0;
      for (const name in headers) {
        p = writeBytes(this.buf, p, name, lengths[i++]!);
        p = writeBytes(this.buf, p, headers[name]!, lengths[i++]!);
      }
    }
    this.pos = p;
    this.count++;
    return size;
  }

  /** The finished record set: header room and records, ready for `sealBatch` (here or in another thread). */
  finish(): RecordSet {
    const buffer = this.buf.subarray(0, this.pos);
    return { topic: this.topic, partition: this.partition, buffer, count: this.count, firstTimestamp: this.firstTimestamp, maxTimestamp: this.maxTimestamp };
  }

  private ensure(bytes: number): void {
    // Memory of its own (not the shared pool), so that it can be moved to the producer thread.
    if (this.pos + bytes > this.buf.length) this.buf = grown(this.buf, this.pos, bytes, Buffer.allocUnsafeSlow);
  }
}

/** A buffer at least twice as large holding the first `used` bytes of `buf`, with room for `more`. */
export function grown(buf: Buffer, used: number, more: number, alloc: (size: number) => Buffer = Buffer.allocUnsafe): Buffer {
  let length = buf.length * 2;
  while (length < used + more) length *= 2;
  const next = alloc(length);
  buf.copy(next, 0, 0, used);
  return next;
}

/** Records of one topic partition with room for the batch header; plain data, so it can cross threads. */
export interface RecordSet {
  topic: string;
  partition: number;
  /** The batch header's room (BATCH_HEADER_BYTES) followed by `count` records. */
  buffer: Uint8Array;
  count: number;
  firstTimestamp: number;
  maxTimestamp: number;
}

export interface ProducerIdentity {
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  transactional: boolean;
}

/** Fills in the batch header of `set` (in place) and returns the whole record batch. */
export function sealBatch(set: RecordSet, producer: ProducerIdentity): Buffer {
  const b = Buffer.from(set.buffer.buffer, set.buffer.byteOffset, set.buffer.byteLength);
  b.writeBigInt64BE(0n, 0); // baseOffset: assigned by the broker
  b.writeInt32BE(b.length - 12, 8); // batchLength: after baseOffset and this field
  b.writeInt32BE(0, 12); // partitionLeaderEpoch: set by the broker; 0 as kafkajs writes it, so both paths send the same bytes
  b.writeInt8(2, 16); // magic
  b.writeInt16BE(producer.transactional ? TRANSACTIONAL : 0, 21); // no compression, CreateTime
  b.writeInt32BE(set.count - 1, 23); // lastOffsetDelta
  b.writeBigInt64BE(BigInt(set.firstTimestamp), 27);
  b.writeBigInt64BE(BigInt(set.maxTimestamp), 35);
  b.writeBigInt64BE(producer.producerId, 43);
  b.writeInt16BE(producer.producerEpoch, 51);
  b.writeInt32BE(producer.baseSequence, 53);
  b.writeInt32BE(set.count, 57);
  b.writeUInt32BE(crc32c(b, CRC_START), 17);
  return b;
}

/** One record of a set, read back: what a plain kafkajs message carries. */
export interface ReadRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer>;
  timestamp: number;
}

/** The records of `set`, in order; keys, values and header values are views of its memory. */
export function readRecords(set: RecordSet): ReadRecord[] {
  const buf = Buffer.from(set.buffer.buffer, set.buffer.byteOffset, set.buffer.byteLength);
  const at = { pos: BATCH_HEADER_BYTES };
  const bytes = (): Buffer | null => {
    const length = readVarint(buf, at);
    if (length < 0) return null;
    at.pos += length;
    return buf.subarray(at.pos - length, at.pos);
  };
  const records: ReadRecord[] = [];
  for (let i = 0; i < set.count; i++) {
    readVarint(buf, at); // the record's length
    at.pos++; // attributes
    const timestamp = set.firstTimestamp + readVarint(buf, at);
    readVarint(buf, at); // offset delta: the record's place, i
    const key = bytes();
    const value = bytes();
    const headers: Record<string, Buffer> = {};
    for (let h = readVarint(buf, at); h > 0; h--) {
      const name = bytes()!.toString('utf8');
      headers[name] = bytes() ?? Buffer.alloc(0);
    }
    records.push({ key, value, headers, timestamp });
  }
  return records;
}

/** Reads a zigzag varint of a safe integer at `at.pos` and moves past it. */
function readVarint(buf: Buffer, at: { pos: number }): number {
  let z = 0;
  let scale = 1;
  let byte: number;
  do {
    byte = buf[at.pos++]!;
    z += (byte & 0x7f) * scale;
    scale *= 128;
  } while (byte & 0x80);
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

function byteLength(value: Bytes): number {
  if (value === null) return -1;
  return typeof value === 'string' ? utf8Length(value) : value.length;
}

/** A zigzag-varint length (`length`, -1 for null) and the bytes, as Kafka writes keys, values and headers. */
function writeBytes(buf: Buffer, pos: number, value: Bytes, length: number): number {
  const p = writeVarint(buf, pos, length);
  if (value === null) return p;
  if (typeof value === 'string') return length === value.length && length <= 64 ? writeAscii(buf, p, value) : p + buf.write(value, p, length, 'utf8');
  return p + value.copy(buf, p);
}

/** Short ASCII strings (header names and values, keys) byte by byte: cheaper than a call into C++. */
function writeAscii(buf: Buffer, pos: number, value: string): number {
  for (let i = 0; i < value.length; i++) buf[pos++] = value.charCodeAt(i);
  return pos;
}

/** UTF-8 length; for the short ASCII strings most headers are, without a call into C++. */
function utf8Length(value: string): number {
  if (value.length > 64) return Buffer.byteLength(value);
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0x7f) return Buffer.byteLength(value);
  return value.length;
}

/** Size of a zigzag varint (Kafka's varint and varlong) of a safe integer. */
export function varintSize(n: number): number {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  let size = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    size++;
  }
  return size;
}

/** Writes a zigzag varint of a safe integer (timestamp deltas may exceed 32 bits). */
export function writeVarint(buf: Buffer, pos: number, n: number): number {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  if (z < 0x80000000) {
    while (z >= 128) {
      buf[pos++] = (z & 0x7f) | 0x80;
      z >>>= 7;
    }
  } else {
    while (z >= 128) {
      buf[pos++] = (z % 128) | 0x80;
      z = Math.floor(z / 128);
    }
  }
  buf[pos++] = z;
  return pos;
}

const CRC_TABLE = (() => {
  const table = new Int32Array(256 * 4);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c;
  }
  // Slicing by four: table k gives the CRC of a byte followed by k zero bytes.
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 4; k++) table[k * 256 + n] = (table[(k - 1) * 256 + n]! >>> 8) ^ table[table[(k - 1) * 256 + n]! & 0xff]!;
  }
  return table;
})();

/** CRC-32C (Castagnoli), the checksum of a record batch, of `buf` from `start` to its end. */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  const t = CRC_TABLE;
  let crc = -1;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    crc ^= buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    crc = t[768 + (crc & 0xff)]! ^ t[512 + ((crc >>> 8) & 0xff)]! ^ t[256 + ((crc >>> 16) & 0xff)]! ^ t[crc >>> 24]!;
  }
  for (; i < end; i++) crc = t[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/** Kafka's murmur2 (the Java client's `Utils.murmur2`), which its default partitioner hashes keys with. */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  const length = data.length;
  let h = 0x9747b28c ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  // The tail bytes, as Java's switch falls through from case 3 to case 1.
  const tail = length & 3;
  if (tail > 0) {
    if (tail === 3) h ^= data[whole + 2]! << 16;
    if (tail >= 2) h ^= data[whole + 1]! << 8;
    h ^= data[whole]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h;
}

/** The partition Kafka's default partitioner (Java and kafkajs alike) picks for a key. */
export function partitionForKey(key: Uint8Array, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}
