import type { Container } from 'inversify';
import { OffsetStore, Source } from '../core';
import { AvroEncoder } from './avro';
import { Config, type RuntimeConfig } from './config';
import { KafkaClient } from './kafka';
import { componentLogger, Logger } from './logger';
import { SchemaRegistryClient } from './registry';
import { runnerOptions, SourceRunner, type SourceStatus } from './source-runner';

/** Every pipeline of a config in this process: today the sources; transforms and sinks join later. */
export class Pipelines {
  private runners: SourceRunner[] = [];

  constructor(private readonly container: Container) {}

  async start(): Promise<void> {
    const config = this.container.get<RuntimeConfig>(Config);
    const kafka = this.container.get<KafkaClient>(KafkaClient);
    const logger = this.container.get<Logger>(Logger);
    const encoder = new AvroEncoder(this.container.get<SchemaRegistryClient>(SchemaRegistryClient));
    const offsets = this.container.get<OffsetStore>(OffsetStore);
    const sources = this.container.isBound(Source) ? this.container.getAll<Source>(Source) : [];
    this.runners = sources.map(
      (source) =>
        new SourceRunner(source, kafka, encoder, offsets, componentLogger(logger, `runner:${source.name}`, 'import'), runnerOptions(config)),
    );
    // Together: a source whose system is down backs off in the background while the others run.
    // One that cannot work (a missing table) fails the start; each such failure is logged by its runner.
    const started = await Promise.allSettled(this.runners.map((runner) => runner.start()));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
  }

  status(): SourceStatus[] {
    return this.runners.map((r) => r.status);
  }

  async stop(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.stop()));
  }
}
