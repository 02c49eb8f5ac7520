/** One benchmark's figures: printed as a table for people and as one JSON line for machines. */
export type BenchResult = { bench: string } & Record<string, string | number | Array<Record<string, number>>>;

export function printResult(result: BenchResult, json: boolean, out: (line: string) => void = console.log): void {
  if (!json) {
    const width = Math.max(...Object.keys(result).map((k) => k.length));
    out('');
    for (const [key, value] of Object.entries(result)) out(`${key.padEnd(width)}  ${formatValue(value)}`);
  }
  // The last line is always the JSON, so scripts can `tail -1`.
  out(JSON.stringify(result));
}

/** A list of runs shows as their rates, "31227 / 32240 / 33551 rows/s". */
function formatValue(value: BenchResult[string]): string {
  if (!Array.isArray(value)) return String(value);
  if (value.length === 0) return '-';
  return value.every((run) => typeof run.rows_per_s === 'number') ? `${value.map((run) => run.rows_per_s).join(' / ')} rows/s` : JSON.stringify(value);
}

/** The middle value; the mean of the two middle ones for an even count. */
export function median(values: number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
