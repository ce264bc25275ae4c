/** The shared shape of an inventory task command: load, select, run, summarise. */
import { loadInventory } from '../inventory/load.ts';
import type { Inventory, NodeSpec } from '../inventory/types.ts';
import { requireInventory, selectNodes, type CommonArgs } from './args.ts';
import { anyFailed, renderSummary, runOnNodes, type NodeTask, type TaskReport } from './runner.ts';
import { redact } from './shell.ts';
import { Connections } from './ssh.ts';

/** One connection pool per run; with --verbose every remote command is printed, secrets redacted. */
export function connectionsFor(common: CommonArgs): Connections {
  return new Connections({
    acceptNewHostKeys: common.acceptNewHostKeys,
    ...(common.verbose
      ? { onCommand: (node: string, text: string) => process.stderr.write(`[${node}] $ ${redact(text).trim().split('\n').join(`\n[${node}]   `)}\n`) }
      : {}),
  });
}

export async function runNodeCommand<D>(
  task: NodeTask<D>,
  common: CommonArgs,
  report?: (nodes: NodeSpec[], result: TaskReport<D>, inventory: Inventory) => string,
): Promise<number> {
  const inventory = await loadInventory(requireInventory(common));
  const nodes = selectNodes(inventory, common.limit);
  const connections = connectionsFor(common);
  let result: TaskReport<D>;
  try {
    result = await runOnNodes(task, nodes, { inventory, connections, check: common.check, verbose: common.verbose, parallel: common.parallel });
  } finally {
    await connections.closeAll();
  }
  const applied = nodes.filter((n) => task.appliesTo?.(n) ?? true);
  if (report) process.stdout.write(`\n${report(applied, result, inventory)}\n`);
  process.stdout.write(`\n${renderSummary(result.outcomes)}\n`);
  const failed = anyFailed(result.outcomes);
  process.stdout.write(failed ? `\n${task.id}: FAILED on ${result.outcomes.filter((o) => o.status === 'failed').map((o) => o.node).join(', ')}\n` : `\n${task.id}: ok\n`);
  return failed ? 1 : 0;
}
