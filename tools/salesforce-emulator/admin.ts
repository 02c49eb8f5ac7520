import type { BulkJobSummary, BulkUsage } from './bulk-jobs.js';
import type { StoredChangeEvent } from './cdc.js';
import type { ChannelConfig, ChannelMember, EventChannel } from './channels.js';
import type { CometdServer } from './cometd.js';
import { ApiError, notFound } from './errors.js';
import type { FaultState, LockRowsSpec } from './faults.js';
import { type EmulatorRequest, type EmulatorResponse, expectObject, json, parseJsonBody } from './http.js';
import type { Org } from './org.js';
import { errorResponse } from './rest.js';

export interface AdminState {
  now: string;
  apiUsage: { used: number; max: number };
  faults: FaultState;
  sessions: number;
  cometdClients: number;
  /** `/meta/connect` requests held open, waiting for events or the long-poll timeout. */
  heldConnects: number;
  retainedChangeEvents: number;
  /** Bulk API 2.0 ingest: jobs held, jobs waiting for a processing step, whether processing is paused, daily allocations. */
  bulk: { jobs: number; pending: number; paused: boolean } & BulkUsage;
}

/**
 * Fault injection and clock control for tests. The same operations are served over HTTP under
 * `/__admin/` for other processes; see docs/salesforce-emulator.md for the routes.
 */
export class EmulatorAdmin {
  constructor(
    private readonly org: Org,
    private readonly cometd: CometdServer,
    private readonly reseed: () => void,
  ) {}

  /** The next `calls` REST calls answer 403 REQUEST_LIMIT_EXCEEDED. */
  rateLimitNextCalls(calls: number): void {
    this.org.faults.rateLimitNext(calls);
  }

  /** Sets the daily API budget; `{ used: max }` spends it, so every REST call answers REQUEST_LIMIT_EXCEEDED. */
  setApiUsage(values: { used?: number; max?: number }): void {
    this.org.usage.set(values);
  }

  exhaustDailyApiLimit(): void {
    this.org.usage.set({ used: this.org.usage.current().max });
  }

  /** The next `calls` REST calls answer 503 SERVER_UNAVAILABLE (or 500 UNKNOWN_EXCEPTION). */
  failNextCalls(calls: number, status: 500 | 503 = 503): void {
    this.org.faults.failNext(calls, status);
  }

  /** Writes to these rows fail with UNABLE_TO_LOCK_ROW: per record in collections, whole call otherwise. */
  lockRows(spec: LockRowsSpec): void {
    this.org.faults.lockRows(spec);
  }

  unlockRows(): void {
    this.org.faults.unlockRows();
  }

  /** The next `changes` record changes publish GAP_CREATE/GAP_UPDATE/… events: header and record ids only. */
  gapNextChanges(changes: number): void {
    this.org.faults.gapNext(changes);
  }

  /** The next `changes` record changes publish no change events but one GAP_OVERFLOW per object and transaction. */
  overflowNextChanges(changes: number): void {
    this.org.faults.overflowNext(changes);
  }

  /** Every access token stops working: REST answers 401 INVALID_SESSION_ID, CometD 401::Authentication invalid. */
  expireSessions(): void {
    this.org.sessions.expireAll();
  }

  /** Forgets every CometD client, as Salesforce does after a network failure; clients must handshake again. */
  expireCometdClients(): void {
    this.cometd.expireClients();
  }

  /** Moves the emulator clock forward: sessions time out, change events fall out of retention, held long-polls answer. */
  advanceClock(ms: number): void {
    this.org.clock.advance(ms);
  }

  now(): Date {
    return new Date(this.org.clock.now());
  }

  undelete(objectName: string, id: string): void {
    const def = this.org.schema.object(objectName);
    if (!def) throw notFound(`No object ${objectName}`);
    this.org.transact('com/salesforce/api/soap/62.0;client=SfdcInternalAPI/', (tx) => this.org.store.undelete(tx, def, id));
  }

  changeEvents(): readonly StoredChangeEvent[] {
    return this.org.events.retained();
  }

  /** Creates a custom channel with its members, as deploying PlatformEventChannel and PlatformEventChannelMember would. */
  defineChannel(config: ChannelConfig): EventChannel {
    return this.org.channels.define(config);
  }

  channels(): { channels: EventChannel[]; members: ChannelMember[] } {
    return this.org.channels.list();
  }

  resetFaults(): void {
    this.org.faults.reset();
  }

  /** Every Bulk API 2.0 ingest job: id, object, operation, state and record counts. */
  bulkJobs(): BulkJobSummary[] {
    return this.org.bulk.summaries();
  }

