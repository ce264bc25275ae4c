/**
 * Pure kubeconfig handling: k3s writes a kubeconfig for 127.0.0.1 named
 * "default"; armlab points it at the first server and names cluster, user
 * and context after the inventory's cluster, then merges it into the user's
 * kubeconfig replacing only entries of that name.
 */
export interface Named<T> {
  name: string;
  [key: string]: unknown;
  cluster?: T;
  user?: T;
  context?: T;
}

export interface KubeConfig {
  apiVersion?: string;
  kind?: string;
  clusters?: Named<Record<string, unknown>>[];
  users?: Named<Record<string, unknown>>[];
  contexts?: Named<Record<string, unknown>>[];
  'current-context'?: string;
  preferences?: Record<string, unknown>;
  [key: string]: unknown;
}

export function retarget(fetched: KubeConfig, name: string, server: string): KubeConfig {
  const cluster = fetched.clusters?.[0]?.cluster;
  const user = fetched.users?.[0]?.user;
  if (!cluster || !user) throw new Error('the server kubeconfig has no cluster or user entry');
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { ...cluster, server } }],
    users: [{ name, user }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    'current-context': name,
  };
}

function mergeList<T extends { name: string }>(existing: T[] | undefined, incoming: T[] | undefined): T[] {
  const out = [...(existing ?? [])];
  for (const item of incoming ?? []) {
    const i = out.findIndex((e) => e.name === item.name);
    if (i >= 0) out[i] = item;
    else out.push(item);
  }
  return out;
}

/** Merge `ours` into `existing`: same-named entries are replaced, all others kept. */
export function mergeKubeconfig(existing: KubeConfig | null, ours: KubeConfig): KubeConfig {
  const base: KubeConfig = existing ?? { apiVersion: 'v1', kind: 'Config', preferences: {} };
  return {
    ...base,
    apiVersion: base.apiVersion ?? 'v1',
    kind: base.kind ?? 'Config',
    clusters: mergeList(base.clusters, ours.clusters),
    users: mergeList(base.users, ours.users),
    contexts: mergeList(base.contexts, ours.contexts),
    'current-context': ours['current-context'] ?? base['current-context'] ?? '',
  };
}

/**
 * `existing` without the cluster, user and context named `name`, when that
 * cluster points at one of `servers` (an entry of the same name for other
 * machines is someone else's and stays). null when there is nothing to remove.
 */
export function removeCluster(existing: KubeConfig, name: string, servers: readonly string[]): KubeConfig | null {
  const cluster = existing.clusters?.find((c) => c.name === name);
  const server = cluster?.cluster?.['server'];
  if (typeof server !== 'string' || !servers.includes(server)) return null;
  const others = <T extends { name: string }>(list: T[] | undefined) => list?.filter((e) => e.name !== name);
  return {
    ...existing,
    clusters: others(existing.clusters),
    users: others(existing.users),
    contexts: others(existing.contexts),
    'current-context': existing['current-context'] === name ? '' : (existing['current-context'] ?? ''),
  };
}
