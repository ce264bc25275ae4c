/**
 * Emulated Pi lab: up (idempotent), down (removes exactly what up recorded),
 * status, and stopping one host (a power cut, for fault tests).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { dump } from 'js-yaml';
import { withBuildLock } from '../core/build-lock.ts';
import { RefusalError } from '../core/errors.ts';
import { run, requireCommands, requireRoot } from '../core/local.ts';
import { forgetCluster } from '../k3s/kubeconfig.ts';
import { ensureArmEmulation } from './binfmt.ts';
import { ensureDemo, removeDemo, type DemoSettings } from './demo.ts';
import { ensureGolden } from './golden.ts';
import { hostPublicKey, hostRuntime, isAlive, prepareHost, startHost, stopHost, waitForSshd, type HostProcess } from './host.ts';
import { ensureHostNetwork, ensureLan, removeNetwork, routesInUse } from './network.ts';
import { pickSubnet, planLab, validateLabName, type LabHostPlan, type LabPlan, type LabSpec } from './plan.ts';
import { readState, stateFile, writeState, type LabState } from './state.ts';

export const LAB_PACKAGES = {
  debootstrap: 'debootstrap',
  'systemd-nspawn': 'systemd-container',
  'qemu-arm-static': 'qemu-user-static',
  'update-binfmts': 'binfmt-support',
  containerd: 'containerd',
  jq: 'jq', // for the k3s stand-in's kubelet, beside the lab's containerd
  'ssh-keygen': 'openssh-client',
  ip: 'iproute2',
  tc: 'iproute2',
  unshare: 'util-linux',
};

// Held while a lab picks its subnet and makes its route (tasks/core/build-lock.ts).
const LAB_NETWORK_LOCK = '/run/armlab/lab-network.lock';
/** The demo's engine and fixture repositories. */
const DEMO_PACKAGES = { dockerd: 'docker.io', git: 'git', nsenter: 'util-linux' };

const INVENTORY_MARKER = '# written by armlab lab:up';
const SSHD_START_TIMEOUT_MS = 60_000;

export interface LabUpResult {
  plan: LabPlan;
  changes: string[];
  inventory: string;
}

function sameShape(a: LabSpec, b: LabSpec): boolean {
  return JSON.stringify([a.hosts, a.linkRate, a.uplinkRate, a.demo ?? false]) === JSON.stringify([b.hosts, b.linkRate, b.uplinkRate, b.demo ?? false]);
}

const DEMO_NOTE = [
  '# --demo: k3s.mirror serves the armlab k3s STAND-IN (tests/k3s-stand-in/), NOT k3s: real k3s cannot run',
  '# its kubelet in the lab\'s hosts. The image sources are local fixtures (tests/fixtures/upstream/) reached',
  '# through images.sourceMirrors; images.engine is the lab\'s own Docker Engine. README: "The demo".',
].join('\n');

const labClusterName = (plan: LabPlan) => (plan.name === 'lab' ? 'lab' : `lab-${plan.name}`);

function labInventory(plan: LabPlan, demo: DemoSettings | null): string {
  const doc = {
    cluster: labClusterName(plan),
    connection: {
      user: 'pi',
      privateKey: join(plan.dir, 'id_ed25519'),
      knownHosts: join(plan.dir, 'known_hosts'),
      connectTimeout: 20,
    },
    nodes: plan.hosts.map((h, i) => ({ name: h.name, address: h.address, role: i === 0 ? 'server' : 'agent', labels: { 'armlab.dev/lab-userland': h.userland } })),
    ...(demo ?? {}),
  };
  return `${INVENTORY_MARKER} for lab "${plan.name}" (${plan.dir}); lab:down removes it\n${demo ? `${DEMO_NOTE}\n` : ''}${dump(doc, { lineWidth: 200 })}`;
}

async function writeIfChanged(path: string, content: string, mode = 0o644): Promise<boolean> {
  const current = await readFile(path, 'utf8').catch(() => null);
  if (current === content) return false;
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content, { mode });
  return true;
}

