import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

/** What both integration projects share. */
const integration: TestProjectInlineConfiguration['test'] = {
  environment: 'node',
  globalSetup: ['test/integration/global-setup.ts'],
  // Deletes the topics each file made, after the file (test/helpers.ts deleteWhatThisFileMade).
  setupFiles: ['test/integration/setup.ts'],
  testTimeout: 60_000,
  hookTimeout: 120_000,
  // Two cores: integration files share one Kafka, so run them a few at a time.
  maxWorkers: 2,
};

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: ['src/**/*.spec.ts', 'tools/**/*.spec.ts', 'test/*.spec.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          ...integration,
          name: 'integration',
          // After the unit specs, which need nothing running.
          sequence: { groupOrder: 1 },
          include: ['test/integration/**/*.test.ts'],
        },
      },
      {
        // The Kafka-facing tests again, sending through kafkajs's own encoder (kafka.encodedProduce: false).
        test: {
          ...integration,
          name: 'integration-kafkajs-encoder',
          sequence: { groupOrder: 2 },
          include: ['test/integration/encoded-produce.test.ts', 'test/integration/changelog-kill.test.ts'],
          env: { BANYAN_TEST_ENCODED_PRODUCE: 'false' },
        },
      },
    ],
  },
});
