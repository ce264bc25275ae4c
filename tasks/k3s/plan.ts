/**
 * Pure: from a node's probe and what the inventory wants, the steps k3s:install
 * must take on that node, each with the reason it is (or is not) needed.
 */
import type { NodeSpec } from '../inventory/types.ts';
import type { K3sFacts, Service } from './probe.ts';

export interface Desired {
  tag: string;
  binarySha256: string;
  configSha256: string;
  /** sha256 of the token file content, when this node needs the token. */
  tokenSha256: string | null;
  installRecord: string;
}

export interface NodePlan {
  service: Service;
  uploadBinary: boolean;
  writeConfig: boolean;
  writeToken: boolean;
  runInstall: boolean;
  /** Nothing changed but the service is not running. */
  start: boolean;
  /** Human words: what will happen, or why nothing does. */
  reasons: string[];
}

export function serviceFor(node: NodeSpec): Service {
  return node.role === 'server' ? 'k3s' : 'k3s-agent';
}

export function planNode(node: NodeSpec, facts: K3sFacts, want: Desired): NodePlan {
  const service = serviceFor(node);
  const reasons: string[] = [];
  const uploadBinary = facts.binarySha256 !== want.binarySha256;
  if (uploadBinary) reasons.push(facts.version ? `upgrade k3s ${facts.version} → ${want.tag}` : `install k3s ${want.tag}`);
  const writeConfig = facts.configSha256 !== want.configSha256;
  if (writeConfig) reasons.push(facts.configSha256 ? 'config.yaml changed' : 'write config.yaml');
  const writeToken = want.tokenSha256 !== null && facts.tokenSha256 !== want.tokenSha256;
  if (writeToken) reasons.push('write the cluster token file');
  const wrongUnit = facts.unit !== null && facts.unit !== service;
  const runInstall = facts.unit !== service || facts.installRecord !== want.installRecord;
  if (wrongUnit) reasons.push(`node has ${facts.unit} but its role needs ${service}; run k3s:uninstall first`);
  else if (runInstall) reasons.push(facts.unit ? 'install.sh environment changed' : `run install.sh (${service})`);
  // 'activating': a Type=notify unit started, not yet ready (an agent still joining): k3s:ready waits for it.
  const start = !uploadBinary && !writeConfig && !writeToken && !runInstall && !['active', 'activating'].includes(facts.active[service]);
  if (start) reasons.push(`${service} is ${facts.active[service] || 'not running'}; start it`);
  if (reasons.length === 0) reasons.push(`k3s ${facts.build ?? want.tag} installed, config unchanged, ${service} ${facts.active[service]}`);
  return { service, uploadBinary, writeConfig, writeToken, runInstall, start, reasons };
}

export function hasWork(plan: NodePlan): boolean {
  return plan.uploadBinary || plan.writeConfig || plan.writeToken || plan.runInstall || plan.start;
}

/** Role conflicts cannot be fixed by install: they are refusals. */
export function conflict(node: NodeSpec, facts: K3sFacts): string | null {
  const service = serviceFor(node);
  return facts.unit !== null && facts.unit !== service ? `node has ${facts.unit} installed but its role "${node.role}" needs ${service}; run k3s:uninstall --limit ${node.name} first` : null;
}
