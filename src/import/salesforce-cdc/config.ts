import { z } from 'zod';
import { positiveInt, sourceCommon } from '../../runtime/config/primitives';

/** The Salesforce CDC source's section of the configuration (one per SObject). */
export const salesforceCdcSourceSchema = z.strictObject({
  ...sourceCommon,
  type: z.literal('salesforce-cdc'),
  object: z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'an SObject API name such as Contact'),
  channel: z
    .string()
    .regex(/^\/data\/[A-Za-z][A-Za-z0-9_]*$/, 'a Change Data Capture channel such as /data/ContactChangeEvent or /data/BanyanContacts__chn')
    .optional()
    .describe(
      'the channel to subscribe to (default /data/<Object>ChangeEvent): a custom channel (/data/Name__chn) or /data/ChangeEvents carrying the object, e.g. for enriched fields; events of other entities on it are skipped and counted',
    )
    .meta({ examples: ['/data/BanyanContacts__chn'] }),
  replayFrom: z
    .union([z.literal(-1), z.literal(-2)])
    .default(-1)
    .describe('with no stored replayId: -1 = changes from now on (Salesforce’s default), -2 = every event still retained (72 h)'),
  replayExpiredPolicy: z
    .enum(['reread', 'latest', 'fail'])
    .default('reread')
    .describe(
      'the stored replayId is no longer retained: reread = re-read records modified since the last commit time (bounded) as reconciled, then go on; latest = go on with new events only; fail = stop until an operator decides. Always logged at error level and counted',
    ),
  rereadMaxRecords: positiveInt.default(50_000).describe('most records one re-read (expired replayId, GAP_OVERFLOW) may emit; beyond it the re-read is cut short, loudly'),
  echoWindowMs: positiveInt
    .default(600_000)
    .describe('how long after a Banyan sink wrote a record a change carrying exactly those values is taken for its echo (the fingerprint rule, docs/export-salesforce.md)'),
  rereadLookbackMs: z.coerce.number().int().min(0).default(60_000).describe('re-reads start this long before the last known commit time'),
  gapWindowMs: z.coerce.number().int().min(0).default(1_000).describe('GAP_* events: how long record ids are collected before they are read'),
  reconcileBatchSize: z.coerce.number().int().min(1).max(200).default(200).describe('ids per `WHERE Id IN (…)` query when reconciling GAP_* events'),
  queueCapacity: z.coerce.number().int().min(2).default(10_000).describe('events buffered between polls; when full, the stream pauses and resumes from the last buffered replayId'),
  subscribeTimeoutMs: positiveInt.default(30_000).describe('how long a subscription may take to be acknowledged'),
}).superRefine((source, ctx) => {
  // A single-entity channel carries one object only: another object's would never deliver this source's changes.
  const single = /^\/data\/(.+?)(?:__)?ChangeEvent$/.exec(source.channel ?? '');
  if (single && source.channel !== changeEventChannel(source.object)) {
    ctx.addIssue({
      code: 'custom',
      path: ['channel'],
      message: `${source.channel} carries only ${single[1]} changes, not ${source.object}; use ${changeEventChannel(source.object)}, /data/ChangeEvents or a custom channel (/data/Name__chn) with a ${source.object} member`,
    });
  }
});


export type SalesforceCdcSourceConfig = z.infer<typeof salesforceCdcSourceSchema>;

/** `/data/ContactChangeEvent`; custom objects drop the `c` of `__c` (`/data/Invoice__ChangeEvent`). */
export function changeEventChannel(object: string): string {
  return `/data/${object.endsWith('__c') ? object.slice(0, -1) : object}ChangeEvent`;
}

/** The topic a source writes: its `topic`, or `salesforce.<Object>`. */
export function cdcTopic(config: Pick<SalesforceCdcSourceConfig, 'object' | 'topic'>): string {
  return config.topic ?? `salesforce.${config.object}`;
}

/** The channel a source subscribes to: its `channel`, or its object's own. */
export function sourceChannel(config: Pick<SalesforceCdcSourceConfig, 'object' | 'channel'>): string {
  return config.channel ?? changeEventChannel(config.object);
}

/** The CDC source's options, as the source reads them from its validated section above. */
export const CDC_OPTION_KEYS = [
  'replayFrom',
  'replayExpiredPolicy',
  'rereadMaxRecords',
  'rereadLookbackMs',
  'gapWindowMs',
  'reconcileBatchSize',
  'queueCapacity',
  'subscribeTimeoutMs',
] as const;

export type CdcOptions = Pick<SalesforceCdcSourceConfig, (typeof CDC_OPTION_KEYS)[number]>;

export function cdcOptions(config: SalesforceCdcSourceConfig, overrides: Partial<CdcOptions> = {}): CdcOptions {
  return { ...(Object.fromEntries(CDC_OPTION_KEYS.map((k) => [k, config[k]])) as CdcOptions), ...overrides };
}
