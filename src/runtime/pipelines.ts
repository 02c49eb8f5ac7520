import type { Container } from 'inversify';
import { OffsetStore, Source } from '../core';
import type { AvroEncoder } from './avro';
import { Config, type RuntimeConfig } from './config';
import { KafkaClient } from './kafka';
import { componentLogger, Logger } from './logger';
import { AvroEncoderToken, RunnerKafkaToken } from './module';
import { Pipeline, type PipelineStatus } from './pipeline';
import { runnerOptions, SourceRunner, type RunnerKafka } from './source-runner';

/**
 * Every pipeline of a config in this process: a runner per source, and the transforms (and later
 * sinks) their stages bind as Pipeline. All share one producer thread and one encoder.
 */
export class Pipelines {
  private pipelines: Pipeline[] = [];

  constructor(private readonly container: Container) {}

  async start(): Promise<void> {
    const config = this.container.get<RuntimeConfig>(Config);
    const kafka = this.container.get<KafkaClient>(KafkaClient);
    const logger = this.container.get<Logger>(Logger);
    const encoder = this.container.get<AvroEncoder>(AvroEncoderToken);
    const runnerKafka = this.container.get<RunnerKafka>(RunnerKafkaToken);
    const offsets = this.container.get<OffsetStore>(OffsetStore);
    const sources = this.container.isBound(Source) ? this.container.getAll<Source>(Source) : [];
    const others = this.container.isBound(Pipeline) ? this.container.getAll<Pipeline>(Pipeline) : [];
    this.pipelines = [
      ...sources.map(
        (source) =>
          new SourceRunner(source, kafka, encoder, offsets, componentLogger(logger, `runner:${source.name}`, 'import'), runnerOptions(config), runnerKafka),
      ),
      ...others,
    ];
    // Together: a pipeline whose system is down backs off in the background while the others run.
    // One that cannot work (a missing table) fails the start; each such failure is logged by its runner.
    const started = await Promise.allSettled(this.pipelines.map((pipeline) => pipeline.start()));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
  }

  status(): PipelineStatus[] {
    return this.pipelines.map((p) => p.status);
  }

  async stop(): Promise<void> {
    await Promise.all(this.pipelines.map((p) => p.stop()));
  }
}
