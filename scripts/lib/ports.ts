import { createServer } from 'node:net';

/**
 * Asks the kernel for a free TCP port on loopback.
 *
 * @returns a port number that was free a moment ago (a race with other
 *   processes is possible, which is why callers retry on EADDRINUSE).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not read the bound port'));
        return;
      }
      const { port } = address;
      server.close(() => resolve(port));
    });
  });
}

/** Several distinct free ports, e.g. for a Redis Cluster of six nodes. */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort(host));
  return [...ports];
}
