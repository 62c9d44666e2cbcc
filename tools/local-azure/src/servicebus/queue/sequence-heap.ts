// The order in which available messages are handed out: lowest sequence number first, per queue and per session.

/** Something ordered by sequence number. */
export interface Sequenced {
  readonly sequenceNumber: number;
}

/**
 * A binary min-heap by sequence number: the available messages of a queue or session, lowest
 * (oldest) first, so an abandoned message goes back to the head as in Service Bus. Entries that stop
 * being available are left in place and skipped by the caller when they surface (lazy deletion).
 */
export class SequenceHeap<T extends Sequenced> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]!.sequenceNumber <= item.sequenceNumber) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = item;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length && last !== undefined) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= items.length) break;
        const right = left + 1;
        const child = right < items.length && items[right]!.sequenceNumber < items[left]!.sequenceNumber ? right : left;
        if (items[child]!.sequenceNumber >= last.sequenceNumber) break;
        items[i] = items[child]!;
        i = child;
      }
      items[i] = last;
    }
    return top;
  }

  clear(): void {
    this.items.length = 0;
  }
}
