import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { cniBinDirOf } from '../../tasks/deploy/containerd-config.ts';
import { COMPONENTS, deployProbe, parseDeployProbe } from '../../tasks/deploy/deploy.ts';
import { k3sCniBinDirFallback, manifestText, renderMeshnet, renderTopo, SPEC_DIGEST_ANNOTATION, specDigestOf, type ManifestInputs } from '../../tasks/deploy/manifests.ts';
import { rolloutOf } from '../../tasks/deploy/rollout.ts';
import { schemaProblems } from '../../tasks/deploy/validate.ts';

const BASE: ManifestInputs = { cniBinDir: '/var/lib/rancher/k3s/data/cni', linkType: 'VXLAN', meshnetImage: 'armlab/meshnet:kne-577a223-1', topoImage: 'armlab/k8s-topo:4e517be-1' };
const OLD_BIN = '/var/lib/rancher/k3s/data/5t4nd1n/bin';

/** Compare with tests/golden/<name>; UPDATE_GOLDEN=1 rewrites them (review the diff). */
async function golden(name: string, text: string): Promise<void> {
  const file = `tests/golden/${name}`;
  if (process.env.UPDATE_GOLDEN === '1') await writeFile(file, text);
  assert.equal(text, await readFile(file, 'utf8'), `${file} differs; if the change is intended, run UPDATE_GOLDEN=1 and review the diff`);
}

type Ds = { kind: string; spec: { template: { spec: { nodeSelector: object; volumes: { name: string; hostPath: { path: string } }[]; containers: { image: string; imagePullPolicy: string; env: { name: string; value?: string }[]; resources: object }[] } } } };

test('golden files pin the rendered manifests (static CNI bin folder with VXLAN, a data/<hash>/bin one with GRPC, k8s-topo)', async () => {
  await golden('meshnet-static-cni-bin-vxlan.yaml', manifestText(renderMeshnet(BASE), 'meshnet (golden)'));
  await golden('meshnet-hash-cni-bin-grpc.yaml', manifestText(renderMeshnet({ ...BASE, cniBinDir: OLD_BIN, linkType: 'GRPC' }), 'meshnet (golden)'));
  await golden('k8s-topo.yaml', manifestText(renderTopo(BASE), 'k8s-topo (golden)'));
});

test('meshnet: side-loaded image never pulled, arm nodes, Pi-sized memory, the node\'s CNI folders, the host folder for the link type, link type from the inventory', () => {
  const ds = renderMeshnet(BASE).find((o) => o.kind === 'DaemonSet') as unknown as Ds;
  const spec = ds.spec.template.spec;
  assert.deepEqual(spec.nodeSelector, { 'kubernetes.io/arch': 'arm' });
  assert.equal(spec.containers[0]!.image, 'armlab/meshnet:kne-577a223-1');
  assert.equal(spec.containers[0]!.imagePullPolicy, 'IfNotPresent');
  assert.deepEqual(spec.containers[0]!.resources, { limits: { memory: '256Mi' }, requests: { cpu: '50m', memory: '64Mi' } });
  assert.deepEqual(spec.volumes.map((v) => [v.name, v.hostPath.path]), [
    ['cni-cfg', '/var/lib/rancher/k3s/agent/etc/cni/net.d'],
    ['cni-bin', '/var/lib/rancher/k3s/data/cni'],
    ['host-cni-cfg', '/etc/cni/net.d'],
    ['var-run-netns', '/var/run/netns'],
  ]);
  assert.equal(spec.containers[0]!.env.find((e) => e.name === 'INTER_NODE_LINK_TYPE')!.value, 'VXLAN');
  const grpc = renderMeshnet({ ...BASE, cniBinDir: OLD_BIN, linkType: 'GRPC' });
  const grpcDs = grpc.find((o) => o.kind === 'DaemonSet') as unknown as Ds;
  assert.equal(grpcDs.spec.template.spec.volumes[1]!.hostPath.path, OLD_BIN);
  assert.equal(grpcDs.spec.template.spec.containers[0]!.env.find((e) => e.name === 'INTER_NODE_LINK_TYPE')!.value, 'GRPC');
  const crds = (objs: Record<string, unknown>[]) => objs.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => (o.metadata as { name: string }).name);
  assert.deepEqual(crds(grpc), ['topologies.networkop.co.uk', 'gwirekobjs.networkop.co.uk']);
  assert.deepEqual(crds(renderMeshnet(BASE)), ['topologies.networkop.co.uk']);
});

