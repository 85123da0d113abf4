/**
 * A real single-node Apache Kafka broker (KRaft combined mode, no ZooKeeper)
 * for `npm run services -- up kafka` and the test harness.
 *
 * The broker's jars come from Maven Central through `scripts/kafka/pom.xml`
 * and are cached outside git in `.cache/kafka/<version>/libs`; later starts
 * reuse that cache and only launch the JVM (a few seconds on 2 cores).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { freePorts } from '../lib/ports.ts';
import { ensureDebianCommand, spawnServer, stopPid, waitFor } from '../lib/proc.ts';
import type { RunningService, StartOptions } from './types.ts';

/** Kafka release started by default: 3.9.x is the last line kafkajs 2.x speaks. */
export const KAFKA_VERSION = '3.9.1';

const root = resolve(import.meta.dirname, '../..');
const pomFile = join(root, 'scripts', 'kafka', 'pom.xml');
/** Written inside the libs folder once every jar has been copied. */
const MARKER = '.complete';
/** The line KafkaRaftServer logs (at INFO, see {@link log4jProperties}) once the broker serves clients. */
const STARTED_LINE = 'Kafka Server started';

/** Small heap and a single-threaded collector: this runs beside the tests on a 2-core machine. */
const JVM_ARGS = [
  '-Xms256m',
  '-Xmx512m',
  '-XX:+UseSerialGC',
  '-XX:+ExitOnOutOfMemoryError',
  '-Djava.awt.headless=true',
];

/**
 * One more client listener on 127.0.0.1 beside the PLAINTEXT one the other
 * clients use: `SASL_PLAINTEXT` with SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN
 * for the given user, or a `PLAINTEXT` listener that advertises another
 * address (a proxy in front of the broker, as the multi-region rig does).
 */
export interface KafkaExtraListener {
  /** Listener name: upper-case letters, digits and `_` (e.g. `SASL`, `REGION_A`). */
  readonly name: string;
  readonly protocol: 'PLAINTEXT' | 'SASL_PLAINTEXT';
  /** `host:port` advertised to clients; default the listener's own `127.0.0.1:port`. */
  readonly advertised?: string;
  /** With `SASL_PLAINTEXT`: the one user, created as a SCRAM credential (both hashes) and a PLAIN user. */
  readonly user?: { readonly username: string; readonly password: string };
}

export interface KafkaStartOptions extends StartOptions {
  /** Kafka release to fetch and run; defaults to {@link KAFKA_VERSION}. */
  version?: string;
  /** Client listeners beyond the PLAINTEXT one; each gets its own free port. */
  extraListeners?: readonly KafkaExtraListener[];
  /** Milliseconds to wait for the broker to answer after each JVM start; defaults to 60 000. */
  readyTimeoutMs?: number;
}

export interface RunningKafka extends RunningService {
  /** Bootstrap address for clients, `127.0.0.1:PORT`. */
  readonly brokers: string;
  /** PLAINTEXT (client) port on 127.0.0.1. */
  readonly port: number;
  /** KRaft controller port on 127.0.0.1 (internal to the broker). */
  readonly controllerPort: number;
  /** Port of each extra listener, by name ({@link KafkaStartOptions.extraListeners}). */
  readonly listenerPorts: Readonly<Record<string, number>>;
  /** The current JVM's pid, empty while it is stopped (a getter: it changes on restart). */
  readonly pids: number[];
  /** True while the broker JVM is running. */
  readonly running: boolean;
  /**
   * Stops the JVM but keeps its ports reserved in the config and its data on
   * disk, so {@link RunningKafka.start} brings the same broker back.
   * Graceful (SIGTERM, then SIGKILL after 15 s) unless `hard`, which sends
   * SIGKILL at once to simulate a crash. Resolves once the process has exited;
   * a no-op when it is already stopped.
   */
  kill(hard?: boolean): Promise<void>;
  /**
   * Starts the JVM again on the same ports and log dir and waits until it
   * answers. A no-op while it is running. Rejects when a port has been taken
   * meanwhile or the broker does not answer within `readyTimeoutMs`.
   */
  start(): Promise<void>;
  /** {@link RunningKafka.kill} (graceful) then {@link RunningKafka.start}: data survives. */
  restart(): Promise<void>;
  /** Stops the JVM for good (graceful, escalating to SIGKILL). The data dir is left in place. */
  stop(): Promise<void>;
}

/** The folder holding the jars of `version`, e.g. `<repo>/.cache/kafka/3.9.1/libs`. */
export function kafkaLibsDir(version = KAFKA_VERSION): string {
  return join(root, '.cache', 'kafka', version, 'libs');
}

