import type { Role } from './schema.ts';

/** One node with its connection settings resolved (defaults merged, paths absolute). */
export interface NodeSpec {
  name: string;
  address: string;
  role: Role;
  labels: Record<string, string>;
  user: string;
  port: number;
  privateKey: string;
  knownHosts: string;
  become: boolean;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

/** The typed inventory every task receives; parsed once per run. */
export interface Inventory {
  file: string;
  cluster: string;
  nodes: NodeSpec[];
  k3s: { version: string; mirror?: string; config: Record<string, unknown> };
  /** sourceMirrors: upstream URL prefix → where to fetch from instead (paths relative to the inventory made absolute). */
  /** recipes, patches: folders (absolute); engine: a DOCKER_HOST-style address. Unset: the defaults (images/, patches/, DOCKER_HOST). */
  images: { builder?: string; platform: 'linux/arm/v7'; recipes?: string; patches?: string; engine?: string; sourceMirrors: Record<string, string> };
  cni: { linkType: 'VXLAN' | 'GRPC' };
  /** report, metrics: absolute paths when set; unset, the nightly's state folder holds them. */
  nightly: { schedule: string; randomizedDelay: string; onFailure?: string; report?: string; metrics?: string };
}
