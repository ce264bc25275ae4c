import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { COMPONENTS, deployProbe, parseDeployProbe } from '../../tasks/deploy/deploy.ts';
import { k3sCniBinDir, manifestText, renderMeshnet, renderTopo, type ManifestInputs } from '../../tasks/deploy/manifests.ts';
import { conflistProblem, rolloutOf } from '../../tasks/deploy/rollout.ts';
import { schemaProblems } from '../../tasks/deploy/validate.ts';

const BASE: ManifestInputs = { k3sVersion: 'v1.31.12+k3s1', linkType: 'VXLAN', meshnetImage: 'armlab/meshnet:kne-082578e-1', topoImage: 'armlab/k8s-topo:4e517be-1' };

/** Compare with tests/golden/<name>; UPDATE_GOLDEN=1 rewrites them (review the diff). */
async function golden(name: string, text: string): Promise<void> {
  const file = `tests/golden/${name}`;
  if (process.env.UPDATE_GOLDEN === '1') await writeFile(file, text);
  assert.equal(text, await readFile(file, 'utf8'), `${file} differs; if the change is intended, run UPDATE_GOLDEN=1 and review the diff`);
}

type Ds = { kind: string; spec: { template: { spec: { nodeSelector: object; volumes: { name: string; hostPath: { path: string } }[]; containers: { image: string; imagePullPolicy: string; env: { name: string; value?: string }[]; resources: object }[] } } } };

test('golden files pin the rendered manifests (k3s before 1.32 with VXLAN, 1.32 with GRPC, k8s-topo)', async () => {
  await golden('meshnet-k3s1.31-vxlan.yaml', manifestText(renderMeshnet(BASE), 'meshnet (golden)'));
  await golden('meshnet-k3s1.32-grpc.yaml', manifestText(renderMeshnet({ ...BASE, k3sVersion: 'v1.32.5+k3s1', linkType: 'GRPC' }), 'meshnet (golden)'));
  await golden('k8s-topo.yaml', manifestText(renderTopo(BASE), 'k8s-topo (golden)'));
});

test('meshnet: side-loaded image never pulled, arm nodes, Pi-sized memory, k3s paths by version, link type from the inventory', () => {
  const ds = renderMeshnet(BASE).find((o) => o.kind === 'DaemonSet') as unknown as Ds;
  const spec = ds.spec.template.spec;
  assert.deepEqual(spec.nodeSelector, { 'kubernetes.io/arch': 'arm' });
  assert.equal(spec.containers[0]!.image, 'armlab/meshnet:kne-082578e-1');
  assert.equal(spec.containers[0]!.imagePullPolicy, 'IfNotPresent');
  assert.deepEqual(spec.containers[0]!.resources, { limits: { memory: '256Mi' }, requests: { cpu: '50m', memory: '64Mi' } });
  assert.deepEqual(spec.volumes.map((v) => [v.name, v.hostPath.path]), [
    ['cni-cfg', '/var/lib/rancher/k3s/agent/etc/cni/net.d'],
    ['cni-bin', '/var/lib/rancher/k3s/data/current/bin'],
    ['var-run-netns', '/var/run/netns'],
  ]);
  assert.equal(spec.containers[0]!.env.find((e) => e.name === 'INTER_NODE_LINK_TYPE')!.value, 'VXLAN');
  const grpc = renderMeshnet({ ...BASE, k3sVersion: 'v1.32.0+k3s1', linkType: 'GRPC' });
  const grpcDs = grpc.find((o) => o.kind === 'DaemonSet') as unknown as Ds;
  assert.equal(grpcDs.spec.template.spec.volumes[1]!.hostPath.path, '/var/lib/rancher/k3s/data/cni');
  assert.equal(grpcDs.spec.template.spec.containers[0]!.env.find((e) => e.name === 'INTER_NODE_LINK_TYPE')!.value, 'GRPC');
  const crds = (objs: Record<string, unknown>[]) => objs.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => (o.metadata as { name: string }).name);
  assert.deepEqual(crds(grpc), ['topologies.networkop.co.uk', 'gwirekobjs.networkop.co.uk']);
  assert.deepEqual(crds(renderMeshnet(BASE)), ['topologies.networkop.co.uk']);
  assert.equal(k3sCniBinDir('v1.31.99+k3s2'), '/var/lib/rancher/k3s/data/current/bin');
  assert.equal(k3sCniBinDir('v1.33.1+k3s1'), '/var/lib/rancher/k3s/data/cni');
});

