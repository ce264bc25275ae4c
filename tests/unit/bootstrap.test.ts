import assert from 'node:assert/strict';
import { test } from 'node:test';
import { changesNote, passThrough, stepOptions, stepsFrom } from '../../tasks/bootstrap.ts';
import { k3sApiProblem, podsOn } from '../../tasks/status.ts';
import { verdictLine } from '../../tasks/core/runner.ts';

const STEPS = ['preflight', 'k3s:install', 'kubeconfig', 'images:build', 'images:import', 'cni:deploy', 'topo:deploy'].map((name) => ({ name }));

test('--from resumes at a step; an unknown step is named with a suggestion', () => {
  assert.deepEqual(stepsFrom(STEPS, null).length, 7);
  assert.deepEqual(stepsFrom(STEPS, 'images:import').map((s) => s.name), ['images:import', 'cni:deploy', 'topo:deploy']);
  assert.throws(() => stepsFrom(STEPS, 'images:imprt'), /--from: no step "images:imprt"; did you mean "images:import"\?; steps: preflight, k3s:install/);
});

test('every step gets the common options as given, and not --from', () => {
  assert.deepEqual(passThrough(['--inventory', 'inv.yaml', '--from', 'cni:deploy', '--limit=pi1,pi2', '-v', '--check', '--parallel', '2']), ['--inventory', 'inv.yaml', '--limit=pi1,pi2', '-v', '--check', '--parallel', '2']);
  assert.deepEqual(passThrough(['--from=images:build', '-i', 'x.yaml']), ['-i', 'x.yaml']);
});

test('step-only options reach only the steps that take them', () => {
  const values = { 'rollout-timeout': '60', 'images-dir': 'my/images', 'docker-host': 'ssh://b', from: 'x' };
  assert.deepEqual(stepOptions('images:build', values), ['--images-dir', 'my/images', '--docker-host', 'ssh://b']);
  assert.deepEqual(stepOptions('cni:deploy', values), ['--rollout-timeout', '60', '--images-dir', 'my/images']);
  assert.deepEqual(stepOptions('images:import', values), []);
  assert.deepEqual(stepOptions('preflight', {}), []);
});

test("a step's changes in one cell: none, a few, or the first three and a count", () => {
  assert.equal(changesNote([]), 'changed nothing');
  assert.equal(changesNote(['k3s:install on pi1']), '1 changed: k3s:install on pi1');
  assert.equal(changesNote(['a', 'b', 'c', 'd', 'e']), '5 changed: a, b, c, and 2 more');
});

test('status: a pod as kubectl shows it, a waiting reason before the phase', () => {
  const pod = (name: string, node: string, phase: string, container: object) => ({ metadata: { name }, spec: { nodeName: node }, status: { phase, containerStatuses: [container] } });
  const list = {
    items: [
      pod('meshnet-pi1', 'pi1', 'Running', { ready: true, state: { running: {} } }),
      pod('k8s-topo-pi1', 'pi1', 'Running', { ready: false, state: { waiting: { reason: 'CrashLoopBackOff' } } }),
      pod('meshnet-pi2', 'pi2', 'Running', { ready: false, state: { running: {} } }),
      pod('coredns-x', 'pi2', 'Running', { ready: true }),
      pod('meshnet-pi3', 'pi3', 'Pending', { ready: false, state: { waiting: { reason: 'ErrImagePull' } } }),
    ],
  };
  assert.equal(podsOn('pi1', list), 'meshnet-pi1 Running, k8s-topo-pi1 CrashLoopBackOff');
  assert.equal(podsOn('pi2', list), 'meshnet-pi2 Running (not ready)');
  assert.equal(podsOn('pi3', list), 'meshnet-pi3 ErrImagePull');
  assert.equal(podsOn('pi4', list), '-');
});

test('the verdict line names failed nodes, and a failure of no single node by its task, never "-"', () => {
  const o = (node: string, task: string, status: 'failed' | 'unchanged') => ({ node, task, status, reason: '' });
  assert.equal(verdictLine('k3s:install', [o('pi1', 'k3s:install', 'unchanged')]), 'k3s:install: ok');
  assert.equal(verdictLine('k3s:install', [o('pi2', 'k3s:install', 'failed'), o('pi3', 'k3s:install', 'failed')]), 'k3s:install: FAILED on pi2, pi3');
  assert.equal(verdictLine('k3s:install', [o('-', 'k3s:artifacts', 'failed')]), 'k3s:install: FAILED: k3s:artifacts');
  assert.equal(verdictLine('k3s:install', [o('-', 'k3s:artifacts', 'failed'), o('pi1', 'k3s:install', 'failed')]), 'k3s:install: FAILED: k3s:artifacts; on pi1');
});

test('status says k3s is not installed when it is not, and otherwise what the API said', () => {
  assert.equal(k3sApiProblem('pi1', 127, 'bash: line 1: k3s: command not found\n'), 'k3s not installed on pi1');
  assert.equal(k3sApiProblem('pi1', 1, 'The connection to the server 127.0.0.1:6443 was refused\n'), 'no answer from k3s on pi1: The connection to the server 127.0.0.1:6443 was refused');
});
