/** A one-host amd64 lab with shaped links: the rates land on both ends of each link. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { run } from '../../tasks/core/local.ts';
import { startTestLab, type TestLab } from '../helpers/lab.ts';

describe('lab link shaping', { timeout: 300_000 }, () => {
  let lab: TestLab;
  before(async () => {
    lab = await startTestLab([{ name: 'pi1', userland: 'amd64' }], { linkRate: '240mbit', uplinkRate: '1gbit' });
  });
  after(async () => {
    if (lab) await lab.down();
  });

  test('each host link is shaped to --link-rate and the uplink to --uplink-rate', async () => {
    const host = lab.plan.hosts[0]!;
    const qdisc = async (ns: string | null, dev: string) => (ns ? run`tc -n ${ns} qdisc show dev ${dev}` : run`tc qdisc show dev ${dev}`);
    assert.match(await qdisc(host.netns, 'eth0'), /qdisc tbf .* rate 240Mbit/);
    assert.match(await qdisc(lab.plan.lanNetns, host.lanVeth), /qdisc tbf .* rate 240Mbit/);
    assert.match(await qdisc(null, lab.plan.uplinkRoot), /qdisc tbf .* rate 1Gbit/);
    assert.match(await qdisc(lab.plan.lanNetns, lab.plan.uplinkLan), /qdisc tbf .* rate 1Gbit/);
  });
});
