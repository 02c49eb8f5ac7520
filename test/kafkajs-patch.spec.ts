import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

/** kafkajs's read_committed filter, as patches/kafkajs+2.2.4.patch leaves it (docs/development.md). */
const filterAbortedMessages = createRequire(import.meta.url)('kafkajs/src/consumer/filterAbortedMessages') as (input: {
  messages: Message[];
  abortedTransactions: Array<{ producerId: string; firstOffset: string }>;
}) => Message[];

interface Message {
  offset: string;
  key: Buffer | null;
  batchContext: { producerId: string; inTransaction: boolean };
}

const ABORT = Buffer.from([0, 0, 0, 0]);
const record = (offset: number, producerId: string, key: Buffer | null = Buffer.from('k')): Message => ({
  offset: String(offset),
  key,
  batchContext: { producerId, inTransaction: true },
});

describe('kafkajs filterAbortedMessages (patched)', () => {
  it('drops the records of aborted transactions listed in abort order, not first-offset order', () => {
    // a@0 b@1 a@2 b@3, b aborted (marker @4) before a (marker @5), then c committed @6.
    const messages = [record(0, 'a'), record(1, 'b'), record(2, 'a'), record(3, 'b'), record(4, 'b', ABORT), record(5, 'a', ABORT), record(6, 'c')];
    const kept = filterAbortedMessages({ messages, abortedTransactions: [{ producerId: 'b', firstOffset: '1' }, { producerId: 'a', firstOffset: '0' }] });
    expect(kept.map((m) => m.offset)).toEqual(['4', '5', '6']);
  });

  it('takes in every transaction begun before a fetch that starts inside them', () => {
    // The fetch starts at 10, inside a (from 2) and b (from 5), both aborted later.
    const messages = [record(10, 'b'), record(11, 'a'), record(12, 'd'), record(13, 'a', ABORT), record(14, 'b', ABORT)];
    const kept = filterAbortedMessages({ messages, abortedTransactions: [{ producerId: 'a', firstOffset: '2' }, { producerId: 'b', firstOffset: '5' }] });
    expect(kept.map((m) => m.offset)).toEqual(['12', '13', '14']);
  });
});
