/**
 * Cross-field rules, each small and named. They read the raw document
 * defensively so that they can report alongside schema problems.
 */
import { closest, distance } from 'fastest-levenshtein';

export interface RuleProblem {
  path: (string | number)[];
  message: string;
}

interface LooseNode {
  name?: unknown;
  address?: unknown;
  role?: unknown;
}

function nodesOf(raw: unknown): LooseNode[] {
  const nodes = (raw as { nodes?: unknown } | null)?.nodes;
  return Array.isArray(nodes) ? nodes.map((n) => (n && typeof n === 'object' ? (n as LooseNode) : {})) : [];
}

/** "did you mean" text when a near name exists. */
export function suggestion(word: string, candidates: readonly string[]): string {
  if (candidates.length === 0) return '';
  const near = closest(word, [...candidates]);
  return distance(word, near) <= Math.max(2, Math.floor(word.length / 3)) ? `; did you mean "${near}"?` : '';
}

function uniqueField(raw: unknown, field: 'name' | 'address'): RuleProblem[] {
  const seen = new Map<string, number>();
  const problems: RuleProblem[] = [];
  nodesOf(raw).forEach((node, i) => {
    const value = node[field];
    if (typeof value !== 'string') return;
    const key = field === 'address' ? value.toLowerCase() : value;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, i);
    else problems.push({ path: ['nodes', i, field], message: `"${value}" is already used by nodes[${first}]; every node needs a unique ${field}` });
  });
  return problems;
}

function atLeastOneServer(raw: unknown): RuleProblem[] {
  const nodes = nodesOf(raw);
  if (nodes.length === 0 || nodes.some((n) => n.role === 'server')) return [];
  return [{ path: ['nodes'], message: 'no node has role "server"; k3s needs at least one server (set role: server on one node)' }];
}

function builderExists(raw: unknown): RuleProblem[] {
  const builder = (raw as { images?: { builder?: unknown } } | null)?.images?.builder;
  if (typeof builder !== 'string') return [];
  const nodes = nodesOf(raw);
  const match = nodes.find((n) => n.name === builder);
  const names = nodes.map((n) => n.name).filter((n): n is string => typeof n === 'string');
  if (!match) {
    return [{ path: ['images', 'builder'], message: `names no node: "${builder}" is not in nodes${suggestion(builder, names)}` }];
  }
  if (match.role !== 'builder') {
    return [{ path: ['images', 'builder'], message: `"${builder}" has role "${String(match.role)}"; the builder must be a node with role "builder"` }];
  }
  return [];
}

/** Keys armlab sets itself in config.yaml; letting k3s.config override them would break joins. */
export const MANAGED_K3S_KEYS = ['node-name', 'node-label', 'server', 'token', 'token-file', 'agent-token', 'cluster-init'];

function k3sConfigLeavesManagedKeys(raw: unknown): RuleProblem[] {
  const config = (raw as { k3s?: { config?: unknown } } | null)?.k3s?.config;
  if (!config || typeof config !== 'object') return [];
  return Object.keys(config)
    .filter((k) => MANAGED_K3S_KEYS.includes(k))
    .map((k) => ({
      path: ['k3s', 'config', k],
      message: k === 'node-label' ? 'is set by armlab from nodes[].labels; put labels there' : 'is set by armlab (node names, joins and tokens follow the inventory); remove it',
    }));
}

export const RULES = [
  (raw: unknown) => uniqueField(raw, 'name'),
  (raw: unknown) => uniqueField(raw, 'address'),
  atLeastOneServer,
  builderExists,
  k3sConfigLeavesManagedKeys,
];

export function checkRules(raw: unknown): RuleProblem[] {
  return RULES.flatMap((rule) => rule(raw));
}
