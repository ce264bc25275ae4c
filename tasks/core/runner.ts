/**
 * Runs one task on many nodes with listr2: concurrently (bounded), one node's
 * failure never stopping the others, and a summary of what happened on each.
 */
import { Listr } from 'listr2';
import type { Inventory, NodeSpec } from '../inventory/types.ts';
import { noteChange } from './changes.ts';
import { reasonOf, RefusalError } from './errors.ts';
import { redact } from './shell.ts';
import { unlockKeysFirst } from './ssh-auth.ts';
import type { Connections } from './connections.ts';
import type { Connection } from './ssh.ts';
import { renderTable } from './table.ts';

export type Status = 'changed' | 'unchanged' | 'would change' | 'failed';

export interface Outcome {
  node: string;
  task: string;
  status: Status;
  reason: string;
}

export interface RunContext {
  inventory: Inventory;
  connections: Connections;
  check: boolean;
  verbose: boolean;
  parallel: number;
}

export interface NodeResult<D> {
  /** 'failed' here is a refusal judged by the task (data still reported). */
  status: Status;
  reason: string;
  data?: D;
}

export interface NodeTask<D> {
  id: string;
  /** Which of the selected nodes the task applies to (e.g. only servers). */
  appliesTo?: (node: NodeSpec) => boolean;
  run(node: NodeSpec, conn: Connection, ctx: RunContext, progress: (msg: string) => void): Promise<NodeResult<D>>;
}

export interface TaskReport<D> {
  outcomes: Outcome[];
  data: Map<string, D>;
}

export function rendererFor(verbose: boolean): 'default' | 'simple' | 'verbose' {
  if (verbose) return 'verbose';
  return process.stdout.isTTY ? 'default' : 'simple';
}

export async function runOnNodes<D>(task: NodeTask<D>, nodes: NodeSpec[], ctx: RunContext): Promise<TaskReport<D>> {
  const outcomes: Outcome[] = [];
  const data = new Map<string, D>();
  const targets = nodes.filter((n) => task.appliesTo?.(n) ?? true);
  await unlockKeysFirst(targets);
  const listr = new Listr(
    targets.map((node) => ({
      title: `${task.id} ${node.name}`,
      task: async (_: unknown, t: { output: string; title: string }) => {
        try {
          t.output = `connecting to ${node.address}`;
          const conn = await ctx.connections.get(node);
          const result = await task.run(node, conn, ctx, (msg) => {
            t.output = msg;
          });
          if (result.data !== undefined) data.set(node.name, result.data);
          outcomes.push({ node: node.name, task: task.id, status: result.status, reason: result.reason });
          if (result.status === 'failed') throw new RefusalError(`${node.name}: ${result.reason}`);
          t.title = `${task.id} ${node.name}: ${result.status} (${result.reason})`;
        } catch (err) {
          if (!(err instanceof RefusalError && outcomes.some((o) => o.node === node.name))) {
            outcomes.push({ node: node.name, task: task.id, status: 'failed', reason: reasonOf(err) });
          }
          throw err;
        }
      },
    })),
    {
      concurrent: ctx.parallel,
      exitOnError: false,
      collectErrors: 'minimal',
      renderer: rendererFor(ctx.verbose),
      rendererOptions: { collapseErrors: false },
    } as never,
  );
  await listr.run();
  const order = new Map(targets.map((n, i) => [n.name, i]));
  outcomes.sort((a, b) => (order.get(a.node) ?? 0) - (order.get(b.node) ?? 0));
  // Noted in inventory order, not in the order the nodes happened to finish.
  for (const o of outcomes) if (o.status === 'changed') noteChange(`${o.task} on ${o.node}`);
  return { outcomes, data };
}

export function renderSummary(outcomes: Outcome[]): string {
  return renderTable(
    ['NODE', 'TASK', 'RESULT', 'REASON'],
    outcomes.map((o) => [o.node, o.task, o.status, o.reason]),
  );
}

/** Pure: `id: ok`, `id: FAILED on pi1, pi2`, or for a failure of no single node (node '-') its task: `FAILED: k3s:artifacts`. */
export function verdictLine(id: string, outcomes: Outcome[]): string {
  const failed = outcomes.filter((o) => o.status === 'failed');
  if (failed.length === 0) return `${id}: ok`;
  const nodes = [...new Set(failed.filter((o) => o.node !== '-').map((o) => o.node))];
  const tasks = [...new Set(failed.filter((o) => o.node === '-').map((o) => o.task))];
  return `${id}: FAILED${tasks.length ? `: ${tasks.join(', ')}` : ''}${nodes.length ? `${tasks.length ? ';' : ''} on ${nodes.join(', ')}` : ''}`;
}

/**
 * A command's ending: the summary table, then `diagnosis` if any, then the
 * verdict line (`id: ok` or `id: FAILED on a, b`). Returns the exit code.
 */
export function printSummary(id: string, outcomes: Outcome[], diagnosis = ''): number {
  process.stdout.write(`\n${renderSummary(outcomes)}\n`);
  if (diagnosis) process.stdout.write(`\ndiagnosis:\n${redact(diagnosis)}\n`);
  process.stdout.write(`\n${verdictLine(id, outcomes)}\n`);
  return anyFailed(outcomes) ? 1 : 0;
}

export function anyFailed(outcomes: Outcome[]): boolean {
  return outcomes.some((o) => o.status === 'failed');
}