export async function labUp(spec: LabSpec, inventoryPath: string, log: (msg: string) => void = () => {}): Promise<LabUpResult> {
  requireRoot('lab:up');
  await requireCommands(spec.demo ? { ...LAB_PACKAGES, ...DEMO_PACKAGES } : LAB_PACKAGES, spec.demo ? 'lab:up --demo' : 'lab:up');
  const nameProblem = validateLabName(spec.name);
  if (nameProblem) throw new Error(nameProblem);
  const inventory = resolve(inventoryPath);
  const existing = await readState(spec.dir);
  if (existing && !sameShape(existing.spec, spec)) {
    const was = `${existing.spec.hosts.length} hosts${existing.spec.demo ? ', --demo' : ''}`;
    throw new RefusalError(`lab "${spec.name}" in ${spec.dir} is already up with other settings (${was}); remove it first with: npm run lab:down -- --name ${spec.name}${spec.dir === `/var/lib/armlab/labs/${spec.name}` ? '' : ` --dir ${spec.dir}`}`);
  }
  const changes: string[] = [];
  if (spec.hosts.some((h) => h.userland === 'armhf')) changes.push(...(await ensureArmEmulation()));
  const golden: Record<string, string> = {};
  for (const userland of new Set(spec.hosts.map((h) => h.userland))) golden[userland] = await ensureGolden(userland, log);

  // A subnet is taken once its route exists: labs coming up side by side pick one at a time.
  const { state, plan, record } = await withBuildLock(LAB_NETWORK_LOCK, async () => {
    const state: LabState = existing ?? {
      version: 1,
      spec,
      third: pickSubnet(spec.name, await routesInUse()).third,
      created: { netns: [], rootLinks: [], files: [] },
      hosts: {},
    };
    const plan = planLab(state.spec, state.third);
    await writeState(state);
    const record = async (what: { netns?: string; rootLink?: string }) => {
      if (what.netns) state.created.netns.push(what.netns);
      if (what.rootLink) state.created.rootLinks.push(what.rootLink);
      await writeState(state);
    };
    changes.push(...(await ensureLan(plan, record)));
    return { state, plan, record };
  });
  const clientKey = join(plan.dir, 'id_ed25519');
  if (!existsSync(clientKey)) {
    await run`ssh-keygen -q -t ed25519 -N ${''} -C ${`armlab-lab-${plan.name}`} -f ${clientKey}`;
    changes.push(`created client key ${clientKey}`);
  }
  const clientPub = (await readFile(`${clientKey}.pub`, 'utf8')).trim();

  const starting: Promise<void>[] = [];
  for (const host of plan.hosts) {
    changes.push(...(await ensureHostNetwork(plan, host, record)));
    if (await prepareHost(host)) changes.push(`prepared ${host.name}'s disk in ${host.dir}`);
    const running = state.hosts[host.name];
    if (running && (await isAlive(running.unshare))) continue;
    const proc = await startHost(host, golden[host.userland] ?? '', clientPub);
    state.hosts[host.name] = proc;
    await writeState(state);
    changes.push(`started ${host.name} (${host.userland}, ${host.address})`);
    starting.push(waitForSshd(host.address, SSHD_START_TIMEOUT_MS, () => isAlive(proc.unshare)));
  }
  await Promise.all(starting);

  const knownHosts = (await Promise.all(plan.hosts.map(async (h) => `${h.address} ${(await hostPublicKey(h)).split(' ').slice(0, 2).join(' ')}`))).join('\n');
  if (await writeIfChanged(join(plan.dir, 'known_hosts'), `${knownHosts}\n`, 0o600)) changes.push('wrote known_hosts');

  let demo: DemoSettings | null = null;
  if (plan.demo) {
    const made = await ensureDemo(plan, state, () => writeState(state));
    changes.push(...made.changes);
    demo = made.settings;
  }

  const current = await readFile(inventory, 'utf8').catch(() => null);
  if (current !== null && !current.startsWith(INVENTORY_MARKER)) {
    throw new Error(`${inventoryPath} exists and was not written by lab:up; choose another path with --inventory-out`);
  }
  if (await writeIfChanged(inventory, labInventory(plan, demo))) {
    changes.push(`wrote inventory ${inventoryPath}`);
    if (!state.created.files.includes(inventory)) state.created.files.push(inventory);
    await writeState(state);
  }
  return { plan, changes, inventory };
}