  /** Stops processing Bulk API jobs on its own; `stepBulkProcessing` then moves them one step at a time. */
  pauseBulkProcessing(): void {
    this.org.bulk.pause();
  }

  resumeBulkProcessing(): void {
    this.org.bulk.resume();
  }

  /** Runs `steps` processing steps now: a step starts a closed job (UploadComplete → InProgress) or writes one chunk of 200 records. Returns how many ran. */
  stepBulkProcessing(steps = 1): number {
    return this.org.bulk.step(steps);
  }

  /** Sets the daily Bulk API allocations: batches (DailyBulkApiBatches) and records. */
  setBulkUsage(values: { batchesUsed?: number; batchesMax?: number; recordsUsed?: number; recordsMax?: number }): void {
    this.org.bulk.setUsage(values);
  }

  /** Faults cleared, data and channels back to the seed, change events and query cursors gone; sessions stay valid. */
  reset(): void {
    this.org.faults.reset();
    this.cometd.expireClients();
    this.org.events.clear();
    this.org.store.clear();
    this.org.channels.clear();
    this.org.clearCursors();
    this.org.bulk.clear();
    this.reseed();
  }

  state(): AdminState {
    return {
      now: this.now().toISOString(),
      apiUsage: this.org.usage.current(),
      faults: this.org.faults.state(),
      sessions: this.org.sessions.size,
      cometdClients: this.cometd.clientCount,
      heldConnects: this.cometd.heldConnects,
      retainedChangeEvents: this.org.events.retained().length,
      bulk: { jobs: this.org.bulk.list().length, pending: this.org.bulk.pending, paused: this.org.bulk.isPaused, ...this.org.bulk.usage() },
    };
  }
}

const count = (body: Record<string, unknown>, key: string): number => {
  const value = body[key] ?? 1;
  if (typeof value !== 'number') throw new ApiError(400, 'INVALID_INPUT', `${key} must be a number`);
  return value;
};

/** `/__admin/…`: the admin handle over HTTP, JSON in and out. */
export function handleAdmin(admin: EmulatorAdmin, req: EmulatorRequest): EmulatorResponse {
  try {
    const route = `${req.method} ${req.path.replace(/\/+$/, '')}`;
    const body = req.method === 'POST' && req.body.trim() !== '' ? expectObject(parseJsonBody(req.body), 'the admin request') : {};
    switch (route) {
      case 'GET /__admin/state': return json(200, admin.state());
      case 'GET /__admin/change-events': return json(200, admin.changeEvents());
      case 'GET /__admin/channels': return json(200, admin.channels());
      case 'GET /__admin/bulk-jobs': return json(200, admin.bulkJobs());
      case 'POST /__admin/bulk/pause': admin.pauseBulkProcessing(); break;
      case 'POST /__admin/bulk/resume': admin.resumeBulkProcessing(); break;
      case 'POST /__admin/bulk/step': admin.stepBulkProcessing(count(body, 'steps')); break;
      case 'POST /__admin/bulk-usage': admin.setBulkUsage(body as { batchesUsed?: number; batchesMax?: number; recordsUsed?: number; recordsMax?: number }); break;
      case 'POST /__admin/channels': admin.defineChannel(body as unknown as ChannelConfig); break;
      case 'POST /__admin/faults/rate-limit': admin.rateLimitNextCalls(count(body, 'calls')); break;
      case 'POST /__admin/faults/server-error': admin.failNextCalls(count(body, 'calls'), body.status === 500 ? 500 : 503); break;
      case 'POST /__admin/faults/lock-rows': admin.lockRows(body as LockRowsSpec); break;
      case 'DELETE /__admin/faults/lock-rows': admin.unlockRows(); break;
      case 'POST /__admin/faults/gap-events': admin.gapNextChanges(count(body, 'changes')); break;
      case 'POST /__admin/faults/overflow': admin.overflowNextChanges(count(body, 'changes')); break;
      case 'DELETE /__admin/faults': admin.resetFaults(); break;
      case 'POST /__admin/api-usage': admin.setApiUsage(body as { used?: number; max?: number }); break;
      case 'POST /__admin/api-usage/exhaust': admin.exhaustDailyApiLimit(); break;
      case 'POST /__admin/sessions/expire': admin.expireSessions(); break;
      case 'POST /__admin/cometd/expire-clients': admin.expireCometdClients(); break;
      case 'POST /__admin/clock/advance': admin.advanceClock(count(body, 'ms')); break;
      case 'POST /__admin/reset': admin.reset(); break;
      default: throw notFound();
    }
    return json(200, admin.state());
  } catch (err) {
    if (err instanceof ApiError) return errorResponse(err);
    if (err instanceof RangeError) return errorResponse(new ApiError(400, 'INVALID_INPUT', err.message));
    throw err;
  }
}
