/**
 * Collections of one open database: the {@link CollectionImpl} of each name
 * the app asked for in this tab, and the set of collections followed (feed
 * and live events), which is every collection any tab has opened, remembered
 * in IndexedDB from one `open` to the next.
 */
import { CollectionImpl, type CollectionHost } from "./collection.js";
import { collectionName } from "./ids.js";
import type { RecordRow } from "./records.js";
import type { CollectionName, JSONObject } from "./types.js";

/** Collections holds the open collections and the followed names. */
export class Collections {
  private readonly host: CollectionHost;
  private readonly open = new Map<string, CollectionImpl<JSONObject>>();
  private readonly followed = new Set<string>();

  constructor(host: CollectionHost) {
    this.host = host;
  }

  /**
   * get returns the collection of that name (the same object every time),
   * and whether this call made it. It throws an `invalid_id` error for a
   * name outside the protocol's pattern.
   */
  get(name: string): { col: CollectionImpl<JSONObject>; created: boolean } {
    let col = this.open.get(name);
    if (col) return { col, created: false };
    col = new CollectionImpl<JSONObject>(this.host, collectionName(name));
    this.open.set(name, col);
    return { col, created: true };
  }

  /** follow adds a collection to the followed ones; false when it already was. */
  follow(name: CollectionName | string): boolean {
    if (this.followed.has(name)) return false;
    this.followed.add(name);
    return true;
  }

  /** followedNames lists the followed collections, sorted. */
  followedNames(): string[] {
    return [...this.followed].sort();
  }

  /** put shows a record's new row in its collection's views (if the collection is open here). */
  put(row: RecordRow): void {
    this.open.get(row.collection)?.put(row);
  }

  /** remove drops a purged record from its collection's views. */
  remove(collection: string, id: string): void {
    this.open.get(collection)?.remove(id);
  }

  /** close ends every subscription. */
  close(): void {
    for (const c of this.open.values()) c.closeAll();
  }
}
