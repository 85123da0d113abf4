import { memoryNamespaceVersions } from '../../origin/namespaces/versions.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import { evictionPolicies } from '../../shared/eviction/index.ts';
import { storeConformance } from '../conformance/store.ts';

const maxBytes = 64 * 1024 * 1024;

const versions = memoryNamespaceVersions();
for (const policy of evictionPolicies) {
  storeConformance(`embedded memory (${policy})`, () => memoryStore({ maxBytes, policy }), {
    namespaceVersions: () => versions,
  });
}

storeConformance('embedded memory behind the pass-through facade', () => passThroughStore(memoryStore({ maxBytes })), {
  tiered: (store) => store,
});
