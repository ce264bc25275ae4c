/**
 * Inventory: read once, parsed with js-yaml's event stream (for line numbers),
 * checked by the schema and the cross-field rules, and normalized into the
 * typed Inventory. Every problem is reported together, each with its line.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ProblemsError } from '../core/errors.ts';
import { parseLocated } from '../core/yaml-schema.ts';
import { absoluteTarget } from '../images/source-mirror.ts';
import { checkRules } from './rules.ts';
import { inventorySchema, type RawInventory } from './schema.ts';
import type { Inventory, NodeSpec } from './types.ts';

export const DEFAULTS = {
  user: 'pi',
  port: 22,
  privateKey: '~/.ssh/id_ed25519',
  knownHosts: '~/.ssh/known_hosts',
  become: true,
  connectTimeout: 15,
  commandTimeout: 600,
  k3sVersion: 'stable',
  linkType: 'VXLAN' as const,
};

function expandPath(p: string, baseDir: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return join(home, p.slice(2));
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/** A mirror target: a URL as it is; a path with ~ expanded, made absolute against the inventory's folder. */
function mirrorTarget(to: string, baseDir: string, home: string): string {
  return absoluteTarget(to === '~' || to.startsWith('~/') ? join(home, to.slice(1)) : to, baseDir);
}

function normalize(raw: RawInventory, file: string, baseDir: string, home: string): Inventory {
  const c = raw.connection ?? {};
  const nodes: NodeSpec[] = raw.nodes.map((n) => ({
    name: n.name,
    address: n.address,
    role: n.role,
    labels: n.labels ?? {},
    user: n.user ?? c.user ?? DEFAULTS.user,
    port: n.port ?? c.port ?? DEFAULTS.port,
    privateKey: expandPath(n.privateKey ?? c.privateKey ?? DEFAULTS.privateKey, baseDir, home),
    knownHosts: expandPath(c.knownHosts ?? DEFAULTS.knownHosts, baseDir, home),
    become: c.become ?? DEFAULTS.become,
    connectTimeoutMs: (c.connectTimeout ?? DEFAULTS.connectTimeout) * 1000,
    commandTimeoutMs: (c.commandTimeout ?? DEFAULTS.commandTimeout) * 1000,
  }));
  return {
    file,
    cluster: raw.cluster,
    nodes,
    k3s: { version: raw.k3s?.version ?? DEFAULTS.k3sVersion, ...(raw.k3s?.mirror ? { mirror: raw.k3s.mirror } : {}), config: raw.k3s?.config ?? {} },
    images: {
      ...(raw.images?.builder ? { builder: raw.images.builder } : {}),
      platform: 'linux/arm/v7',
      ...(raw.images?.recipes ? { recipes: expandPath(raw.images.recipes, baseDir, home) } : {}),
      ...(raw.images?.patches ? { patches: expandPath(raw.images.patches, baseDir, home) } : {}),
      ...(raw.images?.engine ? { engine: raw.images.engine } : {}),
      // A target that is not a URL is a path, relative to the inventory like the key paths.
      sourceMirrors: Object.fromEntries(Object.entries(raw.images?.sourceMirrors ?? {}).map(([prefix, to]) => [prefix, mirrorTarget(to, baseDir, home)])),
    },
    cni: { linkType: raw.cni?.linkType ?? DEFAULTS.linkType },
    nightly: {
      schedule: raw.nightly?.schedule ?? '03:00',
      randomizedDelay: raw.nightly?.randomizedDelay ?? '30min',
      ...(raw.nightly?.onFailure ? { onFailure: raw.nightly.onFailure } : {}),
      ...(raw.nightly?.report ? { report: expandPath(raw.nightly.report, baseDir, home) } : {}),
      ...(raw.nightly?.metrics ? { metrics: expandPath(raw.nightly.metrics, baseDir, home) } : {}),
    },
  };
}

/**
 * Pure: parse inventory text. `file` is the name used in messages; relative
 * key paths resolve against `baseDir`.
 */
export function parseInventory(source: string, file: string, baseDir = dirname(resolve(file)), home = homedir()): Inventory {
  const raw = parseLocated(source, file, inventorySchema, checkRules, 'is empty; expected a mapping with cluster and nodes (see inventory/example.yaml)');
  return normalize(raw, file, baseDir, home);
}

/** Read and parse an inventory file; errors name the path as given. */
export async function loadInventory(file: string): Promise<Inventory> {
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file; pass --inventory inventory/<file>.yaml' : `cannot read it (${code ?? String(err)})`;
    throw new ProblemsError([{ file, line: 0, path: '', message: why }]);
  }
  return parseInventory(source, file);
}