/** Runs a command, its output on our stderr (stdout is kept for `KEY=value` lines). Rejects on a non-zero exit. */
async function run(command: string, args: string[], cwd: string): Promise<void> {
  await new Promise<void>((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 2, 2] });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`})`));
    });
  });
}

/**
 * Makes sure the jars of Kafka `version` (kafka_2.13 plus runtime deps and a
 * log4j binding) are in {@link kafkaLibsDir}, fetching them with Maven once.
 * Installs Java and Maven with apt-get when missing.
 *
 * Safe to call from several processes at once: each copies into its own temp
 * folder and renames it into place; the folder only counts once its marker exists.
 *
 * @returns the libs folder.
 * @throws when Maven cannot resolve the artifacts (no network to Maven Central, unknown version).
 */
export async function ensureKafkaLibs(version = KAFKA_VERSION): Promise<string> {
  const libs = kafkaLibsDir(version);
  if (existsSync(join(libs, MARKER))) return libs;
  ensureDebianCommand('java', ['default-jre-headless']);
  ensureDebianCommand('mvn', ['maven']);
  const parent = resolve(libs, '..');
  mkdirSync(parent, { recursive: true });
  const temp = join(parent, `libs.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  process.stderr.write(`strata: fetching Apache Kafka ${version} jars from Maven Central into ${libs} (once)\n`);
  try {
    await run(
      'mvn',
      [
        '-q',
        '-B',
        '-f',
        pomFile,
        `-Dkafka.version=${version}`,
        'dependency:copy-dependencies',
        '-DincludeScope=runtime',
        `-DoutputDirectory=${temp}`,
      ],
      parent,
    );
    writeFileSync(join(temp, MARKER), `kafka ${version}\n`);
    if (existsSync(join(libs, MARKER))) return libs; // another process won the race
    rmSync(libs, { recursive: true, force: true }); // a half-made folder from elsewhere
    renameSync(temp, libs);
  } catch (error) {
    if (existsSync(join(libs, MARKER))) return libs;
    throw new Error(
      `could not fetch Kafka ${version} with Maven (${error instanceof Error ? error.message : String(error)})`,
    );
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
  return libs;
}

/**
 * A random Kafka cluster id: 16 random bytes, base64url without padding, as
 * `kafka.tools.StorageTool random-uuid` makes (never starting with '-').
 */
export function randomClusterId(): string {
  for (;;) {
    const bytes = randomBytes(16);
    const id = bytes.toString('base64url');
    if (!id.startsWith('-') && bytes.some((b) => b !== 0)) return id;
  }
}

/**
 * `server.properties` for one combined broker+controller on loopback, with
 * data under `dataDir`, and `extra` client listeners on the given ports.
 * SASL listeners enable SCRAM-SHA-256, SCRAM-SHA-512 (KIP-554 credentials,
 * created at format time) and PLAIN (the JAAS user list).
 */
export function kafkaServerProperties(
  port: number,
  controllerPort: number,
  dataDir: string,
  extra: readonly (KafkaExtraListener & { port: number })[] = [],
): string {
  const listenerRe = /^[A-Z][A-Z0-9_]*$/;
  for (const l of extra) {
    if (!listenerRe.test(l.name) || ['PLAINTEXT', 'CONTROLLER'].includes(l.name))
      throw new Error(`kafka listener name ${l.name} must be upper-case and not PLAINTEXT or CONTROLLER`);
  }
  const saslProps: Record<string, string> = {};
  for (const l of extra.filter((x) => x.protocol === 'SASL_PLAINTEXT')) {
    if (!l.user) throw new Error(`kafka listener ${l.name} is SASL_PLAINTEXT and needs a user`);
    const prefix = `listener.name.${l.name.toLowerCase()}`;
    const { username, password } = l.user;
    saslProps[`${prefix}.sasl.enabled.mechanisms`] = 'SCRAM-SHA-256,SCRAM-SHA-512,PLAIN';
    saslProps[`${prefix}.scram-sha-256.sasl.jaas.config`] =
      'org.apache.kafka.common.security.scram.ScramLoginModule required;';
    saslProps[`${prefix}.scram-sha-512.sasl.jaas.config`] =
      'org.apache.kafka.common.security.scram.ScramLoginModule required;';
    saslProps[`${prefix}.plain.sasl.jaas.config`] =
      `org.apache.kafka.common.security.plain.PlainLoginModule required user_${username}="${password}";`;
  }
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: [
      `PLAINTEXT://127.0.0.1:${port}`,
      `CONTROLLER://127.0.0.1:${controllerPort}`,
      ...extra.map((l) => `${l.name}://127.0.0.1:${l.port}`),
    ].join(','),
    'advertised.listeners': [
      `PLAINTEXT://127.0.0.1:${port}`,
      ...extra.map((l) => `${l.name}://${l.advertised ?? `127.0.0.1:${l.port}`}`),
    ].join(','),
    'listener.security.protocol.map': [
      'PLAINTEXT:PLAINTEXT',
      'CONTROLLER:PLAINTEXT',
      ...extra.map((l) => `${l.name}:${l.protocol}`),
    ].join(','),
    ...saslProps,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'log.dirs': dataDir,
    'num.partitions': 3,
    'auto.create.topics.enable': true,
    'offsets.topic.replication.factor': 1,
    // 5 instead of 50: a group's first join creates __consumer_offsets, which is faster with fewer partitions.
    'offsets.topic.num.partitions': 5,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 5,
    'group.initial.rebalance.delay.ms': 0,
    // Lets tests that kill a consumer or bounce the broker use sessions shorter than the 6 s default minimum:
    // a dead member holds its group's rebalance until its session lapses.
    'group.min.session.timeout.ms': 1_000,
    // After a crash (SIGKILL) the restarted controller keeps the old broker registration alive for one
    // session, and the new broker cannot register until it lapses: 4 s instead of 9 s (heartbeat 1 s, not 2 s).
    'broker.session.timeout.ms': 4_000,
    'broker.heartbeat.interval.ms': 1_000,
    // Fewer threads than the defaults (3 network, 8 I/O): 2 cores.
    'num.network.threads': 2,
    'num.io.threads': 4,
  };
  return `${Object.entries(props)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

/** Log4j 1 (reload4j) config: WARN to stdout, plus the INFO line that says the broker started. */
function log4jProperties(): string {
  return [
    'log4j.rootLogger=WARN, stdout',
    'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
    'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka.Kafka=INFO',
    'log4j.logger.kafka.server.KafkaRaftServer=INFO',
    '',
  ].join('\n');
}

/** Text appended to `file` since byte `from` (at most the last 64 KiB). */
function readFrom(file: string, from: number): string {
  if (!existsSync(file)) return '';
  const size = statSync(file).size;
  const start = Math.max(from, size - 65_536);
  if (size <= start) return '';
  const buffer = Buffer.alloc(size - start);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buffer, 0, buffer.length, start);
  } finally {
    closeSync(fd);
  }
  return buffer.toString('utf8');
}

/** True once the broker answers a Metadata request (kafkajs admin `listTopics`). */
async function answers(brokers: string): Promise<boolean> {
  const admin = new Kafka({
    clientId: 'strata-services',
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 2_000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return true;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

interface Jvm {
  child: ChildProcess;
  pid: number;
  exited: Promise<void>;
  hasExited: () => boolean;
  exitReason: () => string;
}

/**
 * Starts a single-node Kafka broker in KRaft combined mode (broker and
 * controller in one JVM) on two free loopback ports: PLAINTEXT for clients
 * and CONTROLLER for the quorum. Fetches the jars with Maven on first use
 * (see {@link ensureKafkaLibs}), formats the storage in `options.dir/data`
 * with `kafka.tools.StorageTool`, starts `kafka.Kafka`, and resolves once the
 * broker has logged that it started and answers a kafkajs `listTopics()`.
 *
 * Files in `options.dir`: `server.properties`, `log4j.properties`, `kafka.log`
 * (JVM output, appended across restarts) and `data/` (topic and metadata logs).
 *
 * @returns the broker, with `env` = `{ KAFKA_BROKERS: '127.0.0.1:PORT' }`.
 * @throws when Java/Maven cannot be installed, the jars cannot be fetched,
 *   storage formatting fails, or the broker exits or does not answer within
 *   `readyTimeoutMs` (the error includes the tail of `kafka.log`). A port taken
 *   by a racing process is retried with new ports, up to 3 times.
 */
export async function startKafka(options: KafkaStartOptions): Promise<RunningKafka> {
  const version = options.version ?? KAFKA_VERSION;
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  ensureDebianCommand('java', ['default-jre-headless']);
  const libs = await ensureKafkaLibs(version);
  const dir = resolve(options.dir);
  const dataDir = join(dir, 'data');
  const configFile = join(dir, 'server.properties');
  const log4jFile = join(dir, 'log4j.properties');
  const logFile = join(dir, 'kafka.log');
  mkdirSync(dir, { recursive: true });
  writeFileSync(log4jFile, log4jProperties());
  const classpath = `${libs}/*`;
  const jvmArgs = [...JVM_ARGS, `-Dlog4j.configuration=file:${log4jFile}`, `-Dkafka.logs.dir=${dir}`, '-cp', classpath];

  let port = 0;
  let controllerPort = 0;
  let listenerPorts: Record<string, number> = {};
  const extraListeners = options.extraListeners ?? [];
  let jvm: Jvm | undefined;

  const launch = async (): Promise<void> => {
    const logOffset = existsSync(logFile) ? statSync(logFile).size : 0;
    const server = spawnServer('java', [...jvmArgs, 'kafka.Kafka', configFile], {
      logFile,
      detached: options.detached,
      cwd: dir,
    });
    let exitInfo: string | undefined;
    const exited = new Promise<void>((done) => {
      server.child.once('exit', (code, signal) => {
        exitInfo = signal ?? `exit code ${code}`;
        done();
      });
    });
    const current: Jvm = {
      child: server.child,
      pid: server.pid,
      exited,
      hasExited: () => exitInfo !== undefined,
      exitReason: () => exitInfo ?? 'running',
    };
    jvm = current;
    const brokers = `127.0.0.1:${port}`;
    try {
      await waitFor(
        `Kafka broker on ${brokers}`,
        async () =>
          current.hasExited() || (readFrom(logFile, logOffset).includes(STARTED_LINE) && (await answers(brokers))),
        readyTimeoutMs,
        200,
      );
    } catch (error) {
      await stopJvm(current, false);
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}\n${readFrom(logFile, logOffset).slice(-3_000)}`,
      );
    }
    if (current.hasExited()) {
      if (jvm === current) jvm = undefined;
      const log = readFrom(logFile, logOffset);
      const error = new Error(`Kafka broker exited during start-up (${current.exitReason()}):\n${log.slice(-3_000)}`);
      if (/Address already in use|BindException/.test(log)) Object.assign(error, { code: 'EADDRINUSE' });
      throw error;
    }
  };

  const stopJvm = async (target: Jvm, hard: boolean): Promise<void> => {
    if (!target.hasExited()) {
      if (hard) {
        target.child.kill('SIGKILL');
      } else {
        await stopPid(target.pid, 15_000);
      }
      // stopPid returns right after a SIGKILL; wait for the exit so the ports are free again.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([target.exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
      clearTimeout(timer);
    }
    if (jvm === target) jvm = undefined;
  };

  // First start: fresh ports (retrying when another process grabs one), format, launch.
  const clusterId = randomClusterId();
  for (let attempt = 1; ; attempt++) {
    const ports = await freePorts(2 + extraListeners.length);
    port = ports[0]!;
    controllerPort = ports[1]!;
    const extra = extraListeners.map((l, i) => ({ ...l, port: ports[2 + i]! }));
    listenerPorts = Object.fromEntries(extra.map((l) => [l.name, l.port]));
    writeFileSync(configFile, kafkaServerProperties(port, controllerPort, dataDir, extra));
    if (!existsSync(join(dataDir, 'meta.properties'))) {
      // SCRAM credentials go into the cluster metadata at format time (KIP-900), before any broker runs.
      const scram = extra.flatMap((l) =>
        l.user
          ? ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((m) => [
              '--add-scram',
              `${m}=[name=${l.user!.username},password=${l.user!.password}]`,
            ])
          : [],
      );
      await run(
        'java',
        [...jvmArgs, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', configFile, ...scram],
        dir,
      ).catch((error: unknown) => {
        throw new Error(
          `kafka storage format failed in ${dataDir}: ${error instanceof Error ? error.message : String(error)}`,
        );
      });
    }
    try {
      await launch();
      break;
    } catch (error) {
      const inUse = (error as { code?: string }).code === 'EADDRINUSE';
      if (!inUse || attempt >= 3) throw error;
      process.stderr.write(`strata: kafka port ${port} or ${controllerPort} was taken; retrying with new ports\n`);
    }
  }

  const brokers = `127.0.0.1:${port}`;
  const kill = async (hard = false): Promise<void> => {
    if (jvm) await stopJvm(jvm, hard);
  };
  const start = async (): Promise<void> => {
    if (jvm && !jvm.hasExited()) return;
    await launch();
  };
  return {
    name: 'kafka',
    env: { KAFKA_BROKERS: brokers },
    get pids(): number[] {
      return jvm && !jvm.hasExited() ? [jvm.pid] : [];
    },
    get running(): boolean {
      return jvm !== undefined && !jvm.hasExited();
    },
    dir,
    brokers,
    port,
    controllerPort,
    listenerPorts,
    kill,
    start,
    restart: async () => {
      await kill(false);
      await start();
    },
    stop: () => kill(false),
  };
}
