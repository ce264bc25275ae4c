/** cni:deploy and topo:deploy [--rollout-timeout SECONDS]: manifests onto the first server, rollout, checks. */
import { parseCommon, requireInventory, selectNodes } from '../core/args.ts';
import { UsageError } from '../core/errors.ts';
import { anyFailed, printSummary, runOnNodes, type Outcome } from '../core/runner.ts';
import { connectionsFor } from '../core/node-command.ts';
import { recipeFolders } from '../images/folders.ts';
import { loadRecipe } from '../images/recipe.ts';
import { loadInventory } from '../inventory/load.ts';
import { firstServer } from '../k3s/config.ts';
import { cniCheckTask } from './cni-node.ts';
import { readLock } from '../images/lock.ts';
import { COMPONENTS, deployTask, type DeployImages } from './deploy.ts';

const EXTRA = {
  'rollout-timeout': { type: 'string', default: '300' },
  'images-dir': { type: 'string' },
} as const;

/**
 * The side-loaded images: the builds the lock names as current (what
 * images:import puts on the nodes, an older tag too after a rollback), with
 * their config digests; else the names the recipes give.
 */
export async function recipeImages(imagesDir: string): Promise<DeployImages> {
  const [meshnet, topo] = await Promise.all([loadRecipe(imagesDir, 'patches', 'meshnet'), loadRecipe(imagesDir, 'patches', 'k8s-topo')]);
  const lock = await readLock();
  const built = (name: string) => lock.images[name];
  return {
    meshnet: built('meshnet')?.image ?? meshnet.image,
    topo: built('k8s-topo')?.image ?? topo.image,
    meshnetConfig: built('meshnet')?.configDigest,
    topoConfig: built('k8s-topo')?.configDigest,
  };
}

export async function deployCommand(which: 'cni' | 'topo', argv: string[]): Promise<number> {
  const { common, values } = parseCommon(argv, EXTRA);
  const seconds = Number(values['rollout-timeout']);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError(`--rollout-timeout: got "${String(values['rollout-timeout'])}", expected seconds, e.g. 300`);
  const inventory = await loadInventory(requireInventory(common));
  const component = COMPONENTS[which];
  const server = firstServer(inventory);
  const images = await recipeImages(recipeFolders(values, inventory).imagesDir);
  const connections = connectionsFor(common);
  const ctx = { inventory, connections, check: common.check, verbose: common.verbose, parallel: common.parallel };
  const outcomes: Outcome[] = [];
  try {
    const deployed = await runOnNodes(deployTask(component, { images, rolloutTimeoutMs: seconds * 1000, pollMs: 2000 }), [server], ctx);
    outcomes.push(...deployed.outcomes);
    const diagnosis = deployed.data.get(server.name)?.diagnosis;
    if (diagnosis) process.stdout.write(`\n${component.task}: diagnosis from ${server.name}\n${diagnosis}\n`);
    if (which === 'cni' && !anyFailed(outcomes) && !common.check) {
      outcomes.push(...(await runOnNodes(cniCheckTask, selectNodes(inventory, common.limit), ctx)).outcomes);
    }
  } finally {
    await connections.closeAll();
  }
  return printSummary(component.task, outcomes);
}
