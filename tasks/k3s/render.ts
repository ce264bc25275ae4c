/**
 * render: every file armlab would write on each node, fully rendered, without
 * connecting; secrets show as ***. Node facts that only a probe can tell
 * (an old iptables) are not known here and say so.
 */
import { dump } from 'js-yaml';
import { parseCommon, requireInventory, selectNodes } from '../core/args.ts';
import { loadInventory } from '../inventory/load.ts';
import type { Inventory, NodeSpec } from '../inventory/types.ts';
import { COMPONENTS, renderComponent } from '../deploy/deploy.ts';
import { recipeImages } from '../deploy/command.ts';
import { recipeFolders } from '../images/folders.ts';
import { k3sCniBinDirFallback } from '../deploy/manifests.ts';
import { CONFIG_PATH, configText, firstServer, installEnv, needsToken, renderConfig, TOKEN_FILE } from './config.ts';

export function renderNode(inv: Inventory, node: NodeSpec): string {
  if (node.role === 'builder') return `# ${node.name} (builder): no k3s files\n`;
  const parts = [
    `# ${node.name} (${node.role}) ${CONFIG_PATH} (mode 0600)`,
    configText(renderConfig(inv, node)).trimEnd(),
    `# ${node.name} install.sh environment (exported, never in argv)`,
    dump(installEnv(inv, node)).trimEnd(),
  ];
  if (needsToken(inv, node)) parts.push(`# ${node.name} ${TOKEN_FILE} (mode 0600): *** (the cluster token, read from the first server at install time)`);
  return `${parts.join('\n')}\n`;
}

/** The manifests cni:deploy and topo:deploy would write on the first server. */
async function renderManifests(inventory: Inventory): Promise<string> {
  const server = firstServer(inventory);
  if (!/^v\d+\.\d+\.\d+\+k3s\d+$/.test(inventory.k3s.version)) {
    return `# ${server.name}: the meshnet and k8s-topo manifests depend on the installed k3s version; k3s.version is the channel "${inventory.k3s.version}", so they are rendered at deploy time\n`;
  }
  const images = await recipeImages(recipeFolders({}, inventory).imagesDir);
  // No node to ask: the CNI bin folder is what this k3s release is known to use;
  // cni:deploy reads it from the containerd config k3s generated instead.
  const facts = { k3sVersion: inventory.k3s.version, cniBinDir: k3sCniBinDirFallback(inventory.k3s.version) };
  return [COMPONENTS.cni, COMPONENTS.topo]
    .map((c) => {
      const note = c.usesCniBinDir ? ` (CNI bin folder ${facts.cniBinDir} assumed for k3s ${facts.k3sVersion}; cni:deploy reads it from the node)` : '';
      return `# ${server.name} ${c.file} (mode 0600, ${c.task})${note}\n${renderComponent(c, inventory, facts, images)}`;
    })
    .join('---\n');
}

export async function renderCommand(argv: string[]): Promise<number> {
  const { common } = parseCommon(argv);
  const inventory = await loadInventory(requireInventory(common));
  const nodes = selectNodes(inventory, common.limit);
  process.stdout.write(nodes.map((n) => renderNode(inventory, n)).join('---\n'));
  process.stdout.write(`---\n${await renderManifests(inventory)}`);
  return 0;
}
