/**
 * Schema models shared between connections to the same QEMU: fetching and linking ~200 KB of schema
 * is done once per QEMU build, not once per connection. Keyed by version + package string (+ binary
 * path when the caller knows it); bounded so a long-lived process talking to many QEMUs does not grow.
 */
import type { QemuVersionInfo, SchemaModel } from './model.js';

export class SchemaCache {
  private readonly entries = new Map<string, Promise<SchemaModel>>();

  constructor(private readonly capacity = 8) {}

  static key(version: QemuVersionInfo, binary?: string): string {
    const v = version.qemu;
    return `${v.major}.${v.minor}.${v.micro}\u0000${version.package}\u0000${binary ?? ''}`;
  }

  /**
   * The cached model for `key`, or the result of `load` (cached unless it fails). When another
   * connection's load in progress fails (its QEMU hung, say), this caller loads through its own.
   */
  get(key: string, load: () => Promise<SchemaModel>): Promise<SchemaModel> {
    const hit = this.entries.get(key);
    if (hit) {
      // Most recently used last.
      this.entries.delete(key);
      this.entries.set(key, hit);
      // The failed entry is already gone (its own catch ran first): this starts a load of our own.
      return hit.catch(() => this.get(key, load));
    }
    const p = load();
    this.entries.set(key, p);
    p.catch(() => this.entries.delete(key));
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return p;
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}

/** The process-wide cache QemuClient uses unless given another. */
export const defaultSchemaCache = new SchemaCache();
