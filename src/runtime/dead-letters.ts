import { Headers, type DeadLetter } from '../core';

/**
 * A dead letter as a Kafka message: the reason in headers (so tools can filter without decoding)
 * and the original input as JSON in the value. BigInt and Buffer values are kept readable.
 */
export function deadLetterMessage(
  letter: DeadLetter,
  now = Date.now(),
): { key: string | null; value: string; headers: Record<string, string> } {
  return {
    key: letter.key ?? null,
    value: JSON.stringify(
      { source: letter.source, reason: letter.reason, stage: letter.stage, code: letter.code ?? null, at: new Date(now).toISOString(), payload: letter.payload },
      jsonSafe,
    ),
    headers: {
      [Headers.deadLetterReason]: letter.reason,
      [Headers.deadLetterStage]: letter.stage,
      [Headers.deadLetterSource]: letter.source,
      ...(letter.code ? { [Headers.deadLetterCode]: letter.code } : {}),
      ...(letter.topic ? { [Headers.deadLetterTopic]: letter.topic } : {}),
      ...(letter.input
        ? {
            [Headers.deadLetterInputTopic]: letter.input.topic,
            [Headers.deadLetterInputPartition]: String(letter.input.partition),
            [Headers.deadLetterInputOffset]: letter.input.offset,
          }
        : {}),
    },
  };
}

export function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return { hex: Buffer.from((value as { data: number[] }).data).toString('hex') };
  }
  return value;
}
