import type { SalesforceClient } from '../../clients/salesforce/client';
import { isSalesforceId } from './event';
import type { ObjectShape } from './fields';

export type Row = Record<string, unknown>;

/** SOQL datetime literal, floored to the second (SOQL's own precision): a re-read may start early, never late. */
export function soqlDateTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** One page of a re-read, and whether the re-read hit its bound. */
export interface RereadPage {
  rows: Row[];
  /** The bound (`maxRecords`) was reached: records modified later than the last row were not read. */
  truncated: boolean;
  done: boolean;
}

/**
 * Reads records through the REST API when the change stream cannot be trusted alone:
 * - GAP_* events name records whose change Salesforce could not describe: they are read by id, in
 *   micro-batches of `WHERE Id IN (…)` through queryAll, so a record deleted meanwhile comes back
 *   with IsDeleted = true (and one purged from the recycle bin does not come back at all);
 * - GAP_OVERFLOW and an expired replayId: records modified since a time are read by
 *   `SystemModstamp`, oldest first, in pages, up to a bound.
 * Every call goes through SalesforceClient under a purpose, so the API calls spent are counted.
 */
export class GapReconciler {
  constructor(
    private readonly client: SalesforceClient,
    private readonly shape: ObjectShape,
    private readonly batchSize: number,
  ) {}

  private select(): string {
    return `SELECT ${this.shape.selectFields.join(', ')} FROM ${this.shape.object}`;
  }

  /** The current rows of `ids` (deleted ones included), by id. Ids not found are absent. */
  async readByIds(ids: string[], purpose: string, signal?: AbortSignal): Promise<Map<string, Row>> {
    const unique = [...new Set(ids)];
    const invalid = unique.find((id) => !isSalesforceId(id));
    if (invalid !== undefined) throw new Error(`not a Salesforce id: ${JSON.stringify(invalid)}`);
    const found = new Map<string, Row>();
    for (let i = 0; i < unique.length; i += this.batchSize) {
      const chunk = unique.slice(i, i + this.batchSize);
      const soql = `${this.select()} WHERE Id IN (${chunk.map((id) => `'${id}'`).join(', ')})`;
      for await (const page of this.client.query<Row>(soql, { purpose, includeDeleted: true, ...(signal ? { signal } : {}) })) {
        for (const row of page.records) found.set(String(row.Id), row);
      }
    }
    // 15-character ids in events match 18-character ids in answers by their first 15 characters.
    for (const id of unique) {
      if (found.has(id)) continue;
      const long = [...found.keys()].find((k) => k.length === 18 && id.length === 15 && k.startsWith(id));
      if (long) found.set(id, found.get(long)!);
    }
    return found;
  }

  /**
   * Records with `SystemModstamp >= sinceMs`, oldest first, in pages, at most `maxRecords` in all
   * (deleted ones included, with IsDeleted = true).
   */
  async *readSince(sinceMs: number, maxRecords: number, purpose: string, signal?: AbortSignal): AsyncGenerator<RereadPage> {
    // One more than the bound tells "exactly the bound" from "cut short".
    const soql = `${this.select()} WHERE SystemModstamp >= ${soqlDateTime(sinceMs)} ORDER BY SystemModstamp ASC, Id ASC LIMIT ${maxRecords + 1}`;
    let seen = 0;
    for await (const page of this.client.query<Row>(soql, { purpose, includeDeleted: true, ...(signal ? { signal } : {}) })) {
      const room = maxRecords - seen;
      const rows = page.records.slice(0, Math.max(room, 0));
      seen += rows.length;
      const truncated = page.records.length > rows.length;
      yield { rows, truncated, done: page.done || truncated };
      if (truncated) return;
    }
  }
}
