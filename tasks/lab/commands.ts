/** CLI for the emulated Pi lab: lab:up, lab:status, lab:down. */
import { parseArgs } from 'node:util';
import { UsageError } from '../core/errors.ts';
import { renderTable } from '../core/table.ts';
import { labDown, labStatus, labUp } from './lab.ts';
import { defaultHosts, validateLabName, type Userland } from './plan.ts';

const OPTIONS = {
  name: { type: 'string', default: 'lab' },
  dir: { type: 'string' },
  nodes: { type: 'string', default: '3' },
  userland: { type: 'string', default: 'armhf' },
  amd64: { type: 'string', default: '' },
  'link-rate': { type: 'string' },
  'uplink-rate': { type: 'string' },
  'inventory-out': { type: 'string' },
  demo: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function parse(argv: string[]) {
  try {
    const { values } = parseArgs({ args: argv, options: OPTIONS, strict: true });
    const problem = validateLabName(values.name);
    if (problem) throw new UsageError(problem);
    return { ...values, dir: values.dir ?? `/var/lib/armlab/labs/${values.name}` };
  } catch (err) {
    throw err instanceof UsageError ? err : new UsageError((err as Error).message);
  }
}

export async function labUpCommand(argv: string[]): Promise<number> {
  const v = parse(argv);
  const count = Number(v.nodes);
  if (!Number.isInteger(count) || count < 1 || count > 20) throw new UsageError(`--nodes must be from 1 to 20, got "${v.nodes}"`);
  if (v.userland !== 'armhf' && v.userland !== 'amd64') throw new UsageError(`--userland must be armhf or amd64, got "${v.userland}"`);
  const amd64 = v.amd64.split(',').filter(Boolean);
  const hosts = defaultHosts(count, v.userland as Userland, amd64);
  const unknown = amd64.filter((n) => !hosts.some((h) => h.name === n));
  if (unknown.length) throw new UsageError(`--amd64 names hosts that do not exist: ${unknown.join(', ')} (hosts are pi1..pi${count})`);
  const inventoryOut = v['inventory-out'] ?? (v.name === 'lab' ? 'inventory/lab.yaml' : `inventory/lab-${v.name}.yaml`);
  const started = Date.now();
  const result = await labUp(
    { name: v.name, dir: v.dir, hosts, ...(v['link-rate'] ? { linkRate: v['link-rate'] } : {}), ...(v['uplink-rate'] ? { uplinkRate: v['uplink-rate'] } : {}), ...(v.demo ? { demo: true } : {}) },
    inventoryOut,
    (msg) => process.stdout.write(`${msg}\n`),
  );
  for (const c of result.changes) process.stdout.write(`changed: ${c}\n`);
  if (result.changes.length === 0) process.stdout.write(`unchanged: lab "${v.name}" is up, nothing to do\n`);
  process.stdout.write(
    `\nlab "${v.name}" ready in ${((Date.now() - started) / 1000).toFixed(1)}s: ${result.plan.hosts.map((h) => `${h.name}=${h.address}`).join(' ')}\n` +
      `inventory: ${inventoryOut}\n` +
      (v.demo
        ? `demo: k3s is the armlab k3s STAND-IN (not k3s), image sources are local fixtures, builds go to the lab's own Docker Engine\nnext: npm run bootstrap -- --inventory ${inventoryOut}\n`
        : `next: npm run preflight -- --inventory ${inventoryOut}\n`),
  );
  return 0;
}

export async function labStatusCommand(argv: string[]): Promise<number> {
  const v = parse(argv);
  const status = await labStatus(v.dir);
  if (!status) {
    process.stdout.write(`no lab "${v.name}" at ${v.dir}\n`);
    return 1;
  }
  const rows = status.hosts.map((h) => [h.name, h.address, h.userland, h.running ? `up (pid ${h.pid})` : 'down', h.containerd ? 'listening' : '-']);
  process.stdout.write(`lab "${v.name}" (${v.dir}), LAN ${status.plan.subnet}\n${renderTable(['HOST', 'ADDRESS', 'USERLAND', 'STATE', 'CONTAINERD'], rows)}\n`);
  return status.hosts.every((h) => h.running) ? 0 : 1;
}

export async function labDownCommand(argv: string[]): Promise<number> {
  const v = parse(argv);
  const removed = await labDown(v.dir);
  if (removed.length === 0) process.stdout.write(`unchanged: no lab "${v.name}" at ${v.dir}\n`);
  for (const r of removed) process.stdout.write(`removed: ${r}\n`);
  return 0;
}
