import sortedBtree from 'sorted-btree';
import { namespaceOfStorageKey } from '../../shared/keys.ts';

type BTreeClass = typeof sortedBtree.default;
// sorted-btree is CommonJS with `exports.default`: Node hands an ES import the whole exports object, Vite's interop the class.
const BTree: BTreeClass =
  (sortedBtree as unknown as { default?: BTreeClass }).default ?? (sortedBtree as unknown as BTreeClass);
type Tree = InstanceType<typeof BTree<string, true>>;

/** Keys examined by one listing call, in order, and whether the range ended. */
export interface IndexRange {
  /** Keys after the cursor that start with the prefix, at most `count`, ascending. */
  readonly examined: readonly string[];
  /** True when no key with the prefix follows the last one examined. */
  readonly done: boolean;
}

/** The sorted keys of each namespace of the embedded store. */
export interface NamespaceKeyIndex {
  add(namespace: string, key: string): void;
  /** Removes the key of a composite storage key (`shared/keys.ts storageKey`). */
  remove(storage: string): void;
  /** Every key of the namespace starting with `prefix`, ascending. */
  withPrefix(namespace: string, prefix: string): string[];
  /**
   * Up to `count` keys starting with `prefix` and strictly after `after`
   * (null: from the start of the prefix), ascending: O(log n + count).
   */
  range(namespace: string, prefix: string, after: string | null, count: number): IndexRange;
  clear(): void;
}

/**
 * A B+ tree of keys per namespace (`sorted-btree`), kept beside the eviction
 * cache, so a listing or a prefix purge reads one range of one namespace
 * instead of walking every entry. Keys order by UTF-16 code units; keys
 * sharing a prefix are adjacent, which is all a range needs.
 */
export function namespaceKeyIndex(): NamespaceKeyIndex {
  const trees = new Map<string, Tree>();
  return {
    add(namespace, key) {
      let tree = trees.get(namespace);
      if (!tree) {
        tree = new BTree<string, true>();
        trees.set(namespace, tree);
      }
      tree.set(key, true);
    },
    remove(storage) {
      const namespace = namespaceOfStorageKey(storage);
      const tree = trees.get(namespace);
      if (!tree) return;
      tree.delete(storage.slice(namespace.length + 1));
      if (tree.size === 0) trees.delete(namespace);
    },
    withPrefix(namespace, prefix) {
      const found: string[] = [];
      const tree = trees.get(namespace);
      if (!tree) return found;
      for (const [key] of tree.entries(prefix)) {
        if (!key.startsWith(prefix)) break;
        found.push(key);
      }
      return found;
    },
    range(namespace, prefix, after, count) {
      const examined: string[] = [];
      const tree = trees.get(namespace);
      if (!tree) return { examined, done: true };
      const start = after !== null && after > prefix ? after : prefix;
      for (const [key] of tree.entries(start)) {
        if (after !== null && key <= after) continue;
        if (!key.startsWith(prefix)) return { examined, done: true };
        if (examined.length === count) return { examined, done: false };
        examined.push(key);
      }
      return { examined, done: true };
    },
    clear() {
      trees.clear();
    },
  };
}
