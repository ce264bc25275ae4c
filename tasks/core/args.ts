/** Command-line options shared by every inventory task, and node selection. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Inventory, NodeSpec } from '../inventory/types.ts';
import { suggestion } from '../inventory/rules.ts';
import { UsageError } from './errors.ts';

export const COMMON_OPTIONS = {
  inventory: { type: 'string', short: 'i' },
  limit: { type: 'string' },
  check: { type: 'boolean', default: false },
  verbose: { type: 'boolean', short: 'v', default: false },
  'accept-new-host-keys': { type: 'boolean', default: false },
  parallel: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

export interface CommonArgs {
  inventory: string;
  limit: string[] | null;
  check: boolean;
  verbose: boolean;
  acceptNewHostKeys: boolean;
  parallel: number;
}

export function parseCommon(argv: string[], extra: ParseArgsConfig['options'] = {}) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...extra }, allowPositionals: false, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const parallel = v.parallel === undefined ? 8 : Number(v.parallel);
  if (!Number.isInteger(parallel) || parallel < 1) throw new UsageError(`--parallel must be a whole number of at least 1, got "${String(v.parallel)}"`);
  const common: CommonArgs = {
    inventory: typeof v.inventory === 'string' ? v.inventory : '',
    limit: typeof v.limit === 'string' ? v.limit.split(',').map((s) => s.trim()).filter(Boolean) : null,
    check: v.check === true,
    verbose: v.verbose === true,
    acceptNewHostKeys: v['accept-new-host-keys'] === true,
    parallel,
  };
  return { common, values: v, help: v.help === true };
}

export function requireInventory(common: CommonArgs): string {
  if (!common.inventory) throw new UsageError('--inventory FILE is required (e.g. --inventory inventory/lab.yaml)');
  return common.inventory;
}

/** The nodes --limit selects; an unknown name is a usage error with a suggestion. */
export function selectNodes(inventory: Inventory, limit: string[] | null): NodeSpec[] {
  if (!limit) return inventory.nodes;
  const names = inventory.nodes.map((n) => n.name);
  const unknown = limit.filter((n) => !names.includes(n));
  if (unknown.length > 0) {
    throw new UsageError(unknown.map((n) => `--limit: no node "${n}" in ${inventory.file}${suggestion(n, names)}`).join('\n'));
  }
  return inventory.nodes.filter((n) => limit.includes(n.name));
}
