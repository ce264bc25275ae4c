/**
 * Pure: what a node's containerd holds (from `k3s ctr images ls` and the
 * manifests of armlab's refs) and what images:import must do there — import,
 * skip, pin, purge or refuse — each with its reason.
 */
import type { LockEntry } from '../images/lock.ts';

export const PINNED_LABEL = 'io.cri-containerd.pinned';

export interface NodeImage {
  ref: string;
  /** The image's target: a manifest (what ctr import made) or an index. */
  digest: string;
  platforms: string[];
  labels: Record<string, string>;
  /** sha256 of the config, when the target is a single-platform manifest. */
  configDigest?: string;
}

/** ctr names bare docker names under docker.io: armlab/frr:1 -> docker.io/armlab/frr:1. */
export function containerdRef(image: string): string {
  const first = image.split('/')[0] ?? '';
  const hasRegistry = image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasRegistry) return image;
  return `docker.io/${image.includes('/') ? image : `library/${image}`}`;
}

export function repositoryOf(ref: string): string {
  const at = ref.lastIndexOf(':');
  return at > ref.lastIndexOf('/') ? ref.slice(0, at) : ref;
}

/** Debian architecture (dpkg --print-architecture) to the OCI platform containerd must be told. */
export function platformOfDebianArch(arch: string): string | null {
  return ({ armhf: 'linux/arm/v7', arm64: 'linux/arm64', amd64: 'linux/amd64', armel: 'linux/arm/v5' } as Record<string, string>)[arch] ?? null;
}

/**
 * `ctr images ls`: REF TYPE DIGEST SIZE PLATFORMS LABELS, where SIZE has a
 * space ("38.2 MiB") and LABELS is "-" or k=v,k=v.
 */
export function parseImageList(text: string): NodeImage[] {
  const out: NodeImage[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(\S+)\s+(sha256:[0-9a-f]{64})\s+\S+\s+\S+\s+(\S+)\s+(\S+)\s*$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[5] !== '-') {
      for (const kv of m[5]!.split(',')) {
        const eq = kv.indexOf('=');
        if (eq > 0) labels[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
    }
    out.push({ ref: m[1]!, digest: m[3]!, platforms: m[4] === '-' ? [] : m[4]!.split(','), labels });
  }
  return out;
}

/** The config digest of a single-platform manifest; null for an index or anything else. */
export function configDigestOf(manifestJson: string): string | null {
  try {
    const m = JSON.parse(manifestJson) as { config?: { digest?: string }; manifests?: unknown };
    return typeof m.config?.digest === 'string' ? m.config.digest : null;
  } catch {
    return null;
  }
}

export type Action =
  | { kind: 'skip'; entry: LockEntry; reason: string }
  | { kind: 'pin'; entry: LockEntry; reason: string }
  | { kind: 'import'; entry: LockEntry; reason: string }
  | { kind: 'refuse'; entry: LockEntry; reason: string };

export interface Purge {
  ref: string;
  reason: string;
}

export interface NodePlan {
  actions: Action[];
  purges: Purge[];
}

export function planNode(entries: LockEntry[], held: NodeImage[], nodePlatform: string, prune: boolean): NodePlan {
  const byRef = new Map(held.map((i) => [i.ref, i]));
  const actions: Action[] = entries.map((entry): Action => {
    const ref = containerdRef(entry.image);
    if (entry.platform !== nodePlatform) return { kind: 'refuse', entry, reason: `the archive is ${entry.platform}, the node is ${nodePlatform}; nothing sent` };
    const have = byRef.get(ref);
    if (!have) return { kind: 'import', entry, reason: 'not on the node' };
    if (!have.platforms.includes(nodePlatform)) return { kind: 'import', entry, reason: `the node holds it for ${have.platforms.join(',') || 'no platform'}; replacing it` };
    if (have.configDigest !== entry.configDigest) return { kind: 'import', entry, reason: `the node holds config ${(have.configDigest ?? 'unknown').slice(0, 19)}, the build is ${entry.configDigest.slice(0, 19)}` };
    if (have.labels[PINNED_LABEL] !== 'pinned') return { kind: 'pin', entry, reason: 'present with the same config digest, not pinned' };
    return { kind: 'skip', entry, reason: 'present with the same config digest, pinned' };
  });

  const wanted = new Map(entries.map((e) => [containerdRef(e.image), e]));
  const repositories = new Set([...wanted.keys()].map(repositoryOf));
  const purges: Purge[] = [];
  for (const image of held) {
    if (wanted.has(image.ref) || !repositories.has(repositoryOf(image.ref))) continue;
    if (!image.platforms.includes(nodePlatform)) purges.push({ ref: image.ref, reason: `${image.platforms.join(',') || 'no platform'}, not ${nodePlatform}` });
    else if (prune && image.ref.startsWith('docker.io/armlab/')) purges.push({ ref: image.ref, reason: 'an older armlab tag (--prune)' });
  }
  return { actions, purges };
}
