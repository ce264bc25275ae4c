/** The shared shape of an inventory task command: load, select, run, summarise. */
import { loadInventory } from '../inventory/load.ts';
import type { Inventory, NodeSpec } from '../inventory/types.ts';
import { requireInventory, selectNodes, type CommonArgs } from './args.ts';
import { printSummary, runOnNodes, type NodeTask, type TaskReport } from './runner.ts';
import { redact } from './shell.ts';
import { Connections } from './connections.ts';

let sharedPool: Connections | null = null;

/**
 * One connection pool per run; with --verbose every remote command is printed,
 * secrets redacted. Inside withSharedConnections (bootstrap) every command
 * gets the same pool, so each node's SSH handshake happens once per run.
 */
export function connectionsFor(common: CommonArgs): Connections {
  return sharedPool ?? newPool(common, false);
}

function newPool(common: CommonArgs, shared: boolean): Connections {
  return new Connections(
    {
      acceptNewHostKeys: common.acceptNewHostKeys,
      ...(common.verbose
        ? { onCommand: (node: string, text: string) => process.stderr.write(`[${node}] $ ${redact(text).trim().split('\n').join(`\n[${node}]   `)}\n`) }
        : {}),
    },
    shared,
  );
}

/** Run fn with one pool shared by every command it runs, closed at the end. */
export async function withSharedConnections<T>(common: CommonArgs, fn: () => Promise<T>): Promise<T> {
  const pool = newPool(common, true);
  sharedPool = pool;
  try {
    return await fn();
  } finally {
    sharedPool = null;
    await pool.dispose();
  }
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
  return printSummary(task.id, result.outcomes);
}