test('CNI bin folder: read from the containerd config k3s generates (v2 and v3 layouts); the version table is only the fallback', () => {
  // As k3s QA recorded them (k3s-io/k3s issues #11800 for config.toml, #11799 for config-v3.toml).
  const v2 = 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/var/lib/rancher/k3s/data/cni"\n  conf_dir = "/var/lib/rancher/k3s/agent/etc/cni/net.d"\n';
  const v3 = "version = 3\n\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n  bin_dir = \"/var/lib/rancher/k3s/data/abc/bin\"\n  conf_dir = \"/x\"\n";
  assert.equal(cniBinDirOf(v2), '/var/lib/rancher/k3s/data/cni');
  assert.equal(cniBinDirOf(v3), '/var/lib/rancher/k3s/data/abc/bin');
  assert.equal(cniBinDirOf("[plugins.'io.containerd.cri.v1.runtime'.cni]\n  bin_dirs = [\"/opt/cni/bin\", \"/x\"]\n"), '/opt/cni/bin');
  assert.equal(cniBinDirOf('[plugins."io.containerd.grpc.v1.cri".containerd]\n  bin_dir = "/not/cni"\n'), null, 'only the cni table counts');
  // The static folder came with k3s PR #10868 (v1.32.0) and its 2024-10 backports.
  for (const [version, dir] of [
    ['v1.31.12+k3s1', 'cni'], ['v1.31.2+k3s1', 'cni'], ['v1.31.1+k3s1', 'current/bin'], ['v1.30.6+k3s1', 'cni'], ['v1.30.5+k3s1', 'current/bin'],
    ['v1.29.10+k3s1', 'cni'], ['v1.29.9+k3s1', 'current/bin'], ['v1.28.15+k3s1', 'cni'], ['v1.27.16+k3s1', 'current/bin'], ['v1.32.0+k3s1', 'cni'], ['v1.33.1+k3s1', 'cni'],
  ]) assert.equal(k3sCniBinDirFallback(version!), `/var/lib/rancher/k3s/data/${dir}`, version);
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

test('rollout: a workload k3s has not applied yet (an older spec digest, or none) is not done, however rolled out it looks', () => {
  const rendered = renderTopo(BASE);
  const digest = specDigestOf(rendered, 'Deployment')!;
  assert.match(digest, /^sha256:[0-9a-f]{64}$/);
  const live = (annotations: Record<string, string>) => JSON.stringify({ metadata: { generation: 1, annotations }, spec: { replicas: 1 }, status: { observedGeneration: 1, readyReplicas: 1, updatedReplicas: 1 } });
  assert.deepEqual(rolloutOf('Deployment', live({}), digest), { done: false, summary: 'the manifest is not applied yet (k3s reads its manifests folder every 15 s)' });
  assert.equal(rolloutOf('Deployment', live({ [SPEC_DIGEST_ANNOTATION]: 'sha256:old' }), digest).done, false);
  assert.equal(rolloutOf('Deployment', live({ [SPEC_DIGEST_ANNOTATION]: digest }), digest).done, true);
  // Any change to the spec is a new digest; the same inputs give the same one.
  assert.equal(specDigestOf(renderTopo(BASE), 'Deployment'), digest);
  assert.notEqual(specDigestOf(renderTopo({ ...BASE, topoConfig: 'sha256:new' }), 'Deployment'), digest);
  assert.notEqual(specDigestOf(renderMeshnet({ ...BASE, linkType: 'GRPC' }), 'DaemonSet'), specDigestOf(renderMeshnet(BASE), 'DaemonSet'));
});

test('deploy probe: version, manifest digest and workload from one output; a missing or cut-off workload is polled', () => {
  const sha = 'a'.repeat(64);
  const workload = JSON.stringify({ metadata: { generation: 1 }, status: {} });
  const head = `version=k3s version v1.31.12+k3s1 (abc)\nsha=${sha}\n--- armlab workload ---\n`;
  const config = '[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/var/lib/rancher/k3s/data/cni"\n';
  const cni = `containerd_config=${Buffer.from(config).toString('base64')}\n`;
  assert.deepEqual(parseDeployProbe(`${head}${workload}\n`), { version: 'v1.31.12+k3s1', remoteSha256: sha, cniBinDir: null, workloadJson: `${workload}\n` });
  assert.deepEqual(parseDeployProbe(`${head.replace('--- armlab', `${cni}--- armlab`)}`), { version: 'v1.31.12+k3s1', remoteSha256: sha, cniBinDir: '/var/lib/rancher/k3s/data/cni', workloadJson: null });
  assert.equal(parseDeployProbe(`${head}{"metadata":`).workloadJson, null);
  assert.deepEqual(parseDeployProbe('version=\nsha=\n--- armlab workload ---\n'), { version: null, remoteSha256: '', cniBinDir: null, workloadJson: null });
  assert.match(deployProbe(COMPONENTS.cni).text, /sha256sum \/var\/lib\/rancher\/k3s\/server\/manifests\/armlab-meshnet\.yaml/);
});
