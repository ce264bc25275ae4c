/**
 * The lab's network: a bridge inside its own namespace (a bridge in this
 * machine's namespace would be subject to its FORWARD policy), one veth per
 * host, and one veth to this machine so that it reaches every host. Each
 * step checks first and reports whether it changed anything.
 */
import { run, succeeds } from '../core/local.ts';
import type { LabHostPlan, LabPlan } from './plan.ts';

export async function netnsExists(name: string): Promise<boolean> {
  const list = await run`ip netns list`;
  return list.split('\n').some((l) => l.split(' ')[0] === name);
}

async function linkExists(netns: string | null, dev: string): Promise<boolean> {
  return netns ? succeeds`ip -n ${netns} link show dev ${dev}` : succeeds`ip link show dev ${dev}`;
}

/** Routes of this machine, to keep a new lab's subnet clear of them. */
export async function routesInUse(): Promise<string[]> {
  return (await run`ip -4 route show`).split('\n').map((l) => l.split(' ')[0] ?? '');
}

/** tbf needs a burst of at least rate/HZ; 10 ms of traffic is ample. */
export function tbfBurst(rate: string): string {
  const m = /^(\d+(?:\.\d+)?)(k|m|g)?bit$/i.exec(rate);
  if (!m) throw new Error(`link rate "${rate}" is not like 240mbit, 1gbit or 500kbit`);
  const mult = { k: 1e3, m: 1e6, g: 1e9 }[(m[2] ?? '').toLowerCase() as 'k' | 'm' | 'g'] ?? 1;
  const bytes = Math.max(16 * 1024, Math.ceil((Number(m[1]) * mult) / 8 / 100));
  return `${bytes}b`;
}

async function shape(netns: string | null, dev: string, rate: string): Promise<void> {
  const args = ['qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', rate, 'burst', tbfBurst(rate), 'latency', '50ms'];
  if (netns) await run`tc -n ${netns} ${args}`;
  else await run`tc ${args}`;
}

/** Returns the names of namespaces it created, in creation order. */
export async function ensureLan(plan: LabPlan, record: (what: { netns?: string; rootLink?: string }) => Promise<void>): Promise<string[]> {
  const changes: string[] = [];
  const lan = plan.lanNetns;
  if (!(await netnsExists(lan))) {
    await run`ip netns add ${lan}`;
    await record({ netns: lan });
    changes.push(`created namespace ${lan}`);
  }
  await run`ip -n ${lan} link set lo up`;
  if (!(await linkExists(lan, plan.bridge))) {
    await run`ip -n ${lan} link add ${plan.bridge} type bridge`;
    changes.push(`created bridge ${plan.bridge} in ${lan}`);
  }
  await run`ip -n ${lan} link set ${plan.bridge} up`;
  if (!(await linkExists(null, plan.uplinkRoot))) {
    await run`ip link add ${plan.uplinkRoot} type veth peer name ${plan.uplinkLan} netns ${lan}`;
    await record({ rootLink: plan.uplinkRoot });
    changes.push(`created veth ${plan.uplinkRoot} (this machine ↔ lab LAN)`);
  }
  await run`ip -n ${lan} link set ${plan.uplinkLan} master ${plan.bridge} up`;
  const addrs = await run`ip -4 -o addr show dev ${plan.uplinkRoot}`;
  if (!addrs.includes(` ${plan.gateway}/`)) {
    await run`ip addr add ${`${plan.gateway}/${plan.prefix}`} dev ${plan.uplinkRoot}`;
    changes.push(`gave this machine ${plan.gateway} on the lab LAN`);
  }
  await run`ip link set ${plan.uplinkRoot} up`;
  if (plan.uplinkRate) {
    await shape(null, plan.uplinkRoot, plan.uplinkRate);
    await shape(lan, plan.uplinkLan, plan.uplinkRate);
  }
  return changes;
}

export async function ensureHostNetwork(plan: LabPlan, host: LabHostPlan, record: (what: { netns: string }) => Promise<void>): Promise<string[]> {
  const changes: string[] = [];
  if (!(await netnsExists(host.netns))) {
    await run`ip netns add ${host.netns}`;
    await record({ netns: host.netns });
    changes.push(`created namespace ${host.netns}`);
  }
  await run`ip -n ${host.netns} link set lo up`;
  if (!(await linkExists(plan.lanNetns, host.lanVeth))) {
    await run`ip -n ${plan.lanNetns} link add ${host.lanVeth} type veth peer name eth0 netns ${host.netns}`;
    changes.push(`created veth ${host.lanVeth} for ${host.name}`);
  }
  await run`ip -n ${plan.lanNetns} link set ${host.lanVeth} master ${plan.bridge} up`;
  const addrs = await run`ip -n ${host.netns} -4 -o addr show dev eth0`;
  if (!addrs.includes(` ${host.address}/`)) {
    await run`ip -n ${host.netns} addr add ${`${host.address}/${plan.prefix}`} dev eth0`;
    changes.push(`gave ${host.name} ${host.address}`);
  }
  await run`ip -n ${host.netns} link set eth0 up`;
  if (plan.linkRate) {
    await shape(plan.lanNetns, host.lanVeth, plan.linkRate);
    await shape(host.netns, 'eth0', plan.linkRate);
  }
  return changes;
}

/** Delete what the lab recorded creating; veth pairs vanish with either end's namespace. */
export async function removeNetwork(netns: string[], rootLinks: string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const ns of [...netns].reverse()) {
    if (await netnsExists(ns)) {
      await run`ip netns delete ${ns}`;
      removed.push(`namespace ${ns}`);
    }
  }
  for (const link of rootLinks) {
    // Deleting the LAN namespace takes this veth's peer, and the kernel then
    // removes this end asynchronously: it may vanish between check and delete.
    if ((await linkExists(null, link)) && !(await succeeds`ip link delete ${link}`) && (await linkExists(null, link))) {
      throw new Error(`could not delete veth ${link}`);
    }
    removed.push(`veth ${link}`);
  }
  return removed;
}