test('every rendered object passes the Kubernetes OpenAPI schemas; a broken one is named', () => {
  assert.deepEqual(schemaProblems([...renderMeshnet({ ...BASE, linkType: 'GRPC' }), ...renderTopo(BASE)]), []);
  const broken = renderTopo(BASE).map((o) => (o.kind === 'Deployment' ? { ...o, spec: { ...(o.spec as object), replicas: 'one' } } : o));
  assert.deepEqual(schemaProblems(broken), ['Deployment/k8s-topo: data/spec/replicas must be integer']);
  assert.deepEqual(schemaProblems([{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } }]), ['Pod/p: v1/Pod is not a kind armlab can validate']);
});

test('rollout: done only when the controller saw the spec and every pod is updated and ready', () => {
  const ds = (s: object, generation = 1) => JSON.stringify({ metadata: { generation }, status: s });
  assert.deepEqual(rolloutOf('DaemonSet', ds({ observedGeneration: 1, desiredNumberScheduled: 3, numberReady: 3, updatedNumberScheduled: 3 })), { done: true, summary: '3/3 ready, 3/3 updated' });
  assert.deepEqual(rolloutOf('DaemonSet', ds({ observedGeneration: 1, desiredNumberScheduled: 3, numberReady: 2, updatedNumberScheduled: 3 })), { done: false, summary: '2/3 ready, 3/3 updated' });
  assert.equal(rolloutOf('DaemonSet', ds({ observedGeneration: 1, desiredNumberScheduled: 3, numberReady: 3, updatedNumberScheduled: 3 }, 2)).done, false);
  assert.equal(rolloutOf('DaemonSet', ds({ observedGeneration: 1, desiredNumberScheduled: 0, numberReady: 0, updatedNumberScheduled: 0 })).done, false);
  assert.deepEqual(rolloutOf('Deployment', JSON.stringify({ metadata: { generation: 1 }, spec: { replicas: 1 }, status: { observedGeneration: 1, readyReplicas: 1, updatedReplicas: 1 } })), { done: true, summary: '1/1 ready, 1/1 updated' });
});

test('00-meshnet.conflist must put meshnet first, delegating to flannel', () => {
  const conf = (plugins: object[]) => JSON.stringify({ cniVersion: '1.0.0', name: 'meshnet', plugins });
  assert.equal(conflistProblem(conf([{ type: 'meshnet', delegate: { type: 'flannel' } }])), null);
  assert.equal(conflistProblem(null), "00-meshnet.conflist is missing (meshnet's pod writes it on the node)");
  assert.equal(conflistProblem(conf([{ type: 'meshnet', delegate: { type: 'bridge' } }])), '00-meshnet.conflist delegates to bridge, not flannel');
  assert.equal(conflistProblem(conf([{ type: 'flannel' }])), "00-meshnet.conflist's first plugin is flannel, not meshnet");
  assert.equal(conflistProblem('{'), '00-meshnet.conflist is not valid JSON');
});

test('deploy probe: version, manifest digest and workload from one output; a missing or cut-off workload is polled', () => {
  const sha = 'a'.repeat(64);
  const workload = JSON.stringify({ metadata: { generation: 1 }, status: {} });
  const head = `version=k3s version v1.31.12+k3s1 (abc)\nsha=${sha}\n--- armlab workload ---\n`;
  assert.deepEqual(parseDeployProbe(`${head}${workload}\n`), { version: 'v1.31.12+k3s1', remoteSha256: sha, workloadJson: `${workload}\n` });
  assert.deepEqual(parseDeployProbe(`${head}`), { version: 'v1.31.12+k3s1', remoteSha256: sha, workloadJson: null });
  assert.equal(parseDeployProbe(`${head}{"metadata":`).workloadJson, null);
  assert.deepEqual(parseDeployProbe('version=\nsha=\n--- armlab workload ---\n'), { version: null, remoteSha256: '', workloadJson: null });
  assert.match(deployProbe(COMPONENTS.cni).text, /sha256sum \/var\/lib\/rancher\/k3s\/server\/manifests\/armlab-meshnet\.yaml/);
});
