import type { Admin, ITopicConfig } from 'kafkajs';

/**
 * Creates the `topics` that do not exist yet and waits until every partition
 * of every one of them has a leader.
 *
 * Why not just `admin.createTopics({ waitForLeaders: true })`: kafkajs only
 * retries `LEADER_NOT_AVAILABLE` while waiting, but a KRaft broker briefly
 * answers `UNKNOWN_TOPIC_OR_PARTITION` for a topic it has just created, which
 * kafkajs then throws. Asking only for missing topics also spares kafkajs
 * logging `TOPIC_ALREADY_EXISTS` as an error.
 *
 * @param admin a connected kafkajs admin client.
 * @param timeoutMs how long to wait for leaders, milliseconds.
 * @throws the last metadata error once `timeoutMs` passed, or a creation error other than "already exists".
 */
export async function ensureTopics(admin: Admin, topics: readonly ITopicConfig[], timeoutMs = 30_000): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length > 0) {
    try {
      await admin.createTopics({ waitForLeaders: false, topics: [...missing] });
    } catch (error) {
      // A racing creator (another origin, a test) is fine; anything else is not.
      const errors = (error as { errors?: { type?: string }[] }).errors;
      if (!errors?.every((e) => e.type === 'TOPIC_ALREADY_EXISTS')) throw error;
    }
  }
  const names = topics.map((t) => t.topic);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics: names });
      if (
        found.length === names.length &&
        found.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))
      ) {
        return;
      }
      if (Date.now() > deadline) throw new Error(`topics ${names.join(', ')} have no leaders after ${timeoutMs} ms`);
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
