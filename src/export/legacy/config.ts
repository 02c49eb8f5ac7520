import { z } from 'zod';
import type { RowMapping } from '../../core';
import { identifier, positiveInt } from '../../runtime/config/primitives';
import { salesforceSinkSchema } from '../salesforce/config';

const scalar = z.union([z.string(), z.number(), z.boolean()]);

/**
 * The legacy sink's section of the configuration (`sinks:` entries of `type: legacy`): which
 * transform's mapping it writes back, where, and what it does with deletes and rows it cannot
 * insert yet. docs/export-legacy.md describes each choice.
 */
export const legacySinkSchema = z.strictObject({
  name: identifier.describe('unique name of this sink; names it in logs, status, dead letters, its consumer group and its offsets'),
  type: z.literal('legacy'),
  mapping: identifier.describe('the declarative transform whose mapping is written back (its events become its table’s rows)'),
  database: identifier
    .optional()
    .describe('a key of `databases`; default: the database of the changelog source that feeds the mapping’s input topic'),
  table: z.string().min(1).optional().describe('the legacy table; default: that source’s table'),
  onDelete: z
    .union([
      z.literal('row'),
      z.strictObject({
        softDelete: z.strictObject({
          column: z.string().min(1).describe('the column that marks a row deleted'),
          value: scalar.describe('the value written into it'),
        }),
      }),
    ])
    .default('row')
    .describe('what the row entity’s deleted event does: delete the row, or mark it in a soft-delete column. Other blocks’ deleted events null their columns'),
  missingRow: z
    .strictObject({
      waitMs: z.coerce
        .number()
        .int()
        .min(0)
        .default(30_000)
        .describe('how long an event for a row that does not exist, and that lacks a value for one of its NOT NULL columns, waits for the events that complete it; then it is dead-lettered (0: at once)'),
    })
    .prefault({}),
  partitionsConsumedConcurrently: positiveInt.default(6).describe('input partitions written at the same time, each batch in its own database transaction'),
});

export type LegacySinkConfig = z.infer<typeof legacySinkSchema>;

export const sinkSchema = z.discriminatedUnion('type', [legacySinkSchema, salesforceSinkSchema]);
export const sinksSchema = z.array(sinkSchema).default([]);
export type SinkConfig = z.infer<typeof sinkSchema>;

/** Where a legacy sink writes and what: resolved across the sections (the transform, its source). */
export interface LegacySinkTarget {
  mapping: RowMapping;
  database: string;
  table: string;
  /** The domain topics its events are on. */
  topics: string[];
}

