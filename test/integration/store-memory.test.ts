import { memoryStore } from '../../origin/store/memory.ts';
import { evictionPolicies } from '../../shared/eviction/index.ts';
import { runStoreConformance } from './store-conformance.ts';

for (const policy of evictionPolicies) {
  runStoreConformance(`embedded memory (${policy})`, () => memoryStore({ maxBytes: 64 * 1024 * 1024, policy }));
}
