/** One benchmark's figures: printed as a table for people and as one JSON line for machines. */
export type BenchResult = { bench: string } & Record<string, string | number>;

export function printResult(result: BenchResult, json: boolean, out: (line: string) => void = console.log): void {
  if (!json) {
    const width = Math.max(...Object.keys(result).map((k) => k.length));
    out('');
    for (const [key, value] of Object.entries(result)) out(`${key.padEnd(width)}  ${value}`);
  }
  // The last line is always the JSON, so scripts can `tail -1`.
  out(JSON.stringify(result));
}
