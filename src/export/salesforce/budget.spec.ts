import { describe, expect, it } from 'vitest';
import { ApiBudget } from './budget';

describe('ApiBudget', () => {
  it('goes at full speed below slowFrom × share, slows up to the share, pauses at it', () => {
    const budget = new ApiBudget(0.5, 0.9);
    expect(budget.state).toBe('ok');
    budget.observe({ used: 449, max: 1000 });
    expect(budget.state).toBe('ok');
    budget.observe({ used: 450, max: 1000 });
    expect(budget.state).toBe('slowing');
    budget.observe({ used: 500, max: 1000 });
    expect(budget.state).toBe('paused');
    expect(budget.details()).toEqual({ state: 'paused', used: 500, max: 1000, share: 0.5 });
    // The usage falls (a rolling day) or the limit rises: going again.
    budget.observe({ used: 500, max: 5000 });
    expect(budget.state).toBe('ok');
  });

  it('keeps the last usage when an answer carries none', () => {
    const budget = new ApiBudget(0.5, 0.9);
    budget.observe({ used: 600, max: 1000 });
    budget.observe(null);
    expect(budget.state).toBe('paused');
  });
});
