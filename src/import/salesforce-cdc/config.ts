import type { SalesforceCdcSourceConfig } from '../../runtime/config';

/**
 * The CDC source's options; their descriptions and defaults live in the config schema
 * (`salesforceCdcSourceSchema`), where they are validated once at start.
 */
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
