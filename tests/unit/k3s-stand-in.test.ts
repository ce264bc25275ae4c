/**
 * The k3s stand-in's manifest reading (tests/k3s-stand-in/manifests.sh): the
 * stand-in kubelet runs what it reads, so a misread path would show up as a
 * lab test failure far from its cause. Checked here on the golden manifests.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

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
    const golden = readFileSync(join(import.meta.dirname, '..', 'golden', 'meshnet-k3s1.31-vxlan.yaml'), 'utf8');
    bash(`flatten_yaml | workload_specs ${dir}`, `---\n${golden}`);
    assert.deepEqual(readdirSync(dir), ['meshnet_meshnet.spec']);
    const get = (path: string) => bash(`spec_get ${join(dir, 'meshnet_meshnet.spec')} '${path}'`, '').trim();
    assert.equal(get('kind'), 'DaemonSet');
    assert.equal(get('spec.template.spec.containers.0.image'), 'armlab/meshnet:kne-082578e-1');
    assert.equal(get('spec.template.spec.containers.0.env.4.value'), 'VXLAN');
    assert.equal(get('spec.template.spec.containers.0.env.1.valueFrom.fieldRef.fieldPath'), 'spec.nodeName');
    assert.equal(get('spec.template.spec.containers.0.volumeMounts.1.name'), 'cni-bin');
    assert.equal(get('spec.template.spec.volumes.1.hostPath.path'), '/var/lib/rancher/k3s/data/current/bin');
    assert.equal(get('spec.template.spec.nodeSelector.kubernetes.io/arch'), 'arm');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
