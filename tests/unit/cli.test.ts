import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PrerequisiteError } from '../../tasks/core/errors.ts';
import { requireCommands } from '../../tasks/core/local.ts';
import { armlab } from '../helpers/lab.ts';

test('inventory:check prints the normalized inventory and exits 0', async () => {
  const r = await armlab(['inventory:check', '--inventory', 'inventory/example.yaml']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^cluster: pilab$/m);
  assert.match(r.stdout, /^    connectTimeoutMs: 15000$/m);
  assert.match(r.stdout, /^inventory\/example\.yaml: ok \(4 nodes\)$/m);
});

test('inventory:check exits 2 and lists every problem with its line', async () => {
  const r = await armlab(['inventory:check', '--inventory', 'tests/fixtures/inventory/broken.yaml']);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 13);
  assert.equal(lines[0], 'tests/fixtures/inventory/broken.yaml:1 cluster: got "Pi_Lab", expected the cluster name, a DNS-1123 label (lowercase letters, digits and "-", at most 63 characters, e.g. "pi1")');
  assert.equal(lines[12], '12 problems in tests/fixtures/inventory/broken.yaml');
});

test('usage errors exit 2 and say what to do', async () => {
  const noInv = await armlab(['preflight']);
  assert.equal(noInv.code, 2);
  assert.match(noInv.stderr, /--inventory FILE is required/);
  const unknown = await armlab(['preflite']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown task "preflite"; tasks: inventory:check, preflight, k3s:prep, k3s:install, k3s:uninstall, kubeconfig, render, images:build, images:import, cni:deploy, topo:deploy, bootstrap, nightly, images:rollback, nightly:install, nightly:uninstall, status, lab:up, lab:status, lab:down$/m);
  const badFlag = await armlab(['preflight', '--inventory', 'inventory/example.yaml', '--parallel', '0']);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /--parallel must be a whole number of at least 1, got "0"/);
});

test('a missing system command names the Debian package to install', async () => {
  await assert.rejects(requireCommands({ 'armlab-no-such-command': 'armlab-pkg', sh: 'dash' }, 'lab:up'), (err: Error) => {
    assert.ok(err instanceof PrerequisiteError);
    assert.equal(err.message, 'lab:up needs armlab-no-such-command (armlab-pkg); install with: apt-get install -y armlab-pkg');
    return true;
  });
});
