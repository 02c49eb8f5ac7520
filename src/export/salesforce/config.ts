import { z } from 'zod';
import type { RowMapping } from '../../core';
import { identifier, positiveInt } from '../../runtime/config/primitives';

const ms = z.coerce.number().int().min(0);

/**
 * The Salesforce sink's section of the configuration (`sinks:` entries of `type: salesforce`):
 * which transform's mapping it writes back into Salesforce, how it batches its calls, when it
 * turns to Bulk API 2.0, and how much of the org's daily API budget it may use.
 * docs/export-salesforce.md describes each choice.
 */
export const salesforceSinkSchema = z.strictObject({
  name: identifier.describe('unique name of this sink; names it in logs, status, dead letters, its consumer group and its state topics'),
  type: z.literal('salesforce'),
  mapping: identifier.describe('the transform (reading Salesforce Change Data Capture) whose mapping is written back; its code mapping must have a write side'),
  object: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9_]*$/)
    .optional()
    .describe('the SObject written; default: the object of the salesforce-cdc source that feeds the mapping’s input topic'),
  lingerMs: ms.default(200).describe('how long a call waits for more records when the stream is slow (a fuller call, fewer API calls)'),
  maxRecordsPerCall: z.coerce.number().int().min(1).max(200).default(200).describe('records per sObject Collections upsert (Salesforce takes at most 200)'),
  bulk: z
    .strictObject({
      threshold: z.coerce.number().int().min(0).default(2000).describe('records pending at once from which they go through one Bulk API 2.0 ingest job rather than Collections calls (0: never)'),
      pollMs: positiveInt.default(1000).describe('first wait before asking a job’s state; doubles up to maxPollMs'),
      maxPollMs: positiveInt.default(10_000),
    })
    .prefault({}),
  apiBudget: z
    .strictObject({
      share: z.coerce.number().gt(0).max(1).default(0.5).describe('the share of the org’s daily API requests (Sforce-Limit-Info) this sink may bring the org to; at it the sink pauses'),
      slowFrom: z.coerce.number().gt(0).max(1).default(0.9).describe('from this fraction of the share on, the sink slows down (waits lingerMs × 10 between calls)'),
      recheckMs: positiveInt.default(60_000).describe('while paused, how often it asks the org’s usage again (one GET /limits call)'),
    })
    .prefault({}),
  retry: z
    .strictObject({
      attempts: positiveInt.default(8).describe('tries of a record Salesforce answered with a retriable error (UNABLE_TO_LOCK_ROW…), the first included'),
      minMs: positiveInt.default(500),
      maxMs: positiveInt.default(30_000),
    })
    .prefault({}),
  partitionsConsumedConcurrently: positiveInt.default(32).describe('input partitions read at the same time; their events share the calls'),
});

export type SalesforceSinkConfig = z.infer<typeof salesforceSinkSchema>;

/** Where a Salesforce sink writes and what: resolved across the sections (the transform, its source). */
export interface SalesforceSinkTarget {
  mapping: RowMapping;
  object: string;
  /** The external id field records are upserted by (the mapping's key column). */
  externalIdField: string;
  /** The domain topics its events are on. */
  topics: string[];
}
