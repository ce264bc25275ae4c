/**
 * Inventory: read once, parsed with js-yaml's event stream (for line numbers),
 * checked by the schema and the cross-field rules, and normalized into the
 * typed Inventory. Every problem is reported together, each with its line.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { constructFromEvents, parseEvents, YAMLException } from 'js-yaml';
import type { z } from 'zod';
import { InventoryError, type InventoryProblem } from '../core/errors.ts';
import { formatPath, indexPaths } from './positions.ts';
import { checkRules, suggestion } from './rules.ts';
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

/** Keys a strict object accepts at `path`, by walking the zod schema. */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let schema: z.core.$ZodType | undefined = inventorySchema;
  const unwrap = (s: z.core.$ZodType | undefined): z.core.$ZodType | undefined => {
    const def = s?._zod.def as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType } | undefined;
    if (!def) return undefined;
    if (def.innerType && ['optional', 'nullable', 'default', 'prefault', 'readonly'].includes(def.type)) return unwrap(def.innerType);
    if (def.type === 'pipe' && def.in) return unwrap(def.in);
    return s;
  };
  for (const part of path) {
    const def = unwrap(schema)?._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType } | undefined;
    if (def?.type === 'object' && typeof part === 'string') schema = def.shape?.[part];
    else if (def?.type === 'array') schema = def.element;
    else return [];
  }
  const def = unwrap(schema)?._zod.def as { type: string; shape?: Record<string, unknown> } | undefined;
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

function expandPath(p: string, baseDir: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return join(home, p.slice(2));
  return isAbsolute(p) ? p : resolve(baseDir, p);
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
    images: { ...(raw.images?.builder ? { builder: raw.images.builder } : {}), platform: 'linux/arm/v7' },
    cni: { linkType: raw.cni?.linkType ?? DEFAULTS.linkType },
  };
}

/**
 * Pure: parse inventory text. `file` is the name used in messages; relative
 * key paths resolve against `baseDir`.
 */
export function parseInventory(source: string, file: string, baseDir = dirname(resolve(file)), home = homedir()): Inventory {
  let events;
  let doc: unknown;
  try {
    events = parseEvents(source, { filename: file });
    const docs = constructFromEvents(events, { source, filename: file });
    if (docs.length > 1) throw new InventoryError([{ file, line: 1, path: '', message: 'holds several YAML documents; put the whole inventory in one' }]);
    doc = docs[0];
  } catch (err) {
    if (err instanceof YAMLException) {
      throw new InventoryError([{ file, line: (err.mark?.line ?? 0) + 1, path: '', message: `YAML syntax: ${err.reason}` }]);
    }
    throw err;
  }
  if (doc === undefined || doc === null) {
    throw new InventoryError([{ file, line: 1, path: '', message: 'is empty; expected a mapping with cluster and nodes (see inventory/example.yaml)' }]);
  }

  const where = indexPaths(source, events);
  const problems: InventoryProblem[] = [];
  const add = (path: (string | number)[], message: string) =>
    problems.push({ file, line: where.lineOf(path), path: formatPath(path), message });

  const parsed = inventorySchema.safeParse(doc);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      if (issue.code === 'unrecognized_keys') {
        const known = knownKeysAt(path);
        for (const key of issue.keys) {
          const hint = suggestion(key, known) || `; expected one of: ${known.join(', ')}`;
          add([...path, key], `unknown key${hint}`);
        }
      } else {
        add(path, issue.message);
      }
    }
  }
  for (const p of checkRules(doc)) add(p.path, p.message);

  if (problems.length > 0 || !parsed.success) {
    problems.sort((a, b) => a.line - b.line || a.path.localeCompare(b.path));
    throw new InventoryError(problems);
  }
  return normalize(parsed.data, file, baseDir, home);
}

/** Read and parse an inventory file; errors name the path as given. */
export async function loadInventory(file: string): Promise<Inventory> {
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file; pass --inventory inventory/<file>.yaml' : `cannot read it (${code ?? String(err)})`;
    throw new InventoryError([{ file, line: 0, path: '', message: why }]);
  }
  return parseInventory(source, file);
}
