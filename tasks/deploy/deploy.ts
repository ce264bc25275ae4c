/**
 * cni:deploy and topo:deploy. The manifests go into k3s's auto-deploy folder
 * on the first server (/var/lib/rancher/k3s/server/manifests/armlab-*.yaml):
 * k3s applies them itself and re-applies them after restarts and upgrades, no
 * kubectl or kubeconfig is needed on this machine, and "write only when the
 * content differs" makes a re-run touch nothing. Then the rollout is awaited,
 * bounded, and a timeout prints what a user needs to see.
 */
import { createHash } from 'node:crypto';
import { sh, type Command } from '../core/shell.ts';
import type { NodeTask } from '../core/runner.ts';
import type { Connection } from '../core/ssh.ts';
import type { Inventory } from '../inventory/types.ts';
import { CONTAINERD_CNI_FACTS, CONTAINERD_CONFIGS, containerdCniOf } from './containerd-config.ts';
import { manifestText, renderMeshnet, renderTopo, specDigestOf, type ManifestInputs } from './manifests.ts';
import { rolloutOf } from './rollout.ts';
import { schemaProblems } from './validate.ts';
import { parseNodeList, type NodeReadiness } from '../k3s/ready.ts';
import { parseProbe } from '../preflight/probe.ts';

export const MANIFESTS_DIR = '/var/lib/rancher/k3s/server/manifests';

export interface Component {
  task: 'cni:deploy' | 'topo:deploy';
  file: string;
  render: (inputs: ManifestInputs) => Record<string, unknown>[];
  workload: { kind: 'DaemonSet' | 'Deployment'; namespace: string; name: string };
  /** Its manifests mount the node's CNI bin folder (meshnet installs its plugin there). */
  usesCniBinDir: boolean;
}

export const COMPONENTS: Record<'cni' | 'topo', Component> = {
  cni: { task: 'cni:deploy', file: `${MANIFESTS_DIR}/armlab-meshnet.yaml`, render: renderMeshnet, workload: { kind: 'DaemonSet', namespace: 'meshnet', name: 'meshnet' }, usesCniBinDir: true },
  topo: { task: 'topo:deploy', file: `${MANIFESTS_DIR}/armlab-k8s-topo.yaml`, render: renderTopo, workload: { kind: 'Deployment', namespace: 'default', name: 'k8s-topo' }, usesCniBinDir: false },
};

export interface DeployData {
  file: string;
  rollout: string;
  diagnosis?: string;
}

/** The side-loaded images and, when the lock has them, the config digests of their builds. */
export interface DeployImages {
  meshnet: string;
  topo: string;
  meshnetConfig?: string | undefined;
  topoConfig?: string | undefined;
}

