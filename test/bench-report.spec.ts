import { describe, expect, it } from 'vitest';
import { median, printResult } from '../bench/report';

describe('bench report', () => {
  it('takes the middle of an odd count and the mean of the two middle values of an even one, whatever the order', () => {
    expect(median([33_551, 31_227, 32_240])).toBe(32_240);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(() => median([])).toThrow('median of nothing');
  });

  it('prints the runs as their rates in the table and every run in the JSON line, last', () => {
    const lines: string[] = [];
    const runs = [
      { seconds: 6.2, rows_per_s: 32_258, transactions: 40, dead_letters: 0 },
      { seconds: 6.4, rows_per_s: 31_250, transactions: 40, dead_letters: 0 },
    ];
    printResult({ bench: 'import', median_rows_per_s: 31_754, runs, warmup: [] }, false, (line) => lines.push(line));
    expect(lines).toContain('runs               32258 / 31250 rows/s');
    expect(lines).toContain('warmup             -');
    expect(JSON.parse(lines.at(-1)!)).toEqual({ bench: 'import', median_rows_per_s: 31_754, runs, warmup: [] });
  });
});
