import { describe, expect, it } from 'vitest';
import { Headers } from '../core';
import { deadLetterMessage } from './dead-letters';

describe('deadLetterMessage', () => {
  const letter = { source: 'orders', reason: 'bad date', stage: 'processing' as const, code: 'INVALID_DATE', key: '0x07', payload: { id: 1n } };

  it('names the topic the record was meant for, so a replay can send it back there', () => {
    const message = deadLetterMessage({ ...letter, topic: 'legacy.app.public.orders' }, Date.UTC(2026, 0, 1));
    expect(message.headers).toEqual({
      [Headers.deadLetterReason]: 'bad date',
      [Headers.deadLetterStage]: 'processing',
      [Headers.deadLetterSource]: 'orders',
      [Headers.deadLetterCode]: 'INVALID_DATE',
      [Headers.deadLetterTopic]: 'legacy.app.public.orders',
    });
    expect(message.key).toBe('0x07');
    expect(JSON.parse(message.value)).toEqual({
      source: 'orders', reason: 'bad date', stage: 'processing', code: 'INVALID_DATE', at: '2026-01-01T00:00:00.000Z', payload: { id: '1' },
    });
  });

  it('leaves the topic header out when no topic is known', () => {
    expect(deadLetterMessage(letter).headers).not.toHaveProperty(Headers.deadLetterTopic);
  });
});
