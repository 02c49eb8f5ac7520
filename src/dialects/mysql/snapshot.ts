import type { Knex } from 'knex';
import type { Snapshot, TableInfo } from '../dialect';
import { toPosition, type Gap } from './gaps';
import { changelogName, imageExpression, keysetAfter, parseImage, qualified, quoteIdentifier } from './sql';

/**
 * How far below the snapshot's highest change_id missing ids are looked for. A transaction still
 * open at snapshot time whose change_id lies further back than this is not seen (see the docs).
 */
const GAP_WINDOW = 200_000;
/** Below this estimate the exact count is cheap enough to take. */
const COUNT_BELOW = 50_000;

export interface SnapshotOptions {
  maxGaps: number;
}

/**
 * A REPEATABLE READ transaction whose first statement reads the changelog: InnoDB
 * fixes the read view at a transaction's first consistent read, which is what START TRANSACTION
 * WITH CONSISTENT SNAPSHOT does (MySQL manual, "START TRANSACTION"), while knex keeps owning the
 * transaction and its connection.
 *
 * In that view, M = the highest visible change_id. Every id above M is a change the view does not
 * contain. Ids at or below M that the view cannot see belong to transactions in flight when it was
 * taken (or rolled back): they start as remembered gaps, so their rows are delivered as late rows.
 */
export async function openMysqlSnapshot(db: Knex, table: TableInfo, now: number, options: SnapshotOptions): Promise<Snapshot> {
  const inexact = table.columns.find((c) => table.primaryKey.includes(c.name) && c.type.kind === 'float');
  if (inexact) {
    // FLOAT reaches JavaScript rounded, so "after the last key" could return that key again.
    throw new Error(`cannot snapshot ${qualified(table)}: its primary key column ${quoteIdentifier(inexact.name)} is a FLOAT, which cannot be paged exactly`);
  }
  // Not readOnly: knex writes `ISOLATION LEVEL … READ ONLY` without the comma MySQL needs.
  const trx = await db.transaction({ isolationLevel: 'repeatable read' });
  try {
    const cl = qualified({ schema: table.schema, name: changelogName(table.name) });
    const [[top]] = (await trx.raw(`SELECT COALESCE(MAX(change_id), 0) AS top FROM ${cl}`)) as [Array<{ top: number | string }>];
    const next = Number(top!.top);
    const low = Math.max(0, next - GAP_WINDOW);
    // LAG's default argument is MySQL-only; COALESCE works on MariaDB too.
    const [missing] = (await trx.raw(
      `SELECT prev + 1 AS gap_from, change_id - 1 AS gap_to
         FROM (SELECT change_id, COALESCE(LAG(change_id) OVER (ORDER BY change_id), ?) AS prev FROM ${cl} WHERE change_id > ?) AS seen
        WHERE change_id > prev + 1
        ORDER BY change_id DESC LIMIT ?`,
      [low, low, options.maxGaps],
    )) as [Array<{ gap_from: number | string; gap_to: number | string }>];
    const gaps: Gap[] = missing.map((m) => ({ from: Number(m.gap_from), to: Number(m.gap_to), since: now })).reverse();

    const [[estimate]] = (await trx.raw(
      'SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?',
      [table.schema ?? null, table.name],
    )) as [Array<{ n: number | string | null }>];
    let estimatedRows = Number(estimate?.n ?? 0);
    if (estimatedRows < COUNT_BELOW) {
      const [[count]] = (await trx.raw(`SELECT COUNT(*) AS n FROM ${qualified(table)}`)) as [Array<{ n: number | string }>];
      estimatedRows = Number(count!.n);
    }

    return new MysqlSnapshot(trx, table, toPosition({ next, gaps, waiting: [] }), estimatedRows);
  } catch (error) {
    await trx.rollback().catch(() => undefined);
    throw error;
  }
}

class MysqlSnapshot implements Snapshot {
  private last: unknown[] | undefined;
  private readonly select: string;
  private readonly keyset: ReturnType<typeof keysetAfter>;

  constructor(
    private readonly trx: Knex.Transaction,
    private readonly table: TableInfo,
    readonly position: Snapshot['position'],
    readonly estimatedRows: number,
  ) {
    const keys = table.primaryKey.map((k, i) => `${quoteIdentifier(k)} AS ${quoteIdentifier(`banyan_k${i}`)}`);
    this.select = `SELECT ${imageExpression(table.columns)} AS banyan_image, ${keys.join(', ')} FROM ${qualified(table)}`;
    this.keyset = keysetAfter(table.primaryKey);
  }

  async nextPage(limit: number): Promise<Array<Record<string, string | null>>> {
    // Qualified: in ORDER BY a bare name would mean one of our aliases first, should a key column
    // be called `banyan_k0`.
    const target = qualified(this.table);
    const order = `ORDER BY ${this.table.primaryKey.map((k) => `${target}.${quoteIdentifier(k)}`).join(', ')} LIMIT ?`;
    const last = this.last;
    const [rows] = (await (last
      ? this.trx.raw(`${this.select} WHERE ${this.keyset.sql} ${order}`, [...this.keyset.bindingOrder.map((i) => last[i] as Knex.Value), limit])
      : this.trx.raw(`${this.select} ${order}`, [limit]))) as [Array<Record<string, unknown>>];
    const tail = rows[rows.length - 1];
    // Key values go back as the driver returned them (strings for dates and big numbers, Buffers
    // for binary), which compare exactly as the stored values do.
    if (tail) this.last = this.table.primaryKey.map((_, i) => tail[`banyan_k${i}`]);
    return rows.map((r) => parseImage(r.banyan_image)!);
  }

  async close(): Promise<void> {
    if (!this.trx.isCompleted()) await this.trx.commit();
  }
}
