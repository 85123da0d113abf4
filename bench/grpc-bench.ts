import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { GetRequestSchema, GetResponseSchema } from '../gen/strata/cache/v1/cache_pb.js';
import { type BenchRow, fmt, load } from './load.ts';
import { startProcess } from './procs.ts';

/** gRPC-web framing of one message: flags 0, 4-byte big-endian length. */
export function frame(message: Uint8Array): Buffer<ArrayBuffer> {
  const out = Buffer.alloc(5 + message.byteLength);
  out.writeUInt32BE(message.byteLength, 1);
  out.set(message, 5);
  return out;
}

/**
 * gRPC-web `Get` on a store hit against REST `GET` of the same key on the
 * same origin process, in the same run (issue 5's benchmark).
 *
 * Method: one origin in its own process (its store is whatever the
 * environment configures: Redis with `REDIS_URL`, else the embedded memory
 * store; the row names it). A 1 KiB value is written, then autocannon drives
 * each endpoint for `durationSeconds` with `connections` keep-alive HTTP/1.1
 * connections after a 1 s warm-up: REST as `GET /api/v1/cache/bench/grpc-hot`,
 * gRPC-web as `POST /strata.cache.v1.CacheService/Get` with a pre-encoded
 * gRPC-web frame (`application/grpc-web+proto`) — the bytes the generated
 * client sends, without the client's own CPU in the measurement. One call is
 * decoded first to check it answers `found` with the value (gRPC-web answers
 * HTTP 200 even for errors, so autocannon alone could not tell).
 *
 * @returns one row: gRPC-web req/s and p99 (ms) as the subject, REST as the
 * baseline, and the throughput ratio as the result. No target is set (n/a).
 */
export async function grpcBenchmarks(options: { durationSeconds: number; connections: number }): Promise<BenchRow[]> {
  const valueBytes = 1024;
  const origin = await startProcess('origin/main.ts', 'ORIGIN_PORT');
  try {
    const put = await fetch(`${origin.url}/api/v1/cache/bench/grpc-hot?ttl=3600`, {
      method: 'PUT',
      body: new Uint8Array(valueBytes),
    });
    if (!put.ok) throw new Error(`PUT failed: ${put.status}`);
    const store = ((await (await fetch(`${origin.url}/ready`)).json()) as { store?: string }).store ?? 'unknown';

    const body = frame(toBinary(GetRequestSchema, create(GetRequestSchema, { namespace: 'bench', key: 'grpc-hot' })));
    const rpcUrl = `${origin.url}/strata.cache.v1.CacheService/Get`;
    const headers = { 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1' };
    const check = Buffer.from(await (await fetch(rpcUrl, { method: 'POST', headers, body })).arrayBuffer());
    const reply = fromBinary(GetResponseSchema, check.subarray(5, 5 + check.readUInt32BE(1)));
    if (!reply.found || reply.value.byteLength !== valueBytes)
      throw new Error('gRPC-web Get did not hit the stored value');

    const rest = await load({ url: `${origin.url}/api/v1/cache/bench/grpc-hot` }, origin, options);
    const grpcWeb = await load({ url: rpcUrl, method: 'POST', headers, body }, origin, options);
    const ratio = grpcWeb.rps / rest.rps;
    return [
      {
        benchmark: `(h) gRPC-web Get vs REST GET, origin ${store} hit, 1 KiB value`,
        subject: `gRPC-web: ${fmt(grpcWeb.rps)} req/s, p99 ${fmt(grpcWeb.p99Ms, 1)} ms, ${fmt(grpcWeb.cpuUsPerReq, 1)} µs CPU/req, ${grpcWeb.errors} errors`,
        baseline: `REST: ${fmt(rest.rps)} req/s, p99 ${fmt(rest.p99Ms, 1)} ms, ${fmt(rest.cpuUsPerReq, 1)} µs CPU/req, ${rest.errors} errors`,
        result: `${fmt(100 * ratio, 1)}% of REST throughput`,
        target: 'reported (no target set)',
        met: 'n/a',
      },
    ];
  } finally {
    await origin.stop();
  }
}
