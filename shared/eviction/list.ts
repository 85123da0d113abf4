/** A node of an intrusive doubly linked list: the entry is its own link. */
export interface Linked<T extends Linked<T>> {
  prev: T | null;
  next: T | null;
}

/**
 * An intrusive doubly linked FIFO: push at the tail, take from the head,
 * unlink from anywhere, all O(1). The queues of S3-FIFO and the buckets of
 * LFU are made of it.
 */
export class LinkedQueue<T extends Linked<T>> {
  head: T | null = null;
  tail: T | null = null;
  length = 0;

  /** Appends `node` at the tail (the newest end). */
  push(node: T): void {
    node.prev = this.tail;
    node.next = null;
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    this.length++;
  }

  /** Links `node` right after `before` (at the head when `before` is null). */
  insertAfter(before: T | null, node: T): void {
    const after = before ? before.next : this.head;
    node.prev = before;
    node.next = after;
    if (before) before.next = node;
    else this.head = node;
    if (after) after.prev = node;
    else this.tail = node;
    this.length++;
  }

  /** Unlinks `node`, which must be in this queue. */
  unlink(node: T): void {
    if (node.prev) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.tail = node.prev;
    node.prev = null;
    node.next = null;
    this.length--;
  }

  /** Removes and returns the head (the oldest end), or null when empty. */
  shift(): T | null {
    const node = this.head;
    if (node) this.unlink(node);
    return node;
  }
}
