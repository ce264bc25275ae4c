import assert from 'node:assert/strict';
import { test } from 'node:test';
import { changesNote, passThrough, stepOptions, stepsFrom } from '../../tasks/bootstrap.ts';
import { podsOn } from '../../tasks/status.ts';

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
