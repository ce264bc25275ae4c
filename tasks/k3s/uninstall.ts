/**
 * k3s:uninstall: the uninstall script install.sh left for the node's role
 * (agents before servers), then a report of anything k3s left behind.
 */
import { parseCommon, requireInventory, selectNodes } from '../core/args.ts';
import { connectionsFor } from '../core/node-command.ts';
import { printSummary, runOnNodes, type NodeTask, type Outcome } from '../core/runner.ts';
import { sh } from '../core/shell.ts';
import type { Connections } from '../core/connections.ts';
import { loadInventory } from '../inventory/load.ts';
import type { NodeSpec } from '../inventory/types.ts';
import { firstServer } from './config.ts';

const LEFTOVERS = ['/usr/local/bin/k3s', '/etc/rancher/k3s', '/var/lib/rancher/k3s', '/etc/systemd/system/k3s.service', '/etc/systemd/system/k3s-agent.service', '/run/k3s/containerd/io.containerd.runtime.v2.task'];

export const uninstallTask: NodeTask<string[]> = {
  id: 'k3s:uninstall',
  appliesTo: (n) => n.role !== 'builder',
  async run(node, conn, ctx, progress) {
    const probe = await conn.run(
      sh`for s in /usr/local/bin/k3s-agent-uninstall.sh /usr/local/bin/k3s-uninstall.sh; do if [ -x "$s" ]; then echo "$s"; fi; done`,
    );
    const scripts = probe.stdout.split('\n').filter(Boolean);
    if (scripts.length === 0) {
      const left = await leftovers(conn);
      return left.length ? { status: 'failed', reason: `no uninstall script, but k3s files remain: ${left.join(', ')}`, data: left } : { status: 'unchanged', reason: 'k3s is not installed', data: [] };
    }
    if (ctx.check) return { status: 'would change', reason: `would run ${scripts.join(', ')}`, data: [] };
    for (const script of scripts) {
      progress(`running ${script}`);
      await conn.run(sh`${script} >/dev/null 2>&1 || ${script}`);
    }
    const left = await leftovers(conn);
    if (left.length) return { status: 'failed', reason: `ran ${scripts.join(', ')} but these remain: ${left.join(', ')}`, data: left };
    return { status: 'changed', reason: `ran ${scripts.map((s) => s.split('/').pop()).join(', ')}; no k3s files left`, data: [] };
  },
};

async function leftovers(conn: { run: (c: ReturnType<typeof sh>) => Promise<{ stdout: string }> }): Promise<string[]> {
  const r = await conn.run(sh`for p in ${LEFTOVERS}; do if [ -e "$p" ]; then echo "$p"; fi; done`);
  return r.stdout.split('\n').filter(Boolean);
}

/** Agents first, so that none is left pointing at a server that is already gone. */
export async function k3sUninstallCommand(argv: string[]): Promise<number> {
  const { common } = parseCommon(argv);
  const inventory = await loadInventory(requireInventory(common));
  const nodes = selectNodes(inventory, common.limit);
  const connections = connectionsFor(common);
  const ctx = { inventory, connections, check: common.check, verbose: common.verbose, parallel: common.parallel };
  const outcomes: Outcome[] = [];
  try {
    const agents = nodes.filter((n) => n.role === 'agent');
    const agentReport = await runOnNodes(uninstallTask, agents, ctx);
    outcomes.push(...agentReport.outcomes);
    // A server that stays keeps the removed agents' Node objects (they would
    // linger NotReady, and look Ready for a while after a re-install): delete them.
    const first = firstServer(inventory);
    const removed = agentReport.outcomes.filter((o) => o.status === 'changed').map((o) => o.node);
    if (removed.length > 0 && !nodes.some((n) => n.name === first.name) && !common.check) {
      outcomes.push(...(await deleteNodeObjects(connections, first, removed)));
    }
    outcomes.push(...(await runOnNodes(uninstallTask, nodes.filter((n) => n.role === 'server'), ctx)).outcomes);
  } finally {
    await connections.closeAll();
  }
  return printSummary('k3s:uninstall', outcomes);
}

async function deleteNodeObjects(connections: Connections, server: NodeSpec, names: string[]): Promise<Outcome[]> {
  try {
    const conn = await connections.get(server);
    const out: Outcome[] = [];
    for (const name of names) {
      const r = await conn.run(sh`/usr/local/bin/k3s kubectl delete node ${name}`, { allowFailure: true });
      const gone = r.code === 0 || /NotFound/.test(r.stderr);
      out.push({ node: name, task: 'k3s:delete-node', status: gone ? 'changed' : 'failed', reason: gone ? `Node ${name} removed from the cluster on ${server.name}` : `could not delete Node ${name} on ${server.name}: ${r.stderr.trim().split('\n')[0]}` });
    }
    return out;
  } catch (err) {
    return names.map((name) => ({ node: name, task: 'k3s:delete-node', status: 'failed' as const, reason: `${server.name} unreachable: ${(err as Error).message.split('\n')[0]}` }));
  }
}
