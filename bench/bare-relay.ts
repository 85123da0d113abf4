/**
 * The anchor of benchmark (l): the same hops as a write crossing from region
 * a to region b's purge stream, with bare clients and nothing of Strata's
 * (no validation, auth, store entry, versions, intents, metrics or logs).
 * Run as two processes, as the rig's origins are:
 *
 * - `node bench/bare-relay.ts forward <redis url> <brokers>`: a `node:http`
 *   server whose `POST /` appends the body to a Redis Stream (`XADD`) and
 *   answers 204 (the write); beside it, a loop reading that stream
 *   (`XREAD BLOCK`, from the end) and producing each entry to a topic with
 *   an idempotent kafkajs producer (`acks=all`), one send at a time.
 * - `node bench/bare-relay.ts apply <redis url> <brokers>`: a kafkajs
 *   consumer (long-poll, its own group) of that topic appending each record
 *   to another Redis Stream (`XADD`); beside it, a loop reading that stream
 *   (`XREAD BLOCK`) and writing each entry as a Server-Sent Event to every
 *   `GET /` response open on its `node:http` server.
 *
 * Each prints `ready <port>` once it reads. The topic is the bench's own (one
 * partition) and carries only the bench's records, so the consumer's fetch
 * always waits at the broker when one arrives: the best case of a plain
 * Kafka consumer, a lower bound for any relay through these proxies.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';

/** Stream the write appends to in the first region's Redis. */
const bareSourceStream = 'bench-bare:source';
/** Stream the relay appends to in the second region's Redis. */
const bareTargetStream = 'bench-bare:target';
/** The relay's topic. */
const bareTopic = 'bench-bare';

type StreamEntry = [id: string, fields: string[]];

/**
 * Reads `stream` from its start (the rig's Redis is new) on a connection of
 * its own (`XREAD BLOCK`), forever, handing each batch of entries to `onEntries`.
 */
async function followStream(
  redisUrl: string,
  stream: string,
  onEntries: (entries: StreamEntry[]) => Promise<void> | void,
): Promise<never> {
  const redis = new Redis(redisUrl);
  let last = '0-0';
  for (;;) {
    const reply = (await redis.xread('COUNT', 100, 'BLOCK', 1000, 'STREAMS', stream, last)) as
      | [string, StreamEntry[]][]
      | null;
    const entries = reply?.[0]?.[1] ?? [];
    if (entries.length === 0) continue;
    last = entries.at(-1)![0];
    await onEntries(entries);
  }
}

/** A `node:http` server on a free loopback port; resolves with the port. */
async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function forward(redisUrl: string, brokers: string): Promise<void> {
  const writer = new Redis(redisUrl);
  const port = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      writer.xadd(bareSourceStream, '*', 'v', Buffer.concat(chunks).toString()).then(
        () => res.writeHead(204).end(),
        () => res.writeHead(500).end(),
      );
    });
  });
  const kafka = new Kafka({ brokers: [brokers], clientId: 'bench-bare-forward', logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({ topic: bareTopic, acks: -1, messages: [{ value: 'warm-up' }] });
  process.stdout.write(`ready ${port}\n`);
  await followStream(redisUrl, bareSourceStream, async (entries) => {
    await producer.send({
      topic: bareTopic,
      acks: -1,
      messages: entries.map(([, fields]) => ({ value: fields[1] ?? '' })),
    });
  });
}

async function apply(redisUrl: string, brokers: string): Promise<void> {
  const redis = new Redis(redisUrl);
  const kafka = new Kafka({ brokers: [brokers], clientId: 'bench-bare-apply', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: bareTopic, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: `bench-bare-${Date.now()}` });
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined = true;
  });
  await consumer.connect();
  await consumer.subscribe({ topic: bareTopic, fromBeginning: false });
  await consumer.run({
    eachMessage: async ({ message }) => {
      await redis.xadd(bareTargetStream, '*', 'v', message.value?.toString() ?? '');
    },
  });
  const listeners = new Set<ServerResponse>();
  const port = await listen((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    listeners.add(res);
    req.on('close', () => listeners.delete(res));
  });
  void followStream(redisUrl, bareTargetStream, (entries) => {
    for (const [id, fields] of entries) for (const res of listeners) res.write(`id: ${id}\ndata: ${fields[1]}\n\n`);
  });
  while (!joined) await new Promise((r) => setTimeout(r, 20));
  process.stdout.write(`ready ${port}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [mode, redisUrl, brokers] = process.argv.slice(2);
  if (!redisUrl || !brokers || (mode !== 'forward' && mode !== 'apply')) {
    process.stderr.write('usage: node bench/bare-relay.ts forward|apply <redis url> <brokers>\n');
    process.exit(2);
  }
  (mode === 'forward' ? forward : apply)(redisUrl, brokers).catch((error: unknown) => {
    process.stderr.write(`bare relay (${mode}): ${error}\n`);
    process.exit(1);
  });
}
