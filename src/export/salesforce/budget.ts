import type { ApiUsage } from '../../clients/salesforce/limits';

export type BudgetState = 'ok' | 'slowing' | 'paused';

/**
 * The sink's share of the org's daily API requests, from the usage Salesforce reports in
 * `Sforce-Limit-Info` on every answer: below `slowFrom × share` the sink goes at full speed, then
 * slows, and at `share` it pauses until the org's usage falls (a rolling 24 hours) or the limit
 * rises. Pure: the sink feeds it the usage and asks what to do.
 */
export class ApiBudget {
  private usage: ApiUsage | null = null;

  constructor(private readonly share: number, private readonly slowFrom: number) {}

  observe(usage: ApiUsage | null): void {
    if (usage) this.usage = usage;
  }

  get state(): BudgetState {
    if (!this.usage || this.usage.max <= 0) return 'ok';
    const used = this.usage.used / this.usage.max;
    if (used >= this.share) return 'paused';
    return used >= this.share * this.slowFrom ? 'slowing' : 'ok';
  }

  /** For status: the org's usage and what the sink makes of it. */
  details(): { state: BudgetState; used: number | null; max: number | null; share: number } {
    return { state: this.state, used: this.usage?.used ?? null, max: this.usage?.max ?? null, share: this.share };
  }
}
