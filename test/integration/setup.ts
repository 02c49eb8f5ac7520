import { afterAll } from 'vitest';
import { deleteWhatThisFileMade, madeAnything, requireEnv, testConfig, testKafka } from '../helpers';

// Each integration file deletes the topics (and their registry subjects) it made, so a long-lived
// development stack does not fill with per-test topics. Only names this file made are touched.
afterAll(async () => {
  // Asked before testConfig, which makes a fresh client id of its own.
  if (!madeAnything()) return;
  const report = Boolean(process.env.BANYAN_TEST_CLEANUP_REPORT);
  const removed = await deleteWhatThisFileMade(testKafka(testConfig()), requireEnv('SCHEMA_REGISTRY_URL'), report);
  if (report) {
    console.log(`[cleanup] deleted ${removed.topics.length} topics, ${removed.groups} groups, ${removed.subjects} subjects; ${removed.left} of its topics left`);
  }
});
