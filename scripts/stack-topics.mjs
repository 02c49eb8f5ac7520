// The local broker's topics, and the leftovers of tests and benches among them.
//
//   npm run stack:topics                          count, and the leftovers by name prefix
//   npm run stack:topics -- --delete-test-topics  delete leftovers older than --older-than minutes (60)
//   node scripts/stack-topics.mjs --summary       one line (what `stack:up` and `stack:status` print)
//
// A leftover is a topic whose name carries the time stamp the tests' freshName() and the bench put
// in it (`<prefix>_<Date.now() in base 36>_<6 hex>`, `bench_<base 36>`): a long-lived stack fills
// with them and gets slower (docs/performance.md). Only those older than --older-than are deleted,
// so tests running right now against a shared stack keep theirs.
// The broker: --broker, else KAFKA_BROKERS, else .banyan/stack.env, else 127.0.0.1:19092.
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';

const { values } = parseArgs({
  options: {
    broker: { type: 'string' },
    summary: { type: 'boolean', default: false },
    'delete-test-topics': { type: 'boolean', default: false },
    'older-than': { type: 'string', default: '60' },
  },
  strict: true,
});
const olderThanMinutes = Number(values['older-than']);
if (!Number.isFinite(olderThanMinutes) || olderThanMinutes < 0) {
  console.error(`--older-than is minutes, got "${values['older-than']}"`);
  process.exit(2);
}

const STAMP = /_([0-9a-z]{8})(?:_[0-9a-f]{6})?(?=$|[._-])/;
const EARLIEST = Date.UTC(2024, 0, 1);

/** When a test or bench made the topic, from the stamp in its name; undefined for other topics. */
function madeAt(topic, now = Date.now()) {
  const match = STAMP.exec(topic);
  if (!match) return undefined;
  const ms = Number.parseInt(match[1], 36);
  // A stamp is only a stamp if it reads as a time between 2024 and tomorrow.
  return ms >= EARLIEST && ms <= now + 86_400_000 ? ms : undefined;
}

function brokerAddress() {
  if (values.broker) return values.broker;
  if (process.env.KAFKA_BROKERS) return process.env.KAFKA_BROKERS.split(',')[0].trim();
  if (existsSync('.banyan/stack.env')) {
    const line = readFileSync('.banyan/stack.env', 'utf8').match(/^KAFKA_BROKERS=([^,\n]+)/m);
    if (line) return line[1].trim();
  }
  return '127.0.0.1:19092';
}

const broker = brokerAddress();
const admin = new kafkajs.Kafka({
  clientId: 'banyan-stack-topics',
  brokers: [broker],
  logLevel: kafkajs.logLevel.NOTHING,
  retry: { retries: 1 },
  connectionTimeout: 3000,
  requestTimeout: 30_000,
}).admin();

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
const say = (line) => console.log(values.summary ? `[stack] ${line}` : line);
try {
  await admin.connect();
  const topics = (await admin.listTopics()).filter((t) => !t.startsWith('__')).sort();
  const { topics: metadata } = await admin.fetchTopicMetadata({ topics });
  const partitions = metadata.reduce((n, t) => n + t.partitions.length, 0);
  const now = Date.now();
  const leftovers = topics.filter((t) => madeAt(t, now) !== undefined);
  const old = leftovers.filter((t) => madeAt(t, now) < now - olderThanMinutes * 60_000);
  const older = `older than ${olderThanMinutes} min`;

  if (values['delete-test-topics']) {
    // A few hundred names a request keeps each request small.
    for (let i = 0; i < old.length; i += 200) await admin.deleteTopics({ topics: old.slice(i, i + 200), timeout: 30_000 });
    say(`deleted ${plural(old.length, 'test and bench topic')} ${older} from ${broker}; ${plural(topics.length - old.length, 'topic')} remain`);
  } else {
    say(
      `Kafka at ${broker} holds ${plural(topics.length, 'topic')} (${plural(partitions, 'partition')}), ` +
        `${leftovers.length} of them made by tests and benches (${old.length} ${older})` +
        (old.length > 0 ? '; `npm run stack:topics -- --delete-test-topics` deletes those, `stack:down` + `stack:up` starts a fresh broker' : ''),
    );
    if (!values.summary) {
      const byPrefix = new Map();
      for (const t of leftovers) {
        const prefix = t.slice(0, STAMP.exec(t).index);
        byPrefix.set(prefix, (byPrefix.get(prefix) ?? 0) + 1);
      }
      for (const [prefix, n] of [...byPrefix].sort((a, b) => b[1] - a[1])) console.log(`  ${String(n).padStart(5)}  ${prefix}_…`);
    }
  }
} catch (error) {
  // Counting is advice: it never fails `stack:up`.
  say(`could not list the topics of ${broker}: ${error.message}`);
  process.exitCode = values.summary ? 0 : 1;
} finally {
  await admin.disconnect().catch(() => {});
}
