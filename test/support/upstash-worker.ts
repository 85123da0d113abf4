/**
 * A Worker that runs {@link upstashScenario} with `@upstash/redis/cloudflare`
 * inside workerd: POST the scenario input as JSON, get the record back.
 * Bundled by {@link buildUpstashWorker} in `upstash-runtimes.ts`.
 */
import { Redis } from '@upstash/redis/cloudflare';
import { type UpstashScenarioInput, upstashScenario } from './upstash-scenario.ts';

export default {
  async fetch(request: Request): Promise<Response> {
    const input = (await request.json()) as UpstashScenarioInput;
    return Response.json(await upstashScenario(Redis, input));
  },
};
