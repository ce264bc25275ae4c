/**
 * status: one row per node, read-only — k3s version and readiness (as the
 * first server sees it), the lock's images present with the built config
 * digest, meshnet's CNI config, and the meshnet and k8s-topo pods there.
 */
import { parseCommon, requireInventory, selectNodes } from './core/args.ts';
import { reasonOf } from './core/errors.ts';
import { sh } from './core/shell.ts';
import { connectionsFor } from './core/node-command.ts';
import type { Connection } from './core/ssh.ts';
import { renderTable } from './core/table.ts';
import { readLock } from './images/lock.ts';
import { planNode, platformOfDebianArch } from './import/plan.ts';
import { IMPORT_PROBE, parseProbe } from './import/remote.ts';
import { CNI_NODE_PROBE, cniNodeProblems, parseCniNodeProbe } from './deploy/cni-node.ts';
import type { LinkType } from './deploy/manifests.ts';
import { loadInventory } from './inventory/load.ts';
import { k3sBuildOf } from './k3s/artifacts.ts';
import { firstServer } from './k3s/config.ts';
import { parseNodeList } from './k3s/ready.ts';

interface PodList {
  items?: {
    metadata?: { name?: string; namespace?: string };
    spec?: { nodeName?: string };
    status?: { phase?: string; containerStatuses?: { ready?: boolean; state?: { waiting?: { reason?: string } } }[] };
  }[];
}

/**
 * Pure: "meshnet-x Running, k8s-topo-y CrashLoopBackOff" for one node, or "-".
 * Like kubectl's STATUS column: a waiting container's reason before the phase
 * (a crash-looping pod's phase flips between Running and Pending).
 */
export function podsOn(node: string, list: PodList): string {
  const pods = (list.items ?? []).filter((p) => p.spec?.nodeName === node && /^(meshnet|k8s-topo)/.test(p.metadata?.name ?? ''));
  const state = (p: NonNullable<PodList['items']>[number]) => {
    const containers = p.status?.containerStatuses ?? [];
    const waiting = containers.map((c) => c.state?.waiting?.reason).find(Boolean);
    if (waiting) return waiting;
    const phase = p.status?.phase ?? '?';
    return phase === 'Running' && containers.some((c) => c.ready === false) ? 'Running (not ready)' : phase;
  };
  return pods.length ? pods.map((p) => `${p.metadata?.name} ${state(p)}`).join(', ') : '-';
}

async function nodeRow(conn: Connection, lockEntries: Parameters<typeof planNode>[0], linkType: LinkType): Promise<{ images: string; cni: string }> {
  const probe = parseProbe((await conn.run(IMPORT_PROBE)).stdout);
  const platform = platformOfDebianArch(probe.arch);
  let images = 'k3s not installed';
  if (probe.k3s && platform) {
    const plan = planNode(lockEntries, probe.images, platform, false);
    const present = plan.actions.filter((a) => a.kind === 'skip' || a.kind === 'pin').length;
    const off = plan.actions.filter((a) => a.kind !== 'skip' && a.kind !== 'pin').map((a) => a.entry.name);
    images = `${present}/${plan.actions.length} present${off.length ? ` (missing or different: ${off.join(', ')})` : ''}`;
  }
  const problems = cniNodeProblems(parseCniNodeProbe((await conn.run(CNI_NODE_PROBE)).stdout), linkType);
  return { images, cni: problems.length ? problems.join('; ') : `meshnet chained (${linkType})` };
}

/** Pure: why the first server's API gave no node list: k3s missing is not an unreachable server. */
export function k3sApiProblem(server: string, code: number, stderr: string): string {
  if (code === 127) return `k3s not installed on ${server}`;
  return `no answer from k3s on ${server}: ${stderr.trim().split('\n')[0] || `exit ${code}`}`;
}

export async function statusCommand(argv: string[]): Promise<number> {
  const { common } = parseCommon(argv);
  const inventory = await loadInventory(requireInventory(common));
  const nodes = selectNodes(inventory, common.limit).filter((n) => n.role !== 'builder');
  const lockEntries = Object.values((await readLock()).images).filter((e) => (e.target ?? 'nodes') === 'nodes');
  const connections = connectionsFor(common);
  const rows: string[][] = [];
  let failed = false;
  let serverBuild = '';
  try {
    const server = await connections.get(firstServer(inventory));
    const k3sNodes = await server.run(sh`k3s kubectl get nodes -o json`, { allowFailure: true });
    const apiProblem = k3sApiProblem(firstServer(inventory).name, k3sNodes.code, k3sNodes.stderr);
    const seen = k3sNodes.code === 0 ? parseNodeList(k3sNodes.stdout) : [];
    const podsJson = await server.run(sh`k3s kubectl get pods -A -o json`, { allowFailure: true });
    // The server's binary names its build (upstream: its commit); said as the node says it.
    const build = k3sNodes.code === 127 ? null : k3sBuildOf((await server.run(sh`k3s --version`, { allowFailure: true })).stdout);
    if (build) serverBuild = `${firstServer(inventory).name} runs k3s ${build}`;
    let pods: PodList = {};
    try {
      if (podsJson.code === 0) pods = JSON.parse(podsJson.stdout) as PodList;
    } catch {
      // An unreadable answer shows as no pods; the other columns still stand.
    }
    await Promise.all(
      nodes.map(async (node) => {
        const k = seen.find((s) => s.name === node.name);
        const k3s = k ? `${k.version ?? '?'} ${k.ready ? 'Ready' : 'NotReady'}` : k3sNodes.code === 0 ? 'not registered' : apiProblem;
        try {
          const row = await nodeRow(await connections.get(node), lockEntries, inventory.cni.linkType);
          rows.push([node.name, k3s, row.images, row.cni, podsOn(node.name, pods)]);
        } catch (err) {
          failed = true;
          rows.push([node.name, k3s, `unreachable: ${reasonOf(err)}`, '-', '-']);
        }
      }),
    );
  } finally {
    await connections.closeAll();
  }
  const order = new Map(nodes.map((n, i) => [n.name, i]));
  rows.sort((a, b) => (order.get(a[0]!) ?? 0) - (order.get(b[0]!) ?? 0));
  process.stdout.write(`${renderTable(['NODE', 'K3S', 'IMAGES', 'CNI', 'PODS'], rows)}\n${serverBuild ? `\n${serverBuild}\n` : ''}`);
  return failed ? 1 : 0;
}
