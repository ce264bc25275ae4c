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
import { manifestText, renderMeshnet, renderTopo, K3S_CNI_CONF_DIR, type ManifestInputs } from './manifests.ts';
import { conflistProblem, rolloutOf } from './rollout.ts';
import { schemaProblems } from './validate.ts';

export const MANIFESTS_DIR = '/var/lib/rancher/k3s/server/manifests';

export interface Component {
  task: 'cni:deploy' | 'topo:deploy';
  file: string;
  render: (inputs: ManifestInputs) => Record<string, unknown>[];
  workload: { kind: 'DaemonSet' | 'Deployment'; namespace: string; name: string };
}

export const COMPONENTS: Record<'cni' | 'topo', Component> = {
  cni: { task: 'cni:deploy', file: `${MANIFESTS_DIR}/armlab-meshnet.yaml`, render: renderMeshnet, workload: { kind: 'DaemonSet', namespace: 'meshnet', name: 'meshnet' } },
  topo: { task: 'topo:deploy', file: `${MANIFESTS_DIR}/armlab-k8s-topo.yaml`, render: renderTopo, workload: { kind: 'Deployment', namespace: 'default', name: 'k8s-topo' } },
};

export interface DeployData {
  file: string;
  rollout: string;
  diagnosis?: string;
}

export interface DeployOptions {
  images: { meshnet: string; topo: string };
  rolloutTimeoutMs: number;
  pollMs: number;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** The text that would land on the server, validated; the installed k3s version decides the CNI paths. */
export function renderComponent(c: Component, inv: Inventory, k3sVersion: string, images: DeployOptions['images']): string {
  const objects = c.render({ k3sVersion, linkType: inv.cni.linkType, meshnetImage: images.meshnet, topoImage: images.topo });
  const problems = schemaProblems(objects);
  if (problems.length) throw new Error(`rendered manifests fail the Kubernetes schemas: ${problems.join('; ')}`);
  return manifestText(objects, `written by armlab ${c.task} for cluster ${inv.cluster} (k3s ${k3sVersion}); edit the inventory, not this file`);
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
  /** The workload as `kubectl get -o json` printed it, null when it is missing or unreadable. */
  workloadJson: string | null;
}

/** The read-only deploy probe: k3s version, the manifest's digest and the workload, one round trip. */
export function deployProbe(c: Component): Command {
  return sh`printf 'version=%s\\n' "$(k3s --version 2>/dev/null | head -n1)"; printf 'sha=%s\\n' "$(sha256sum ${c.file} 2>/dev/null | cut -d' ' -f1)"; printf '%s\\n' ${WORKLOAD_MARK}; ${getWorkload(c)} 2>/dev/null || true`;
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
    workloadJson,
  };
}

export function deployTask(c: Component, opts: DeployOptions): NodeTask<DeployData> {
  return {
    id: c.task,
    async run(node, conn, ctx, progress) {
      // One round trip on a re-run: the workload's state counts only when the file is left as it is.
      const probe = parseDeployProbe((await conn.run(deployProbe(c))).stdout);
      const { version } = probe;
      if (!version) return { status: 'failed', reason: `${node.name} runs no k3s (run k3s:install first)` };
      const text = renderComponent(c, ctx.inventory, version, opts.images);
      const same = sha256(text) === probe.remoteSha256;
      if (ctx.check) return { status: same ? 'unchanged' : 'would change', reason: same ? `${c.file} up to date` : `would write ${c.file}`, data: { file: c.file, rollout: 'not checked (--check)' } };
      if (!same) {
        progress(`writing ${c.file}`);
        await conn.writeFile(c.file, text, 0o600);
      }
      const { kind, namespace, name } = c.workload;
      const deadline = Date.now() + opts.rolloutTimeoutMs;
      let last = 'not found yet';
      let known = same ? probe.workloadJson : null;
      for (;;) {
        const got = known !== null ? { code: 0, stdout: known, stderr: '' } : await conn.run(getWorkload(c), { allowFailure: true });
        known = null;
        if (got.code === 0) {
          const r = rolloutOf(kind, got.stdout);
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

/** After meshnet's rollout: every node has meshnet in front of flannel in k3s's CNI folder. */
export const conflistTask: NodeTask<null> = {
  id: 'cni:check',
  appliesTo: (n) => n.role !== 'builder',
  async run(node, conn) {
    const out = await conn.run(sh`cat ${`${K3S_CNI_CONF_DIR}/00-meshnet.conflist`} 2>/dev/null || echo '<missing>'`);
    const problem = conflistProblem(out.stdout.trim() === '<missing>' ? null : out.stdout);
    return problem ? { status: 'failed', reason: `${problem} in ${K3S_CNI_CONF_DIR}` } : { status: 'unchanged', reason: `00-meshnet.conflist delegates to flannel` };
  },
};
