/**
 * Runs {@link upstashScenario} with `@upstash/redis` inside a `deno` process:
 * `deno run --allow-net test/support/upstash-deno.ts '<input JSON>'` prints
 * the record as one JSON line.
 */
import { Redis } from '@upstash/redis';
import { type UpstashScenarioInput, upstashScenario } from './upstash-scenario.ts';

declare const Deno: { readonly args: readonly string[] };

const input = JSON.parse(Deno.args[0]!) as UpstashScenarioInput;
console.log(JSON.stringify(await upstashScenario(Redis, input)));
