/**
 * The part of the `Deno` namespace the Deno adapter uses, for `tsc` (Deno
 * itself brings its own complete types and never loads this file). Only
 * `edge/adapters/deno/` may use these globals (biome.json).
 */
declare namespace Deno {
  interface ServeOptions {
    port?: number;
    hostname?: string;
    onListen?: (address: { hostname: string; port: number }) => void;
  }
  interface HttpServer {
    shutdown(): Promise<void>;
    readonly finished: Promise<void>;
  }
  const env: { toObject(): Record<string, string> };
  function serve(options: ServeOptions, handler: (request: Request) => Response | Promise<Response>): HttpServer;
  function addSignalListener(signal: 'SIGINT' | 'SIGTERM', handler: () => void): void;
  function exit(code?: number): never;
  function hostname(): string;
  const permissions: {
    querySync(descriptor: { name: 'sys'; kind: 'hostname' }): { readonly state: 'granted' | 'denied' | 'prompt' };
  };
}
