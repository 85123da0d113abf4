import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type Socket } from 'node:net';

/** A TCP proxy on a free loopback port that a test can cut and restore, to simulate a network partition. */
export interface CuttableProxy {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** Destroys every open connection and refuses new ones until {@link CuttableProxy.restore}. */
  cut(): void;
  /** Accepts connections again. */
  restore(): void;
  /**
   * Silently stops forwarding on every open connection without closing it (a
   * half-dead peer: no FIN, no RST, no bytes); new connections work normally.
   */
  stallExisting(): void;
  /**
   * A dead network: stalls every open connection ({@link CuttableProxy.stallExisting})
   * and accepts new ones without ever forwarding a byte or closing them,
   * until {@link CuttableProxy.restore}.
   */
  blackhole(): void;
  /** Points new connections at another port and drops the open ones (a failover behind a fixed address). */
  retarget(port: number): void;
  close(): Promise<void>;
}

/** Starts a proxy to `targetPort` on 127.0.0.1. */
export async function cuttableProxy(initialPort: number): Promise<CuttableProxy> {
  let targetPort = initialPort;
  const sockets = new Set<Socket>();
  const pairs = new Set<[Socket, Socket]>();
  let open = true;
  let silent = false;
  const server: Server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    if (silent) {
      // Held open, never answered: what a client sees behind a dead link.
      sockets.add(client);
      client.pause();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.on('close', () => pairs.delete(pair));
  });
  const stallExisting = () => {
    for (const [client, upstream] of pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      upstream.pause();
      client.pause();
    }
    pairs.clear();
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    retarget(port) {
      targetPort = port;
      for (const s of sockets) s.destroy();
      sockets.clear();
      pairs.clear();
    },
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      open = true;
      silent = false;
    },
    blackhole() {
      silent = true;
      stallExisting();
    },
    stallExisting,
    async close() {
      open = false;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
