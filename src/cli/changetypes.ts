import type { BanyanConfig } from '../config';
import { CHANGE_TYPE_STATES, ChangeTypeError, isState, createChangeTypes, type ChangeTypeState, type ChangeTypeView, type KafkaChangeTypes } from '../runtime/change-types';
import { createKafka } from '../runtime/kafka';
import { createRootLogger } from '../runtime/logger';
import { formatTable } from '../runtime/table';

/**
 * `banyan changetypes list|set|history` (docs/lifecycle.md). Each returns the lines to print on
 * stdout; logs go to stderr (warnings and worse), so the output stays readable and parseable.
 */

async function withChangeTypes<T>(config: BanyanConfig, start: boolean, fn: (changeTypes: KafkaChangeTypes) => Promise<T>): Promise<T> {
  const logger = createRootLogger(config.log.level === 'info' ? 'warn' : config.log.level, process.stderr);
  // What kafkajs logs about a failure is in the one-line error the command ends with; its own
  // lines only with log.level debug (as for doctor).
  const verbose = config.log.level === 'debug' || config.log.level === 'trace';
  const kafka = createKafka(config.kafka, verbose ? logger : createRootLogger('fatal', process.stderr));
  const changeTypes = createChangeTypes(config, kafka, logger);
  try {
    if (start) await changeTypes.start();
    return await fn(changeTypes);
  } finally {
    await changeTypes.stop();
  }
}

/** The JSON of one change type, as `list --json` prints it. */
function viewJson(v: ChangeTypeView) {
  return {
    type: v.type,
    state: v.state,
    configured: v.configured,
    since: v.record?.at ?? null,
    by: v.record?.by ?? null,
    why: v.record?.why ?? null,
    from: v.record?.from ?? null,
    seq: v.record?.seq ?? null,
  };
}

/** `changetypes list`: every change type's state now. */
export async function listChangeTypes(config: BanyanConfig, options: { json?: boolean }): Promise<string> {
  const views = await withChangeTypes(config, true, async (ct) => ct.list());
  if (options.json) return JSON.stringify({ changeTypes: views.map(viewJson) });
  return formatTable(
    ['TYPE', 'STATE', 'SINCE', 'BY', 'WHY'],
    views.map((v) => [
      v.configured ? v.type : `${v.type} (not in this config)`,
      v.state,
      v.record?.at ?? '-',
      v.record?.by ?? '-',
      v.record?.why ?? 'initial state (config)',
    ]),
  );
}

/** `changetypes set <type> <state>`: one audited transition, refused if what it was read from changed. */
export async function setChangeType(
  config: BanyanConfig,
  type: string,
  state: string,
  options: { why: string; by?: string; expect?: string },
): Promise<string> {
  return withChangeTypes(config, true, async (ct) => {
    const expected = options.expect === undefined ? undefined : { state: parseExpected(options.expect) };
    const record = await ct.set(type, state, { why: options.why, ...(options.by ? { by: options.by } : {}), ...(expected ? { expected } : {}) });
    return `${record.type}: ${record.from} → ${record.state} (by ${record.by} at ${record.at}, transition ${record.seq})`;
  });
}

/** `changetypes history [type]`: the audit, oldest first. */
export async function changeTypeHistory(config: BanyanConfig, type: string | undefined, options: { json?: boolean }): Promise<string> {
  const entries = await withChangeTypes(config, false, (ct) => {
    if (type !== undefined && !Object.hasOwn(config.changeTypes, type)) {
      // The audit may still hold a type the config no longer declares: show it, but say so.
      process.stderr.write(`note: "${type}" is not declared in this config's changeTypes\n`);
    }
    return ct.history(type);
  });
  if (options.json) return JSON.stringify({ history: entries });
  if (entries.length === 0) return type ? `no transition of "${type}" yet` : 'no transition yet';
  return formatTable(
    ['AT', 'TYPE', 'FROM', 'TO', 'BY', 'WHY'],
    entries.map((e) => [e.at, e.type, e.from, e.state, e.by, e.why]),
  );
}

/** `--expect <state>`: checked here, so a typo is not reported as a stale state. */
function parseExpected(state: string): ChangeTypeState {
  if (!isState(state)) throw new ChangeTypeError(`--expect "${state}" is not a state (one of ${CHANGE_TYPE_STATES.join(', ')})`, 'UNKNOWN_STATE');
  return state;
}
