/**
 * render: every file armlab would write on each node, fully rendered, without
 * connecting; secrets show as ***. Node facts that only a probe can tell
 * (an old iptables) are not known here and say so.
 */
import { dump } from 'js-yaml';
import { parseCommon, requireInventory, selectNodes } from '../core/args.ts';
import { loadInventory } from '../inventory/load.ts';
import type { Inventory, NodeSpec } from '../inventory/types.ts';
import { CONFIG_PATH, configText, installEnv, needsToken, renderConfig, TOKEN_FILE } from './config.ts';

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

export async function renderCommand(argv: string[]): Promise<number> {
  const { common } = parseCommon(argv);
  const inventory = await loadInventory(requireInventory(common));
  const nodes = selectNodes(inventory, common.limit);
  process.stdout.write(nodes.map((n) => renderNode(inventory, n)).join('---\n'));
  return 0;
}
