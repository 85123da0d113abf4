import { memoryStore } from '../../origin/store/memory.ts';
import { runStoreConformance } from './store-conformance.ts';

runStoreConformance('embedded memory', () => memoryStore({ maxBytes: 64 * 1024 * 1024 }));
