/**
 * The live set of groups a server answers for. Profile reloads replace one
 * group at a time; a bad edit never reaches here (the last good version stays).
 */
import type { Group } from '../core/types.js';

export class GroupRegistry {
  readonly #groups = new Map<string, Group>();

  constructor(groups: Iterable<Group> = []) {
    for (const group of groups) this.#groups.set(group.name, group);
  }

  get(name: string): Group | undefined {
    return this.#groups.get(name);
  }

  set(group: Group): void {
    this.#groups.set(group.name, group);
  }

  delete(name: string): boolean {
    return this.#groups.delete(name);
  }

  /** Group names in a stable (sorted) order. */
  names(): string[] {
    return [...this.#groups.keys()].sort();
  }

  all(): Group[] {
    return this.names().map((n) => this.#groups.get(n)!);
  }
}
