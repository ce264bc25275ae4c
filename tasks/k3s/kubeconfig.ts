/**
 * kubeconfig: fetch the first server's k3s.yaml, point it at that server and
 * name it after the cluster, merge it into ~/.kube/config (or --kubeconfig),
 * keeping every other context; the file stays 0600.
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { dump, load } from 'js-yaml';
import { parseCommon, requireInventory } from '../core/args.ts';
import { noteChange } from '../core/changes.ts';
import { RefusalError } from '../core/errors.ts';
import { connectionsFor } from '../core/node-command.ts';
import { sh } from '../core/shell.ts';
import { loadInventory } from '../inventory/load.ts';
import { firstServer, serverUrl } from './config.ts';
import { mergeKubeconfig, removeCluster, retarget, type KubeConfig } from './kubeconfig-merge.ts';

export function defaultKubeconfigPath(): string {
  const fromEnv = process.env.KUBECONFIG?.split(':').find(Boolean);
  return fromEnv ?? join(homedir(), '.kube', 'config');
}

export async function kubeconfigCommand(argv: string[]): Promise<number> {
  const { common, values } = parseCommon(argv, { kubeconfig: { type: 'string' } });
  const target = typeof values.kubeconfig === 'string' ? values.kubeconfig : defaultKubeconfigPath();
  const inventory = await loadInventory(requireInventory(common));
  const server = firstServer(inventory);
  const connections = connectionsFor(common);
  let fetched: KubeConfig;
  try {
    const conn = await connections.get(server);
    const r = await conn.run(sh`cat /etc/rancher/k3s/k3s.yaml`, { allowFailure: true });
    if (r.code !== 0) throw new RefusalError(`${server.name}: no /etc/rancher/k3s/k3s.yaml; run k3s:install first`);
    fetched = load(r.stdout) as KubeConfig;
  } finally {
    await connections.closeAll();
  }
  const ours = retarget(fetched, inventory.cluster, serverUrl(inventory));
  const existingText = await readFile(target, 'utf8').catch(() => null);
  const merged = mergeKubeconfig(existingText ? (load(existingText) as KubeConfig) : null, ours);
  const text = dump(merged, { lineWidth: -1 });
  if (text === existingText) {
    process.stdout.write(`unchanged: context "${inventory.cluster}" in ${target} already points at ${serverUrl(inventory)}\n`);
    return 0;
  }
  if (common.check) {
    process.stdout.write(`would merge context "${inventory.cluster}" (${serverUrl(inventory)}) into ${target}\n`);
    return 0;
  }
  await writeKubeconfig(target, text);
  noteChange(`kubeconfig ${target}`);
  process.stdout.write(`changed: merged context "${inventory.cluster}" (${serverUrl(inventory)}) into ${target}; current context is now "${inventory.cluster}"\n`);
  return 0;
}

/** Replace the kubeconfig atomically, readable by its owner only (it holds the cluster's admin credentials). */
async function writeKubeconfig(target: string, text: string): Promise<void> {
  await mkdir(dirname(target), { recursive: true, mode: 0o700 });
  const tmp = `${target}.armlab-tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, target);
}

/**
 * Remove the context, cluster and user `name` from the user's kubeconfig when
 * they point at one of `servers` (lab:down: the lab's servers are gone).
 * Returns the file it changed, or null.
 */
export async function forgetCluster(name: string, servers: readonly string[], target = defaultKubeconfigPath()): Promise<string | null> {
  const text = await readFile(target, 'utf8').catch(() => null);
  if (!text) return null;
  const kept = removeCluster(load(text) as KubeConfig, name, servers);
  if (!kept) return null;
  await writeKubeconfig(target, dump(kept, { lineWidth: -1 }));
  return target;
}
