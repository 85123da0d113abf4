import { IncomingMessage } from 'node:http';
import type { Context } from 'hono';

/**
 * Reads a request body whose length the client declared straight from
 * Node's `IncomingMessage`, copying each chunk once into a single buffer of
 * that `Content-Length` (RFC 9110 §8.6). `@hono/node-server`'s
 * `arrayBuffer()` gathers the chunks, joins them and copies the result into
 * a new `ArrayBuffer`: two copies of every body.
 *
 * Node's HTTP parser ends the body at its declared length, so a body never
 * runs long; a short one (the client left before sending it all) rejects
 * with the stream's error, or `Client connection prematurely closed.` when
 * it closed without one, as `@hono/node-server` does; a body fully received
 * before the connection reset is still read, as there.
 * @param incoming the request, not yet read from.
 * @param length its declared `Content-Length`, bytes.
 * @returns a plain `Uint8Array` (not a `Buffer`) over its own `ArrayBuffer`, exactly `length` bytes.
 */
export function readDeclaredBody(incoming: IncomingMessage, length: number): Promise<Uint8Array<ArrayBuffer>> {
  // Not zero-filled, and its own ArrayBuffer (never a slice of Node's shared pool): every byte is written below.
  const body = new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
  if (length === 0 && incoming.readableEnded) return Promise.resolve(body);
  return new Promise((resolve, reject) => {
    let offset = 0;
    let settled = false;
    const copy = (chunk: Buffer): boolean => {
      if (offset + chunk.byteLength > length) return false;
      body.set(chunk, offset);
      offset += chunk.byteLength;
      return true;
    };
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
      if (error) reject(error);
      else resolve(body);
    };
    const onData = (chunk: Buffer) => {
      if (!copy(chunk)) finish(new Error(`Request body longer than its Content-Length (${length} bytes)`));
    };
    const onEnd = () =>
      finish(
        offset === length ? undefined : new Error(`Request body shorter than its Content-Length (${length} bytes)`),
      );
    // A body received whole before the connection reset is still in the stream's buffer: read it, as Hono does.
    const recovered = (): boolean => {
      if (!incoming.complete || !incoming.readableAborted) return false;
      for (let chunk = incoming.read() as Buffer | null; chunk !== null; chunk = incoming.read() as Buffer | null) {
        if (!copy(chunk)) return false;
      }
      return offset === length;
    };
    const onError = (error: Error) => {
      if ((error as NodeJS.ErrnoException).code === 'ECONNRESET' && recovered()) finish();
      else finish(error);
    };
    const onClose = () => {
      if (incoming.readableEnded || recovered()) finish();
      else finish(incoming.errored ?? new Error('Client connection prematurely closed.'));
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
    // Already over before these listeners: no event will come.
    queueMicrotask(() => {
      if (settled) return;
      if (incoming.readableEnded) onEnd();
      else if (incoming.errored) onError(incoming.errored);
      else if (incoming.destroyed) onClose();
    });
  });
}

/**
 * The body of a Hono request served by `@hono/node-server`, as bytes: read
 * with {@link readDeclaredBody} when its length is declared (no
 * `Transfer-Encoding`) and nothing has read it yet; otherwise — a chunked
 * body, which the body-size limit counts as it streams, or a request not
 * from Node's `http` — through `c.req.arrayBuffer()`. Same bytes and errors
 * either way; the size limit has already judged a declared length
 * (`valueSizeLimit`, `shared/http.ts`).
 * @param c the route's context; `@hono/node-server` puts the Node request at `c.env.incoming`.
 */
export async function requestBody(c: Context): Promise<Uint8Array<ArrayBuffer>> {
  const incoming = (c.env as { incoming?: unknown } | undefined)?.incoming;
  if (incoming instanceof IncomingMessage && !incoming.readableDidRead) {
    const declared = incoming.headers['content-length'];
    // Node's parser has refused a malformed or repeated Content-Length already; anything odd goes to Hono anyway.
    const length = declared !== undefined && /^[0-9]{1,15}$/.test(declared) ? Number(declared) : -1;
    if (length >= 0 && incoming.headers['transfer-encoding'] === undefined) return readDeclaredBody(incoming, length);
  }
  return new Uint8Array(await c.req.arrayBuffer());
}
