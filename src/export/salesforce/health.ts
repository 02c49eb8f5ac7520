import { errorMessage, type CheckResult, type HealthCheck } from '../../core';
import type { SalesforceConfig } from '../../runtime/config';
import type { SalesforceSinkTarget } from './config';
import { objectProblems, type DescribedField } from './fit';

/** `banyan doctor`'s row for one Salesforce sink: its object has the fields its mapping writes and an external id to upsert by. */
export class SalesforceSinkHealthCheck implements HealthCheck {
  readonly name: string;

  constructor(
    sinkName: string,
    private readonly target: SalesforceSinkTarget,
    private readonly salesforce: SalesforceConfig,
  ) {
    this.name = `sink:${sinkName}`;
  }

  async check(): Promise<CheckResult> {
    const { mapping, object, externalIdField } = this.target;
    try {
      // jsforce alone takes about a second to load: only a config with a Salesforce sink pays for it.
      const { connectSalesforce } = await import('../../clients/salesforce/session');
      const describe = await (await connectSalesforce(this.salesforce)).describe(object);
      const problems = objectProblems(mapping, object, describe.fields as unknown as DescribedField[], externalIdField);
      if (problems.length) return { name: this.name, ok: false, detail: `mapping "${mapping.name}" does not fit ${object}: ${problems.join('; ')}` };
      return { name: this.name, ok: true, detail: `${object} (upsert by ${externalIdField}) fits mapping "${mapping.name}"` };
    } catch (error) {
      return { name: this.name, ok: false, detail: `${object}: ${errorMessage(error)}` };
    }
  }
}
