/**
 * The k3s stand-in's manifest reading (tests/k3s-stand-in/manifests.sh): the
 * stand-in kubelet runs what it reads, so a misread path would show up as a
 * lab test failure far from its cause. Checked here on the golden manifests.
 * The kubelet's list of workloads, and its kubectl's pod list, as `status` reads it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { podsOn } from '../../tasks/status.ts';
import { standInScript } from '../helpers/k3s-mirror.ts';

const PARTS = join(import.meta.dirname, '..', 'k3s-stand-in', 'manifests.sh');

function bash(script: string, input: string): string {
  return execFileSync('bash', ['-c', `set -euo pipefail; source ${PARTS}; ${script}`], { input, encoding: 'utf8' });
}

test('flatten_yaml: one PATH<TAB>VALUE line per scalar, sequences indexed, quotes removed, documents numbered', () => {
  const out = bash('flatten_yaml', "---\nkind: A\nmetadata:\n  name: 'it''s'\nspec:\n  list:\n    - a: \"1\"\n      b: x\n    - plain\n  empty: {}\n---\nkind: B\n");
  assert.equal(out, ['1\tkind\tA', "1\tmetadata.name\tit's", '1\tspec.list.0.a\t1', '1\tspec.list.0.b\tx', '1\tspec.list.1\tplain', '1\tspec.empty\t{}', '2\tkind\tB', ''].join('\n'));
});

test("workload_specs: the golden meshnet DaemonSet's container, env, volumes and selector as the stand-in kubelet reads them", () => {
  const dir = mkdtempSync(join(tmpdir(), 'armlab-u'));
  try {
    const golden = readFileSync(join(import.meta.dirname, '..', 'golden', 'meshnet-static-cni-bin-vxlan.yaml'), 'utf8');
    bash(`flatten_yaml | workload_specs ${dir}`, `---\n${golden}`);
    assert.deepEqual(readdirSync(dir), ['meshnet_meshnet.spec']);
    const get = (path: string) => bash(`spec_load ${join(dir, 'meshnet_meshnet.spec')}; printf '%s' "\${SPEC['${path}']}"`, '');
    assert.equal(get('kind'), 'DaemonSet');
    assert.equal(get('spec.template.spec.containers.0.image'), 'armlab/meshnet:kne-577a223-1');
    assert.equal(get('spec.template.spec.containers.0.env.4.value'), 'VXLAN');
    assert.equal(get('spec.template.spec.containers.0.env.1.valueFrom.fieldRef.fieldPath'), 'spec.nodeName');
    assert.equal(get('spec.template.spec.containers.0.volumeMounts.1.name'), 'cni-bin');
    assert.equal(get('spec.template.spec.volumes.1.hostPath.path'), '/var/lib/rancher/k3s/data/cni');
    assert.equal(get('spec.template.spec.volumes.2.hostPath.path'), '/etc/cni/net.d');
    assert.equal(get('spec.template.spec.nodeSelector.kubernetes.io/arch'), 'arm');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("kubelet_parse: each workload's spec file, kind, name, namespace, selector and hash, an empty selector or namespace kept in place", () => {
  const dir = mkdtempSync(join(tmpdir(), 'armlab-u'));
  try {
    const kubelet = join(import.meta.dirname, '..', 'k3s-stand-in', 'kubelet.sh');
    const text = '---\nkind: Deployment\nmetadata:\n  name: free\nspec:\n  template:\n    spec:\n      containers:\n        - image: x\n---\nkind: DaemonSet\nmetadata:\n  name: pinned\n  namespace: net\nspec:\n  template:\n    spec:\n      nodeSelector:\n        kubernetes.io/arch: arm\n';
    // As the kubelet's pass reads the list back.
    const out = execFileSync('bash', ['-c', `set -euo pipefail; source ${PARTS}; source ${kubelet}; kubelet_parse ${dir} "$(cat)"
      while IFS=$'\\x1f' read -r spec kind name ns selector hash; do [ -n "$spec" ] || continue; printf '%s|%s|%s|%s|%s|%s\\n' "\${spec##*/}" "$kind" "$name" "$ns" "$selector" "\${#hash}"; done <<< "$KUBELET_WORKLOADS"`], { input: text, encoding: 'utf8' });
    assert.equal(out, 'default_free.spec|Deployment|free|default||16\nnet_pinned.spec|DaemonSet|pinned|net|arm|16\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("kubectl get pods -o json: the pods the stand-in's kubelets reported, shaped as status reads the API's", () => {
  const data = mkdtempSync(join(tmpdir(), 'armlab-u'));
  try {
    const kubectl = join(import.meta.dirname, '..', 'k3s-stand-in', 'kubectl.sh');
    const report = (body: string) => execFileSync('bash', ['-c', `set -euo pipefail; DATA=${data}; source ${kubectl}; store_pod_status`], { input: body });
    report('namespace=meshnet&name=meshnet-pi1&node=pi1&phase=Running&ready=true&restarts=0&reason=');
    report('namespace=meshnet&name=meshnet-pi2&node=pi2&phase=Running&ready=false&restarts=2&reason=CrashLoopBackOff&token=secret');
    report('namespace=default&name=k8s-topo-pi1&node=pi1&phase=Pending&ready=false&restarts=0&reason=');
    const json = execFileSync('bash', ['-c', `set -euo pipefail; DATA=${data}; source ${kubectl}; kubectl_get_pods -A -o json`], { encoding: 'utf8' });
    const list = JSON.parse(json);
    assert.equal(podsOn('pi1', list), 'k8s-topo-pi1 ContainerCreating, meshnet-pi1 Running');
    assert.equal(podsOn('pi2', list), 'meshnet-pi2 CrashLoopBackOff');
    assert.doesNotMatch(readFileSync(join(data, 'server', 'pods', 'meshnet_meshnet-pi2'), 'utf8'), /secret/, 'the join token is not stored');
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test("the stand-in server's endpoints: the token first, then a node's record or a pod's status", () => {
  const dir = mkdtempSync(join(tmpdir(), 'armlab-u'));
  try {
    const k3s = join(dir, 'k3s');
    writeFileSync(k3s, standInScript('v1.31.12+k3s1', 'arm'), { mode: 0o755 });
    const data = join(dir, 'data');
    mkdirSync(join(data, 'server'), { recursive: true });
    writeFileSync(join(data, 'server', 'token'), 'K10good::server:x\n');
    // The endpoint scripts as the server writes them for busybox httpd, run as its CGIs.
    const www = join(dir, 'www');
    execFileSync(k3s, ['stand-in-write-cgi', www], { env: { ...process.env, ARMLAB_STAND_IN_DATA: data } });
    const post = (endpoint: string, body: string) =>
      execFileSync(join(www, 'cgi-bin', endpoint), [], { input: body, encoding: 'utf8', env: { PATH: process.env.PATH, CONTENT_LENGTH: String(Buffer.byteLength(body)) } });
    const node = 'name=pi2&role=&version=v1.31.12+k3s1&arch=arm&labels=rack=a';
    assert.match(post('join', `token=K10bad&${node}`), /^Status: 401 Unauthorized/);
    assert.match(post('join', node), /^Status: 401 Unauthorized/, 'no token is a wrong token');
    assert.deepEqual(readdirSync(data + '/server'), ['token'], 'nothing written without the token');
    assert.match(post('join', 'token=K10good::server:x&name=../x'), /^Status: 400 Bad Request/);
    assert.match(post('join', `token=K10good::server:x&${node}`), /\r\n\r\nok\n$/);
    assert.match(readFileSync(join(data, 'server', 'nodes', 'pi2'), 'utf8'), /^name=pi2\nrole=\nversion=v1\.31\.12\+k3s1\narch=arm\nlabels=rack=a\nat=\d{10}\n$/);
    post('podstatus', 'token=K10good::server:x&namespace=meshnet&name=meshnet-pi2&node=pi2&phase=Running&ready=true');
    assert.match(readFileSync(join(data, 'server', 'pods', 'meshnet_meshnet-pi2'), 'utf8'), /^namespace=meshnet\nname=meshnet-pi2\nnode=pi2\nphase=Running\nready=true\nat=\d{10}\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("pod_execd: a pod is not Running while the stand-in sets it up, nor when its command cannot be exec'd; it is from the exec on", () => {
  const kubelet = join(import.meta.dirname, '..', 'k3s-stand-in', 'kubelet.sh');
  const dir = mkdtempSync(join(tmpdir(), 'armlab-u'));
  // As pod_start runs a pod: unshare --fork holds the pod's pid 1, which runs the stand-in's set-up (a script
  // named k3s, slow here) and then execs env, unshare and the command. The pid file holds the outer unshare's PID.
  const probe = (command: string) => {
    writeFileSync(join(dir, 'k3s'), `#!/bin/bash\nsleep 1\nexec env unshare -- ${command}\n`, { mode: 0o755 });
    return execFileSync('bash', ['-c', `source ${kubelet}
      d=${dir}; rm -f $d/execd
      setsid unshare --pid --fork --kill-child ${join(dir, 'k3s')} 2>/dev/null & echo $! > $d/pid
      states=''
      for i in $(seq 1 30); do if pod_execd $d; then states="$states R"; else states="$states -"; fi; sleep 0.1; done
      kill -KILL $(cat $d/pid) 2>/dev/null; wait; echo $states`], { encoding: 'utf8' }).trim().split(' ');
  };
  try {
    const runs = probe('sleep 30');
    assert.equal(runs[0], '-', `set-up is not Running: ${runs.join(' ')}`);
    assert.equal(runs.at(-1), 'R', `the command runs: ${runs.join(' ')}`);
    assert.ok(runs.slice(runs.indexOf('R')).every((s) => s === 'R'), runs.join(' '));
    const cannot = probe('/no/such/command');
    assert.ok(cannot.every((s) => s === '-'), `never exec'd: ${cannot.join(' ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the stand-in's deploy controller, as k3s's: a written manifest is what the cluster has only once applied; a removed file stays applied until kubectl delete -f", () => {
  const data = mkdtempSync(join(tmpdir(), 'armlab-u'));
  try {
    mkdirSync(join(data, 'server', 'manifests'), { recursive: true });
    const manifest = join(data, 'server', 'manifests', 'armlab-k8s-topo.yaml');
    const kubectl = join(import.meta.dirname, '..', 'k3s-stand-in', 'kubectl.sh');
    const run = (fn: string) => execFileSync('bash', ['-c', `set -euo pipefail; DATA=${data}; JQ=jq; source ${PARTS}; source ${kubectl}; ${fn}`], { encoding: 'utf8' });
    const seen = () => run('manifests_text');
    writeFileSync(manifest, 'kind: Deployment\nspec: {replicas: 1}\n');
    assert.equal(seen(), '', 'not applied before the controller reads the folder');
    run('apply_manifests');
    assert.equal(seen(), '---\nkind: Deployment\nspec: {replicas: 1}\n');
    writeFileSync(manifest, 'kind: Deployment\nspec: {replicas: 2}\n');
    assert.match(seen(), /replicas: 1/, 'the old object until the next read');
    run('apply_manifests');
    assert.match(seen(), /replicas: 2/);
    rmSync(manifest);
    run('apply_manifests');
    assert.match(seen(), /replicas: 2/, 'a removed file is not deleted from the cluster');
    // kubectl reads the object as applied (parsed once per change), with its annotations.
    const workload = () => JSON.parse(run('kubectl_get_workload deployment k8s-topo -n topo')) as { metadata: { annotations: Record<string, string> }; spec: { replicas: number } };
    writeFileSync(manifest, 'kind: Deployment\nmetadata:\n  name: k8s-topo\n  namespace: topo\n  annotations:\n    armlab.dev/spec: abc\nspec:\n  replicas: 2\n');
    run('apply_manifests');
    assert.deepEqual(workload().metadata.annotations, { 'armlab.dev/spec': 'abc' });
    assert.equal(workload().spec.replicas, 2);
    assert.equal(run('kubectl_delete_file /var/lib/rancher/k3s/server/manifests/armlab-k8s-topo.yaml'), 'deleted the objects of armlab-k8s-topo.yaml\n');
    assert.equal(seen(), '');
    assert.throws(() => run('kubectl_get_workload deployment k8s-topo -n topo 2>/dev/null'), 'deleted: not found');
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});
