import { afterAll } from 'vitest';
import { deleteWhatThisFileMade, requireEnv, testConfig, testKafka, topicsMadeHere } from '../helpers';

// Each integration file deletes the topics (and their registry subjects) it made, so a long-lived
// development stack does not fill with per-test topics. Only names this file made are touched.
afterAll(async () => {
  const kafka = testKafka(testConfig());
  const removed = await deleteWhatThisFileMade(kafka, requireEnv('SCHEMA_REGISTRY_URL'));
  if (process.env.BANYAN_TEST_CLEANUP_REPORT) {
    const left = (await topicsMadeHere(kafka)).length;
    console.log(`[cleanup] deleted ${removed.topics.length} topics, ${removed.groups} groups, ${removed.subjects} subjects; ${left} of its topics left`);
  }
});