async function hostOf(dir: string, name: string): Promise<{ host: LabHostPlan; proc: HostProcess | undefined }> {
  const state = await readState(dir);
  const host = state ? planLab(state.spec, state.third).hosts.find((h) => h.name === name) : undefined;
  if (!state || !host) throw new Error(`no host ${name} in the lab at ${dir}`);
  return { host, proc: state.hosts[name] };
}

/** Cut one host's power (its disk stays); labUp starts it again. */
export async function labStopHost(dir: string, name: string, how: 'poweroff' | 'power-cut' = 'power-cut'): Promise<boolean> {
  const { host, proc } = await hostOf(dir, name);
  return proc ? stopHost(host, proc, how) : false;
}

/** PID 1 (systemd) of the host's current boot, or null when it is down. */
export async function labHostInit(dir: string, name: string): Promise<number | null> {
  const { host } = await hostOf(dir, name);
  return (await hostRuntime(host))?.init ?? null;
}

export async function labDown(dir: string): Promise<string[]> {
  requireRoot('lab:down');
  const state = await readState(dir);
  if (!state) return [];
  const removed: string[] = [];
  const plan = planLab(state.spec, state.third);
  await Promise.all(
    plan.hosts.map(async (host) => {
      const proc = state.hosts[host.name];
      if (proc && (await stopHost(host, proc, 'poweroff'))) removed.push(`host ${host.name} (pid ${proc.unshare.pid})`);
      // systemd-nspawn leaves its propagation directory behind; it is named after our machine.
      const propagate = `/run/systemd/nspawn/propagate/${host.machine}`;
      if (existsSync(propagate)) await rm(propagate, { recursive: true, force: true });
    }),
  );
  removed.push(...(await removeDemo(plan, state)));
  // The kubeconfig task made the lab's cluster the current context: it points at nothing now.
  const servers = plan.hosts.map((h) => `https://${h.address}:6443`);
  const kubeconfig = await forgetCluster(labClusterName(plan), servers).catch(() => null);
  if (kubeconfig) removed.push(`context ${labClusterName(plan)} in ${kubeconfig}`);
  removed.push(...(await removeNetwork(state.created.netns, state.created.rootLinks)));
  for (const file of state.created.files) {
    const text = await readFile(file, 'utf8').catch(() => null);
    if (text?.startsWith(INVENTORY_MARKER)) {
      await rm(file);
      removed.push(`file ${file}`);
    }
  }
  // Only a directory that holds our state file is ours to delete.
  if (existsSync(stateFile(dir))) {
    await rm(dir, { recursive: true, force: true });
    removed.push(`directory ${dir}`);
  }
  return removed;
}

export interface HostStatus {
  name: string;
  address: string;
  userland: string;
  running: boolean;
  pid: number | null;
  containerd: boolean;
}

export async function labStatus(dir: string): Promise<{ plan: LabPlan; hosts: HostStatus[] } | null> {
  const state = await readState(dir);
  if (!state) return null;
  const plan = planLab(state.spec, state.third);
  const hosts = await Promise.all(
    plan.hosts.map(async (h) => {
      const rt = (await isAlive(state.hosts[h.name]?.unshare)) ? await hostRuntime(h) : null;
      // /proc/<pid>/root of the host's systemd is the host's own root: its /run.
      const containerd = rt !== null && existsSync(`/proc/${rt.init}/root/run/k3s/containerd/containerd.sock`);
      return { name: h.name, address: h.address, userland: h.userland, running: rt !== null, pid: rt?.init ?? null, containerd };
    }),
  );
  return { plan, hosts };
}