export interface DeployOptions {
  images: DeployImages;
  rolloutTimeoutMs: number;
  pollMs: number;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** What the manifests depend on that only the cluster knows. */
export interface ClusterFacts {
  k3sVersion: string;
  /** From the containerd config k3s generated on the first server (cniBinDirOf). */
  cniBinDir: string;
}

/** The objects that would land on the server, validated. */
function renderObjects(c: Component, inv: Inventory, facts: ClusterFacts, images: DeployOptions['images']): Record<string, unknown>[] {
  const objects = c.render({ cniBinDir: facts.cniBinDir, linkType: inv.cni.linkType, meshnetImage: images.meshnet, topoImage: images.topo, meshnetConfig: images.meshnetConfig, topoConfig: images.topoConfig });
  const problems = schemaProblems(objects);
  if (problems.length) throw new Error(`rendered manifests fail the Kubernetes schemas: ${problems.join('; ')}`);
  return objects;
}

const headerOf = (c: Component, inv: Inventory, facts: ClusterFacts) => `written by armlab ${c.task} for cluster ${inv.cluster} (k3s ${facts.k3sVersion}); edit the inventory, not this file`;

/** The text that would land on the server. */
export function renderComponent(c: Component, inv: Inventory, facts: ClusterFacts, images: DeployOptions['images']): string {
  return manifestText(renderObjects(c, inv, facts, images), headerOf(c, inv, facts));
}

/** The workload's nodeSelector among rendered objects. */
function nodeSelectorOf(objects: Record<string, unknown>[], c: Component): Record<string, string> {
  const w = objects.find((o) => o.kind === c.workload.kind) as { spec?: { template?: { spec?: { nodeSelector?: Record<string, string> } } } } | undefined;
  return w?.spec?.template?.spec?.nodeSelector ?? {};
}

/**
 * Pure: null when some node carries every label of the selector; otherwise why
 * the workload can run nowhere (it would wait for its whole timeout).
 */
export function selectorProblem(selector: Record<string, string>, nodes: NodeReadiness[]): string | null {
  const wanted = Object.entries(selector);
  if (nodes.some((n) => wanted.every(([k, v]) => n.labels[k] === v))) return null;
  const want = wanted.map(([k, v]) => `${k}=${v}`).join(',');
  const have = nodes.map((n) => `${n.name} ${wanted.map(([k]) => `${k}=${n.labels[k] ?? '(none)'}`).join(',')}`).join('; ');
  const arch = selector['kubernetes.io/arch'] === 'arm' ? ': a node is labelled arm only when it runs k3s-armhf, which k3s:install chooses for armhf userland (check the node with preflight, then re-run k3s:install)' : '';
  return `no node matches nodeSelector ${want} (${have || 'no nodes'})${arch}`;
}

async function diagnose(conn: Connection, c: Component): Promise<string> {
  const { namespace, kind, name } = c.workload;
  const out = await conn.run(
    sh`echo "== pods in ${namespace}"; k3s kubectl get pods -n ${namespace} -o wide 2>&1 | tail -n 20
echo "== recent events in ${namespace}"; k3s kubectl get events -n ${namespace} --sort-by=.lastTimestamp 2>&1 | tail -n 15
echo "== log tail of ${kind.toLowerCase()}/${name}"; k3s kubectl logs -n ${namespace} ${`${kind.toLowerCase()}/${name}`} --tail=20 2>&1 | tail -n 20`,
    { allowFailure: true },
  );
  return out.stdout.trimEnd();
}

/** Marks where the workload's JSON starts in the deploy probe's output. */
const WORKLOAD_MARK = '--- armlab workload ---';

export interface DeployProbe {
  /** The installed k3s tag, null when k3s does not answer. */
  version: string | null;
  /** sha256 of the manifest file on the server ('' when there is none). */
  remoteSha256: string;
  /** The CNI bin folder k3s's containerd config names, null when there is none yet. */
  cniBinDir: string | null;
  /** The workload as `kubectl get -o json` printed it, null when it is missing or unreadable. */
  workloadJson: string | null;
}

/** The read-only deploy probe: k3s version, the manifest's digest, containerd's CNI settings and the workload, one round trip. */
export function deployProbe(c: Component): Command {
  return sh`printf 'version=%s\\n' "$(k3s --version 2>/dev/null | head -n1)"; printf 'sha=%s\\n' "$(sha256sum ${c.file} 2>/dev/null | cut -d' ' -f1)"
${CONTAINERD_CNI_FACTS}
printf '%s\\n' ${WORKLOAD_MARK}; ${getWorkload(c)} 2>/dev/null || true`;
}

function getWorkload(c: Component): Command {
  const { kind, namespace, name } = c.workload;
  return sh`k3s kubectl get ${kind.toLowerCase()} ${name} -n ${namespace} -o json`;
}

/** Pure: what the deploy probe printed. */
export function parseDeployProbe(stdout: string): DeployProbe {
  const at = stdout.indexOf(`${WORKLOAD_MARK}\n`);
  const facts = at < 0 ? stdout : stdout.slice(0, at);
  const workload = at < 0 ? '' : stdout.slice(at + WORKLOAD_MARK.length + 1);
  let workloadJson: string | null = null;
  try {
    JSON.parse(workload);
    workloadJson = workload;
  } catch {
    /* missing (kubectl printed nothing) or cut off: polled again */
  }
  return {
    version: /^version=.*?(v\d+\.\d+\.\d+\+k3s\d+)/m.exec(facts)?.[1] ?? null,
    remoteSha256: /^sha=([0-9a-f]{64})$/m.exec(facts)?.[1] ?? '',
    cniBinDir: containerdCniOf(parseProbe(facts)).binDir,
    workloadJson,
  };
}

export function deployTask(c: Component, opts: DeployOptions): NodeTask<DeployData> {
  return {
    id: c.task,
    async run(node, conn, ctx, progress) {
      // One round trip on a re-run: the workload's state counts only when the file is left as it is.
      const probe = parseDeployProbe((await conn.run(deployProbe(c))).stdout);
      const { version, cniBinDir } = probe;
      if (!version) return { status: 'failed', reason: `${node.name} runs no k3s (run k3s:install first)` };
      if (!cniBinDir && c.usesCniBinDir) {
        const why = `no CNI bin_dir in k3s's containerd config on ${node.name} (${CONTAINERD_CONFIGS.join(' or ')}); k3s writes it once its agent has started: wait for k3s:ready, or check that flannel is not disabled`;
        return ctx.check ? { status: 'would change', reason: `cannot render yet: ${why}`, data: { file: c.file, rollout: 'not checked (--check)' } } : { status: 'failed', reason: why };
      }
      const facts = { k3sVersion: version, cniBinDir: cniBinDir ?? '' };
      const objects = renderObjects(c, ctx.inventory, facts, opts.images);
      const text = manifestText(objects, headerOf(c, ctx.inventory, facts));
      const same = sha256(text) === probe.remoteSha256;
      if (ctx.check) return { status: same ? 'unchanged' : 'would change', reason: same ? `${c.file} up to date` : `would write ${c.file}`, data: { file: c.file, rollout: 'not checked (--check)' } };
      const { kind, namespace, name } = c.workload;
      const applied = specDigestOf(objects, kind);
      // Not rolled out yet: make sure it can run somewhere before writing and waiting.
      if (!(same && probe.workloadJson && rolloutOf(kind, probe.workloadJson, applied).done)) {
        const nodes = await conn.run(sh`k3s kubectl get nodes -o json`, { allowFailure: true });
        const problem = nodes.code === 0 ? selectorProblem(nodeSelectorOf(objects, c), parseNodeList(nodes.stdout)) : null;
        if (problem) return { status: 'failed', reason: `${kind} ${namespace}/${name} cannot roll out: ${problem}${same ? '' : `; ${c.file} not written`}`, data: { file: c.file, rollout: problem } };
      }
      if (!same) {
        progress(`writing ${c.file}`);
        await conn.writeFile(c.file, text, 0o600);
      }
      const deadline = Date.now() + opts.rolloutTimeoutMs;
      let last = 'not found yet';
      let known = same ? probe.workloadJson : null;
      for (;;) {
        const got = known !== null ? { code: 0, stdout: known, stderr: '' } : await conn.run(getWorkload(c), { allowFailure: true });
        known = null;
        if (got.code === 0) {
          const r = rolloutOf(kind, got.stdout, applied);
          last = r.summary;
          if (r.done) break;
        } else last = `not found yet (${got.stderr.trim().split('\n')[0] ?? ''})`;
        progress(`${kind} ${namespace}/${name}: ${last}`);
        if (Date.now() > deadline) {
          const diagnosis = await diagnose(conn, c);
          return { status: 'failed', reason: `${kind} ${namespace}/${name} not rolled out after ${opts.rolloutTimeoutMs / 1000}s: ${last}${same ? '' : `; ${c.file} written`}`, data: { file: c.file, rollout: last, diagnosis } };
        }
        await new Promise((r) => setTimeout(r, opts.pollMs));
      }
      const wrote = same ? `${c.file} unchanged` : `wrote ${c.file}`;
      return { status: same ? 'unchanged' : 'changed', reason: `${wrote}; ${kind} ${namespace}/${name} rolled out (${last})`, data: { file: c.file, rollout: last } };
    },
  };
}
