import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: ['src/**/*.spec.ts', 'test/*.spec.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          // After the unit specs, which need nothing running.
          sequence: { groupOrder: 1 },
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/integration/global-setup.ts'],
          // Deletes the topics each file made, after the file (test/helpers.ts deleteWhatThisFileMade).
          setupFiles: ['test/integration/setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          // Two cores: integration files share one Kafka, so run them a few at a time.
          maxWorkers: 2,
        },
      },
    ],
  },
});
