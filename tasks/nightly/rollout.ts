/**
 * The night's rollout: import the new builds onto every node, then roll only
 * the workloads armlab deploys whose image changed (meshnet's DaemonSet for
 * meshnet, k8s-topo's Deployment for k8s-topo: their manifests carry the
 * build's config digest), waiting for each, bounded. When any of it fails,
 * every image changed tonight is put back to its last good build on every
 * node and those workloads are rolled again: the cluster stays on what worked.
 */
import { reasonOf } from '../core/errors.ts';
import type { CommonArgs } from '../core/args.ts';
import { connectionsFor } from '../core/node-command.ts';
import { anyFailed, runOnNodes, type RunContext } from '../core/runner.ts';
import { recipeImages } from '../deploy/command.ts';
import { COMPONENTS, deployTask } from '../deploy/deploy.ts';
import { writeLock, type LockEntry, type LockFile } from '../images/lock.ts';
import { archiveChecker } from '../import/archives.ts';
import { importTask } from '../import/import-node.ts';
import type { Inventory } from '../inventory/types.ts';
import { firstServer } from '../k3s/config.ts';
import { historyOf, recordGood, restoreBuild } from './history.ts';
import type { NightlyReport } from './report.ts';

/** The workloads armlab deploys, by the image they run. */
const WORKLOAD_OF: Record<string, 'cni' | 'topo'> = { meshnet: 'cni', 'k8s-topo': 'topo' };

export interface RolloutOptions {
  inventory: Inventory;
  common: CommonArgs;
  imagesDir: string;
  rolloutTimeoutMs: number;
  log: (m: string) => void;
}

export interface RolloutResult {
  nodes: NightlyReport['nodes'];
  /** What failed, when the rollout did (the images were then rolled back). */
  error: string | null;
  rolledBack: string[];
}

type Nodes = Map<string, NightlyReport['nodes'][number]>;

async function importEntries(entries: LockEntry[], ctx: RunContext, nodes: Nodes, field: 'imported' | 'rolledBack'): Promise<string | null> {
  const task = importTask(entries, { prune: false, compress: 'none', localCompressors: [], importTimeoutMs: 0, checkArchive: archiveChecker() });
  const result = await runOnNodes(task, ctx.inventory.nodes, ctx);
  const why = new Map<string, string>();
  for (const [name, data] of result.data) {
    const row = nodes.get(name);
    if (row) row[field].push(...data.images.filter((i) => i.result === 'imported').map((i) => i.image));
    // The image's own reason says what went wrong on the node; the task's only counts.
    const bad = data.images.filter((i) => i.result === 'failed' || i.result === 'refused').map((i) => `${i.image}: ${i.reason}`);
    if (bad.length) why.set(name, bad.join('; '));
  }
  const failed = result.outcomes.filter((o) => o.status === 'failed');
  for (const o of failed) {
    const row = nodes.get(o.node);
    if (row) row.error = why.get(o.node) ?? o.reason;
  }
  return failed.length ? `import failed on ${failed.map((o) => `${o.node} (${why.get(o.node) ?? o.reason})`).join(', ')}` : null;
}

async function rollWorkloads(names: string[], ctx: RunContext, opts: RolloutOptions): Promise<string | null> {
  const server = firstServer(opts.inventory);
  const images = await recipeImages(opts.imagesDir);
  for (const which of [...new Set(names.map((n) => WORKLOAD_OF[n]).filter((w) => w !== undefined))]) {
    const c = COMPONENTS[which];
    const r = await runOnNodes(deployTask(c, { images, rolloutTimeoutMs: opts.rolloutTimeoutMs, pollMs: 2000 }), [server], ctx);
    if (anyFailed(r.outcomes)) return `${c.task}: ${r.outcomes.find((o) => o.status === 'failed')!.reason}`;
    opts.log(`${c.task}: ${r.outcomes[0]?.reason ?? ''}`);
  }
  return null;
}

/** Import the lock's current builds of `names` onto every node and roll the workloads using them. */
export async function putOnNodes(names: string[], lock: LockFile, opts: RolloutOptions, field: 'imported' | 'rolledBack'): Promise<{ nodes: NightlyReport['nodes']; error: string | null }> {
  const nodes: Nodes = new Map(opts.inventory.nodes.map((n) => [n.name, { name: n.name, imported: [], rolledBack: [] }]));
  const forNodes = names.filter((n) => (lock.images[n]?.target ?? 'nodes') === 'nodes');
  const connections = connectionsFor(opts.common);
  const ctx: RunContext = { inventory: opts.inventory, connections, check: false, verbose: opts.common.verbose, parallel: opts.common.parallel };
  try {
    let error = forNodes.length ? await importEntries(forNodes.map((n) => lock.images[n]!), ctx, nodes, field) : null;
    if (!error) error = await rollWorkloads(forNodes, ctx, opts);
    return { nodes: [...nodes.values()], error };
  } catch (err) {
    return { nodes: [...nodes.values()], error: reasonOf(err) };
  } finally {
    await connections.closeAll();
  }
}

const merge = (a: NightlyReport['nodes'], b: NightlyReport['nodes']) =>
  a.map((n) => {
    const o = b.find((x) => x.name === n.name);
    const error = [n.error, o?.error].filter(Boolean).join('; ');
    return { name: n.name, imported: [...n.imported, ...(o?.imported ?? [])], rolledBack: [...n.rolledBack, ...(o?.rolledBack ?? [])], ...(error ? { error } : {}) };
  });

/** `built`: the images built and smoke-run tonight (their new builds are the lock's current entries). */
export async function rollOut(built: string[], lock: LockFile, opts: RolloutOptions): Promise<RolloutResult> {
  const first = await putOnNodes(built, lock, opts, 'imported');
  if (!first.error) {
    for (const name of built) await recordGood(lock, name);
    await writeLock(lock);
    return { nodes: first.nodes, error: null, rolledBack: [] };
  }
  opts.log(`rollout failed (${first.error}): putting ${built.join(', ')} back on their last good builds`);
  const rolledBack: string[] = [];
  for (const name of built) {
    const good = historyOf(lock, name)[0];
    if (good) {
      await restoreBuild(lock, name, good);
      rolledBack.push(name);
    } else {
      // Never good before: no build to go back to; forgotten, so that the next night builds it again.
      delete lock.images[name];
    }
  }
  await writeLock(lock);
  const again = await putOnNodes(rolledBack, lock, opts, 'rolledBack');
  return { nodes: merge(first.nodes, again.nodes), error: again.error ? `${first.error}; the rollback failed too: ${again.error}` : first.error, rolledBack };
}
