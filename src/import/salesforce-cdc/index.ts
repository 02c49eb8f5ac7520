import { SalesforceClient, type SalesforceClientOptions } from '../../clients/salesforce/client';
import type { SalesforceConfig } from '../../runtime/config';
import type { SalesforceCdcSourceConfig } from './config';
import type { Logger } from '../../runtime/logger';
import type { CdcOptions } from './config';
import { SalesforceCdcSource, type EchoFingerprints } from './source';

export { SalesforceCdcSource, type CdcSourceStats } from './source';
export { changeEventChannel } from './config';
export { type CdcOptions } from './config';
export { SALESFORCE_CHANGE_SCHEMA, SALESFORCE_KEY_SCHEMA, type SalesforceChangeValue } from './schema';

/**
 * A CDC source from the parsed config. `client` may be shared by every Salesforce component of the
 * process (one login, one API-call count); without one, the source gets its own.
 */
export function createSalesforceCdcSource(
  salesforce: SalesforceConfig,
  source: SalesforceCdcSourceConfig,
  deps: { logger: Logger; client?: SalesforceClient; written?: EchoFingerprints; clientOptions?: Omit<SalesforceClientOptions, 'logger'>; options?: Partial<CdcOptions> },
): SalesforceCdcSource {
  const client = deps.client ?? new SalesforceClient(salesforce, { logger: deps.logger.child({ component: 'salesforce-client' }), ...deps.clientOptions });
  return new SalesforceCdcSource(source, {
    client,
    logger: deps.logger,
    callOptionsClient: salesforce.callOptionsClient,
    ...(deps.written ? { written: deps.written } : {}),
    ...(deps.options ? { options: deps.options } : {}),
  });
}
