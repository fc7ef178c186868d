/**
 * Which group a front door's `model` names. Agents send their own model names
 * (Claude Code: `claude-sonnet-4-5`, `claude-haiku-…` for background work), so
 * `serve --model-map PATTERN=GROUP` maps them; `*` in a pattern matches any run
 * of characters. A group's own name always wins.
 */
import type { Group } from '../core/types.js';

export interface ModelMapping {
  pattern: string;
  group: string;
}

/** Parses `PATTERN=GROUP`; null when it has no `=` or an empty side. */
export function parseModelMapping(text: string): ModelMapping | null {
  const at = text.lastIndexOf('=');
  if (at <= 0 || at === text.length - 1) return null;
  return { pattern: text.slice(0, at).trim(), group: text.slice(at + 1).trim() };
}

export function resolveGroup(
  model: string,
  lookup: (name: string) => Group | undefined,
  mappings: readonly ModelMapping[],
): Group | undefined {
  const direct = lookup(model);
  if (direct) return direct;
  for (const mapping of mappings) {
    if (globMatches(mapping.pattern, model)) return lookup(mapping.group);
  }
  return undefined;
}

function globMatches(pattern: string, value: string): boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, 'i').test(value);
}
