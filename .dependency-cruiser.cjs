/**
 * Allowed imports between Strata's folders, checked on resolved paths (so a
 * `../../origin/x.ts` or a re-export through another folder is caught). The
 * table this encodes, with the reasons, is in docs/architecture.md; Biome
 * checks the same rules on import specifiers (biome.json overrides).
 *
 * Run by `npm run lint`.
 */

/** Project folders that are not production code: scripts, benchmarks and tests may import anything. */
const tooling = 'scripts|bench|test';

/** A rule that forbids `from` to import any module under `to` (regular expressions on paths from the root). */
const forbid = (name, comment, from, to) => ({
  name,
  comment,
  severity: 'error',
  from: { path: from },
  to: { path: to },
});

/** Node-only npm packages, kept out of runtime-free code like node: built-ins. */
const nodeOnlyPackages =
  '^node_modules/(pino|prom-client|@hono/node-server|ioredis|kafkajs|@connectrpc/connect-node|@opentelemetry/sdk-trace-node|@opentelemetry/exporter-trace-otlp-http)/';

/** Runtime-free code: shared/ and every part of edge/ except the Node adapter. */
const runtimeFree = '^(shared/|edge/(?!adapters/node/))';

module.exports = {
  forbidden: [
    forbid(
      'shared-imports-only-shared',
      'shared/ imports nothing of ours outside shared/.',
      '^shared/',
      `^(edge|origin|platform|client|gen|${tooling})/`,
    ),
    forbid(
      'edge-core-imports-only-shared',
      'edge/core/ (tier, edge cache, coalescer, purge ledger) imports only shared/.',
      '^edge/core/',
      `^(edge/(?!core/)|(origin|platform|client|gen|${tooling})/)`,
    ),
    forbid(
      'edge-is-runtime-free',
      'edge/ outside its adapters imports shared/ and edge/ (not the adapters), no platform code.',
      '^edge/(?!adapters/)',
      `^(edge/adapters/|(origin|platform|client|gen|${tooling})/)`,
    ),
    forbid(
      'edge-adapters-never-import-origin',
      'An edge adapter adds only its own runtime platform folder.',
      '^edge/adapters/',
      `^(origin|client|gen|${tooling})/`,
    ),
    forbid(
      'workers-adapter-has-no-node-platform',
      'The Workers adapter imports no Node platform code or the Node adapter.',
      '^edge/adapters/workers/',
      '^(platform/|edge/adapters/(?!workers/))',
    ),
    forbid(
      'deno-adapter-has-no-node-platform',
      'The Deno adapter imports no Node platform code or another runtime adapter.',
      '^edge/adapters/deno/',
      '^(platform/|edge/adapters/(?!deno/))',
    ),
    forbid(
      'node-adapter-stays-in-its-runtime',
      'The Node adapter imports no other runtime adapter.',
      '^edge/adapters/node/',
      '^edge/adapters/(?!node/)',
    ),
    forbid(
      'platform-imports-only-shared',
      'platform/node/ imports shared/ and itself only.',
      '^platform/',
      `^(edge|origin|client|gen|${tooling})/`,
    ),
    forbid(
      'origin-never-imports-edge',
      'origin/ imports shared/, platform/node/ and gen/.',
      '^origin/',
      `^(edge|client|${tooling})/`,
    ),
    forbid(
      'client-imports-only-shared-and-gen',
      'client/ imports shared/ and the generated protobuf code in gen/.',
      '^client/',
      `^(edge|origin|platform|${tooling})/`,
    ),
    forbid(
      'gen-imports-nothing-of-ours',
      'gen/ is generated from proto/ and imports only packages.',
      '^gen/',
      `^(edge|origin|platform|client|shared|${tooling})/`,
    ),
    {
      name: 'no-node-builtins-in-runtime-free-code',
      comment: 'shared/ and the edge (all but its Node adapter) run on Workers too: no node: modules.',
      severity: 'error',
      from: { path: runtimeFree },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'no-node-only-packages-in-runtime-free-code',
      comment: 'shared/ and the edge (all but its Node adapter) run on Workers too: no Node-only packages.',
      severity: 'error',
      from: { path: runtimeFree },
      to: { path: nodeOnlyPackages },
    },
    {
      name: 'edge-client-platform-never-reach-origin',
      comment: 'Not even through a chain of imports or re-exports.',
      severity: 'error',
      from: { path: '^(edge|client|platform)/' },
      to: { path: '^origin/', reachable: true },
    },
    {
      name: 'origin-never-reaches-edge',
      comment: 'Not even through a chain of imports or re-exports.',
      severity: 'error',
      from: { path: '^origin/' },
      to: { path: '^edge/', reachable: true },
    },
    {
      name: 'no-unresolvable-imports',
      comment: 'An import that does not resolve could hide a forbidden one.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // Type-only imports count: a type from origin/ in edge/ couples them just the same.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    // Packages' subpath exports (hono/streaming, @bufbuild/protobuf/codegenv2) resolve as Node resolves them.
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types'],
    },
    exclude: { path: '(^|/)(dist|\\.cache|\\.services)/' },
  },
};
