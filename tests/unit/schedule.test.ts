import assert from 'node:assert/strict';
import { test } from 'node:test';
import { queuePerKey, runInDependencyOrder } from '../../tasks/core/schedule.ts';

// The shipped recipes' shape: base under most, golang a stage of meshnet.
const items = [
  { name: 'base', after: [] },
  { name: 'golang', after: [] },
  { name: 'frr', after: ['base'] },
  { name: 'k8s-topo', after: ['base'] },
  { name: 'meshnet', after: ['base', 'golang'] },
];
const opts = (limit: number) => ({ key: (i: { name: string }) => i.name, after: (i: { after: string[] }) => i.after, limit });

test('runInDependencyOrder: never more than the limit at once, each item only after what it waits for, results in input order', async () => {
  const events: string[] = [];
  let running = 0;
  let most = 0;
  const done = new Set<string>();
  const results = await runInDependencyOrder(items, opts(2), async (item) => {
    for (const dep of item.after) assert.ok(done.has(dep), `${item.name} started before ${dep} ended`);
    running++;
    most = Math.max(most, running);
    events.push(`start ${item.name}`);
    await new Promise((r) => setImmediate(r));
    running--;
    done.add(item.name);
    return item.name.toUpperCase();
  });
  assert.equal(most, 2);
  assert.deepEqual(events.slice(0, 2), ['start base', 'start golang'], 'the two independent items ran side by side');
  assert.deepEqual(results.map((r) => (r.status === 'fulfilled' ? r.value : null)), ['BASE', 'GOLANG', 'FRR', 'K8S-TOPO', 'MESHNET']);
});

test('runInDependencyOrder: a failed item is settled for those after it, which still run; limit 1 is the plain order', async () => {
  const order: string[] = [];
  const results = await runInDependencyOrder(items, opts(1), async (item) => {
    order.push(item.name);
    if (item.name === 'base') throw new Error('base failed');
    return item.name;
  });
  assert.deepEqual(order, items.map((i) => i.name));
  assert.equal(results[0]!.status, 'rejected');
  assert.deepEqual(results.slice(1).map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
});

test('queuePerKey: calls with one key run one after another, even after a failure; other keys do not wait', async () => {
  const queue = queuePerKey();
  const events: string[] = [];
  const step = (name: string, fail = false) => async () => {
    events.push(`start ${name}`);
    await new Promise((r) => setImmediate(r));
    events.push(`end ${name}`);
    if (fail) throw new Error(name);
    return name;
  };
  const runs = [queue('a', step('a1', true)), queue('a', step('a2')), queue('b', step('b1'))];
  const settled = await Promise.allSettled(runs);
  assert.deepEqual(settled.map((s) => s.status), ['rejected', 'fulfilled', 'fulfilled']);
  assert.ok(events.indexOf('end a1') < events.indexOf('start a2'), events.join(', '));
  assert.ok(events.indexOf('start b1') < events.indexOf('end a1'), 'b did not wait for a');
});
