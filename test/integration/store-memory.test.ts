import { memoryNamespaceVersions } from '../../origin/namespaces/versions.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import { storeConformance } from '../conformance/store.ts';

const maxBytes = 64 * 1024 * 1024;

const versions = memoryNamespaceVersions();
storeConformance('embedded memory', () => memoryStore({ maxBytes }), { namespaceVersions: () => versions });

storeConformance('embedded memory behind the pass-through facade', () => passThroughStore(memoryStore({ maxBytes })), {
  tiered: (store) => store,
});
