import type { Logger } from '../runtime/logger';
import type { Plan } from './plan';

/** Counts and logs the events a plan reported instead of writing (the lifecycle forbade them), by reason. */
export function reportLifecycle(logger: Logger, reported: Record<string, number>, reports: Plan['reports']): void {
  for (const report of reports) {
    reported[report.reason] = (reported[report.reason] ?? 0) + 1;
    const { event } = report;
    logger.info(
      { event: 'sink.lifecycle_report', reason: report.reason, type: event.type, entity: event.entity, entityId: event.entityId, fields: report.fields, origin: event.origin, sourceCommitTime: event.sourceCommitTime },
      `${event.type} of ${event.entity} ${event.entityId} (${event.origin}) not written: ${report.reason}`,
    );
  }
}
