/**
 * What armlab writes on each node for k3s, rendered purely from the
 * inventory: config.yaml (from templates/k3s), and install.sh's environment.
 * Key order is stable so that a digest decides "changed".
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dump, load } from 'js-yaml';
import type { Inventory, NodeSpec } from '../inventory/types.ts';

export const CONFIG_PATH = '/etc/rancher/k3s/config.yaml';
export const TOKEN_FILE = '/etc/rancher/k3s/armlab-token';
/** Where a k3s server keeps the cluster token it made. */
export const SERVER_TOKEN_PATH = '/var/lib/rancher/k3s/server/token';
/** armlab's record of the install.sh environment it last ran with (a digest). */
export const INSTALL_RECORD = '/etc/rancher/k3s/armlab-install.sha256';

function template(role: 'server' | 'agent'): Record<string, unknown> {
  const file = fileURLToPath(new URL(`../../templates/k3s/${role}.yaml`, import.meta.url));
  return (load(readFileSync(file, 'utf8')) as Record<string, unknown> | null) ?? {};
}

export function servers(inv: Inventory): NodeSpec[] {
  return inv.nodes.filter((n) => n.role === 'server');
}

export function firstServer(inv: Inventory): NodeSpec {
  const first = servers(inv)[0];
  if (!first) throw new Error(`${inv.file}: no server node`);
  return first;
}

export function serverUrl(inv: Inventory): string {
  const a = firstServer(inv).address;
  return `https://${a.includes(':') ? `[${a}]` : a}:6443`;
}

function unionList(a: unknown, b: unknown): unknown[] {
  const list = (v: unknown) => (Array.isArray(v) ? v : v === undefined ? [] : [v]);
  return [...new Set([...list(a), ...list(b)])];
}

/** config.yaml for one node, as an object with a stable key order. */
export function renderConfig(inv: Inventory, node: NodeSpec): Record<string, unknown> {
  const isServer = node.role === 'server';
  const base = template(isServer ? 'server' : 'agent');
  const labels = Object.entries(node.labels).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`);
  const out: Record<string, unknown> = { ...base, 'node-name': node.name };
  if (labels.length) out['node-label'] = labels;
  if (isServer) {
    const all = servers(inv);
    if (node.name === all[0]?.name) {
      if (all.length > 1) out['cluster-init'] = true; // embedded etcd for HA
    } else {
      out.server = serverUrl(inv);
      out['token-file'] = TOKEN_FILE;
    }
    const extras = inv.k3s.config;
    out['tls-san'] = unionList(node.address, extras['tls-san']);
    for (const key of Object.keys(extras).sort()) {
      if (key === 'tls-san') continue;
      out[key] = key === 'disable' ? unionList(base.disable, extras.disable) : extras[key];
    }
  }
  return out;
}

export function configText(config: Record<string, unknown>): string {
  return `# written by armlab from the inventory; edits are replaced on the next k3s:install\n${dump(config, { lineWidth: 200 })}`;
}

export function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** install.sh's environment for one node; the token itself never appears (K3S_TOKEN_FILE). */
export function installEnv(inv: Inventory, node: NodeSpec): Record<string, string> {
  // SKIP_START: the unit is Type=notify, so install.sh's own `systemctl restart`
  // would block until the node is ready (forever for an agent that cannot join);
  // k3s:install starts it without blocking and k3s:ready waits, bounded.
  const env: Record<string, string> = { INSTALL_K3S_SKIP_DOWNLOAD: 'true', INSTALL_K3S_SKIP_START: 'true', INSTALL_K3S_EXEC: node.role === 'server' ? 'server' : 'agent' };
  if (node.role === 'agent') {
    env.K3S_URL = serverUrl(inv);
    env.K3S_TOKEN_FILE = TOKEN_FILE;
  }
  return env;
}

/** Does this node need the cluster token written before install? */
export function needsToken(inv: Inventory, node: NodeSpec): boolean {
  return node.role === 'agent' || (node.role === 'server' && node.name !== firstServer(inv).name);
}
