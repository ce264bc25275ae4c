/**
 * Where one inventory's nightly keeps its state: a folder in armlab's cache
 * named by the cluster and the inventory's path (two inventories of the same
 * cluster name do not share a lock), unless the inventory names the report
 * and metrics files (nightly.report, nightly.metrics).
 */
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { Inventory } from '../inventory/types.ts';
import { cacheRoot } from '../lab/golden.ts';

export interface NightlyPaths {
  state: string;
  lock: string;
  /** The last good builds per image. */
  history: string;
  report: string;
  metrics: string;
}

export function nightlyPaths(inventory: Inventory, inventoryPath: string): NightlyPaths {
  const key = createHash('sha256').update(resolve(inventoryPath)).digest('hex').slice(0, 12);
  const state = join(cacheRoot(), 'nightly', `${inventory.cluster}-${key}`);
  return {
    state,
    lock: join(state, 'nightly.lock'),
    history: join(state, 'history.json'),
    report: inventory.nightly.report ?? join(state, 'report.json'),
    metrics: inventory.nightly.metrics ?? join(state, 'armlab_nightly.prom'),
  };
}
