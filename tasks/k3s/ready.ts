/**
 * Waiting for nodes to be Ready, bounded, judged from the first server's
 * `k3s kubectl get nodes -o json`; on timeout, a diagnosis per late node.
 */
import { sh } from '../core/shell.ts';
import type { Connections } from '../core/connections.ts';
import type { Connection } from '../core/ssh.ts';
import type { NodeSpec } from '../inventory/types.ts';
import { serviceFor } from './plan.ts';

export interface NodeReadiness {
  name: string;
  ready: boolean;
  version: string | null;
  labels: Record<string, string>;
}

interface NodeList {
  items?: { metadata?: { name?: string; labels?: Record<string, string> }; status?: { conditions?: { type?: string; status?: string }[]; nodeInfo?: { kubeletVersion?: string } } }[];
}

export function parseNodeList(json: string): NodeReadiness[] {
  const list = JSON.parse(json) as NodeList;
  return (list.items ?? []).map((item) => ({
    name: item.metadata?.name ?? '',
    ready: item.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    version: item.status?.nodeInfo?.kubeletVersion ?? null,
    labels: item.metadata?.labels ?? {},
  }));
}

/** Pure: which wanted nodes are not (yet) Ready at the wanted version, and why. */
export function lateNodes(wanted: string[], seen: NodeReadiness[], tag: string): Map<string, string> {
  const late = new Map<string, string>();
  for (const name of wanted) {
    const n = seen.find((s) => s.name === name);
    if (!n) late.set(name, 'not registered with the server');
    else if (!n.ready) late.set(name, 'NotReady');
    else if (n.version !== tag) late.set(name, `runs ${n.version ?? 'an unknown version'}, not ${tag}`);
  }
  return late;
}

export async function waitForReady(
  server: Connection,
  wanted: NodeSpec[],
  tag: string,
  timeoutMs: number,
  progress: (msg: string) => void,
): Promise<{ late: Map<string, string> }> {
  const started = Date.now();
  let late = new Map(wanted.map((n) => [n.name, 'not checked yet']));
  for (;;) {
    const r = await server.run(sh`/usr/local/bin/k3s kubectl get nodes -o json`, { allowFailure: true });
    if (r.code === 0) {
      try {
        late = lateNodes(wanted.map((n) => n.name), parseNodeList(r.stdout), tag);
      } catch {
        late = new Map(wanted.map((n) => [n.name, 'the API answered with something that is not a node list']));
      }
    } else {
      late = new Map(wanted.map((n) => [n.name, `the API on ${server.node.name} does not answer: ${r.stderr.trim().split('\n')[0] ?? ''}`]));
    }
    if (late.size === 0) return { late };
    const waited = Date.now() - started;
    if (waited > timeoutMs) return { late };
    progress(`waiting for ${[...late.keys()].join(', ')} to be Ready (${Math.round(waited / 1000)}s of ${timeoutMs / 1000}s)`);
    await new Promise((r) => setTimeout(r, 3000));
  }
}

/** What a user needs to see for each late node: service state and the journal's tail. */
export async function diagnose(late: Map<string, string>, nodes: NodeSpec[], connections: Connections): Promise<string> {
  const parts: string[] = [];
  for (const [name, why] of late) {
    const node = nodes.find((n) => n.name === name);
    if (!node) continue;
    const service = serviceFor(node);
    let detail: string;
    // systemctl status exits non-zero for a unit not active (a notify unit still activating): the journal still follows.
    try {
      const conn = await connections.get(node);
      const r = await conn.run(sh`{ systemctl status ${service} --no-pager -n 0 2>&1 || true; } | head -n 5; echo '--- journal'; journalctl -u ${service} -n 15 --no-pager 2>&1 || true`, { allowFailure: true });
      detail = r.stdout.trimEnd();
    } catch (err) {
      detail = `cannot reach it: ${(err as Error).message.split('\n')[0]}`;
    }
    parts.push(`== ${name}: ${why}\n${detail}`);
  }
  return parts.join('\n\n');
}
