import { z } from 'zod';
import { bool, identifier, positiveInt, sourceCommon } from '../../runtime/config/primitives';

/** The changelog source's section of the configuration (one per legacy table). */
export const changelogSourceSchema = z.strictObject({
  ...sourceCommon,
  type: z.literal('changelog'),
  database: identifier.describe('a key of `databases`'),
  table: z.string().min(1).describe('the legacy table, optionally schema-qualified. Example: dbo.Users'),
  snapshot: bool.default(true).describe('emit the rows that already exist once, before the changes'),
  retentionHours: z.coerce.number().positive().default(24).describe('changelog rows already in Kafka are deleted after this long'),
  pruneIntervalMs: positiveInt.default(60_000).describe('how often committed changelog rows are pruned'),
  tombstonesOnDelete: bool
    .default(true)
    .describe('follow each delete with a tombstone (same key, null value), so a compacted topic forgets the key (Debezium’s tombstones.on.delete)'),
  invalidDates: z
    .enum(['dead-letter', 'null'])
    .default('dead-letter')
    .describe('a date/timestamp that is no calendar date (MySQL zero or invalid date, PostgreSQL infinity): dead-letter the row, or write null in a nullable column and name it in the banyan.nulled header (docs/import.md)'),
  autoMigrate: bool
    .default(false)
    .describe('when the table’s columns no longer match its changelog triggers (ALTER TABLE … ADD COLUMN), recreate them at once, as `banyan migrate` would, instead of only reporting it'),
  schemaCheckIntervalMs: positiveInt
    .default(10_000)
    .describe('while no changes arrive, how often the table is compared with its changelog triggers (every batch of changes is compared anyway)'),
});


export type ChangelogSourceConfig = z.infer<typeof changelogSourceSchema>;

/** The topic a changelog source writes: its `topic`, or `legacy.<database key>.<table as written>`. */
export function changelogTopic(source: ChangelogSourceConfig): string {
  return source.topic ?? `legacy.${source.database}.${source.table}`;
}
