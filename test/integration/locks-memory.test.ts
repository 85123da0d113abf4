import { memoryLockStore } from '../../origin/locks/memory.ts';
import { lockConformance } from '../conformance/locks.ts';

lockConformance('memory (in process)', () => memoryLockStore());
