// Exits 0 once the broker at argv[2] answers a metadata request (used by stack.sh while waiting).
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;
const admin = new Kafka({
  clientId: 'banyan-stack-probe',
  brokers: [process.argv[2]],
  logLevel: logLevel.NOTHING,
  retry: { retries: 0 },
  connectionTimeout: 1000,
}).admin();
try {
  await admin.connect();
  await admin.describeCluster();
  process.exit(0);
} catch {
  process.exit(1);
} finally {
  await admin.disconnect().catch(() => {});
}
