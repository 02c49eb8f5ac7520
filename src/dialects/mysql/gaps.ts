import type { Position } from '../dialect';

/**
 * The watermark over an AUTO_INCREMENT change_id, which is drawn when a row is inserted but seen
 * when its transaction commits. A missing id is either still in flight (it will appear) or rolled
 * back (it never will); nothing tells the two apart, so:
 * - a gap is waited for, up to `gapWaitMs` after it was first seen, before the ids after it are
 *   emitted (every gap seen in a read is timed at once, so many small gaps cost one wait, not many);
 * - a passed gap is remembered and re-read with every batch for `gapRetainMs` after it was first
 *   seen, so a transaction that commits later still has its rows delivered (late rows);
 * - then it is forgotten (expired).
 * Late rows come out of id order, which keeps each row's own history in order: a second change of
 * a row waits for the first transaction's row lock, so it draws a higher id and commits after it,
 * and one SELECT sees both or neither, sorted by id.
 *
 * Pure functions only; the dialect runs the SQL.
 */

/** An inclusive range of missing change ids, first seen missing at `since` (ms). */
export interface Gap {
  from: number;
  to: number;
  since: number;
}

/** The position's JSON: `{ next, gaps, waiting }`. */
export interface MysqlPosition {
  /** Every id ≤ next has been emitted or is in `gaps`. */
  next: number;
  /** Passed gaps (all ≤ next) still re-read for late rows. */
  gaps: Gap[];
  /** Gaps above `next` seen but not passed yet, kept for when they were first seen. */
  waiting: Gap[];
}

export interface GapOptions {
  gapWaitMs: number;
  gapRetainMs: number;
  /** Bounds the position's size and the read's OR list; beyond it the oldest gaps expire early. */
  maxGaps: number;
}

export const START: MysqlPosition = { next: 0, gaps: [], waiting: [] };

/** Reads a stored position, refusing anything that is not one of ours (e.g. another dialect's). */
export function parsePosition(position: Position | undefined): MysqlPosition {
  if (position === undefined) return START;
  const { next, gaps, waiting } = position as Record<string, unknown>;
  if (isId(next) && isGapList(gaps) && isGapList(waiting)) return { next, gaps, waiting };
  throw new Error(`not a MySQL changelog position: ${JSON.stringify(position)}`);
}

export function toPosition(p: MysqlPosition): Position {
  // A fixed key order, so equal positions serialise equally (the poller compares JSON).
  const gap = (g: Gap) => ({ from: g.from, to: g.to, since: g.since });
  return { next: p.next, gaps: p.gaps.map(gap), waiting: p.waiting.map(gap) };
}

function isId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isGapList(value: unknown): value is Gap[] {
  return Array.isArray(value) && value.every((g) => isId(g?.from) && isId(g?.to) && g.from <= g.to && Number.isFinite(g?.since));
}

/** Drops remembered gaps first seen `gapRetainMs` or more ago. */
export function expireGaps(p: MysqlPosition, now: number, gapRetainMs: number): { position: MysqlPosition; expired: number } {
  const gaps = p.gaps.filter((g) => now - g.since < gapRetainMs);
  return { position: gaps.length === p.gaps.length ? p : { ...p, gaps }, expired: p.gaps.length - gaps.length };
}

export interface Advance {
  /** How many of the read rows to emit: always a prefix, as late rows sort first. */
  emit: number;
  position: MysqlPosition;
  gapsPassed: number;
  lateRows: number;
  /** Remembered gaps dropped because there were more than `maxGaps`. */
  gapsDropped: number;
}

/**
 * Given the ids one read returned (ascending; ids ≤ next only from remembered gaps), decides
 * which to emit and the position after them.
 */
export function advance(p: MysqlPosition, ids: number[], now: number, options: GapOptions): Advance {
  const gaps = p.gaps.map((g) => ({ ...g }));
  let i = 0;
  for (; i < ids.length && ids[i]! <= p.next; i++) removeId(gaps, ids[i]!);
  const lateRows = i;

  let next = p.next;
  let emit = i;
  let emitting = true;
  let gapsPassed = 0;
  const waiting: Gap[] = [];
  const known = [...p.waiting].sort((a, b) => a.from - b.from);
  let expected = p.next + 1;
  for (; i < ids.length; i++) {
    const id = ids[i]!;
    if (id > expected) {
      for (const part of split(expected, id - 1, known, now)) {
        if (emitting && now - part.since >= options.gapWaitMs) {
          gaps.push(part);
          gapsPassed++;
          next = part.to;
        } else {
          emitting = false;
          waiting.push(part);
        }
      }
    }
    if (emitting) {
      next = id;
      emit = i + 1;
    }
    expected = id + 1;
  }
  // What was known about ids beyond this read (a full page ends early) stays known.
  const seenUpTo = Math.max(expected - 1, p.next);
  for (const w of p.waiting) {
    if (w.to > seenUpTo) waiting.push({ ...w, from: Math.max(w.from, seenUpTo + 1) });
  }

  gaps.sort((a, b) => a.from - b.from);
  let kept = gaps;
  if (gaps.length > options.maxGaps) {
    const newest = new Set([...gaps].sort((a, b) => b.since - a.since || b.from - a.from).slice(0, options.maxGaps));
    kept = gaps.filter((g) => newest.has(g));
  }
  return {
    emit,
    // The lowest waiting gaps matter first; others are simply timed again when seen again.
    position: { next, gaps: kept, waiting: waiting.slice(0, options.maxGaps) },
    gapsPassed,
    lateRows,
    gapsDropped: gaps.length - kept.length,
  };
}

/** Removes one late id from the remembered gap that holds it, splitting the gap if needed. */
function removeId(gaps: Gap[], id: number): void {
  const at = gaps.findIndex((g) => g.from <= id && id <= g.to);
  if (at < 0) return;
  const g = gaps[at]!;
  const parts: Gap[] = [];
  if (g.from < id) parts.push({ from: g.from, to: id - 1, since: g.since });
  if (id < g.to) parts.push({ from: id + 1, to: g.to, since: g.since });
  gaps.splice(at, 1, ...parts);
}

/**
 * The missing range [from, to] in parts, each with the time its ids were first seen missing:
 * that of an earlier waiting gap covering them (`known`, ascending), else `now`.
 */
function split(from: number, to: number, known: Gap[], now: number): Gap[] {
  const parts: Gap[] = [];
  let at = from;
  for (const k of known) {
    if (k.to < at || k.from > to) continue;
    if (k.from > at) parts.push({ from: at, to: k.from - 1, since: now });
    const end = Math.min(k.to, to);
    parts.push({ from: Math.max(k.from, at), to: end, since: k.since });
    at = end + 1;
  }
  if (at <= to) parts.push({ from: at, to, since: now });
  return parts;
}
