/**
 * Pure naming and addressing for an emulated Pi lab. Every namespace and
 * interface starts with `armlab-` so that leftovers are recognisable, and
 * carries the lab's name so that two labs (or two test runs) never collide.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';

export type Userland = 'armhf' | 'amd64';

export interface LabSpec {
  name: string;
  dir: string;
  hosts: { name: string; userland: Userland }[];
  /** tc rate for each host's link, e.g. "240mbit". */
  linkRate?: string;
  /** tc rate for this machine's link to the LAN, e.g. "1gbit". */
  uplinkRate?: string;
  /** Also a k3s stand-in release, fixture upstreams and an engine: a whole bootstrap offline (demo.ts). */
  demo?: boolean;
}

export interface LabHostPlan {
  name: string;
  index: number;
  userland: Userland;
  netns: string;
  /** systemd-nspawn machine name (unique on this machine). */
  machine: string;
  address: string;
  /** The host's veth end inside the LAN namespace (its own end is eth0). */
  lanVeth: string;
  dir: string;
}

export interface LabPlan {
  name: string;
  dir: string;
  lanNetns: string;
  bridge: string;
  /** The veth end in this machine's namespace, holding `gateway`. */
  uplinkRoot: string;
  uplinkLan: string;
  subnet: string;
  gateway: string;
  prefix: number;
  hosts: LabHostPlan[];
  linkRate?: string;
  uplinkRate?: string;
  demo: boolean;
}

/** Lab names end up in interface names (15 characters at most). */
export const LAB_NAME = /^[a-z0-9]{1,8}$/;

export function validateLabName(name: string): string | null {
  return LAB_NAME.test(name) ? null : `lab name "${name}" must be 1-8 lowercase letters or digits (it is part of interface names)`;
}

/** A /24 in 10.231.0.0/16 derived from the name, skipping ones in use. */
export function pickSubnet(name: string, inUse: readonly string[]): { subnet: string; third: number } {
  const start = createHash('sha256').update(name).digest().readUInt8(0) % 250;
  for (let i = 0; i < 250; i++) {
    const third = ((start + i) % 250) + 1;
    const subnet = `10.231.${third}.0/24`;
    if (!inUse.some((r) => r.startsWith(`10.231.${third}.`))) return { subnet, third };
  }
  throw new Error('no free /24 left in 10.231.0.0/16 for another lab');
}

export function planLab(spec: LabSpec, third: number): LabPlan {
  const base = `10.231.${third}`;
  return {
    name: spec.name,
    dir: spec.dir,
    lanNetns: `armlab-${spec.name}-lan`,
    bridge: 'armlab-br',
    uplinkRoot: `armlab-${spec.name}`,
    uplinkLan: 'armlab-up',
    subnet: `${base}.0/24`,
    gateway: `${base}.1`,
    prefix: 24,
    hosts: spec.hosts.map((h, i) => ({
      name: h.name,
      index: i + 1,
      userland: h.userland,
      netns: `armlab-${spec.name}-${h.name}`,
      machine: `armlab-${spec.name}-${h.name}`,
      address: `${base}.${11 + i}`,
      lanVeth: `armlab-h${i + 1}`,
      dir: join(spec.dir, 'hosts', h.name),
    })),
    ...(spec.linkRate ? { linkRate: spec.linkRate } : {}),
    ...(spec.uplinkRate ? { uplinkRate: spec.uplinkRate } : {}),
    demo: spec.demo ?? false,
  };
}

/** Host names pi1..piN, with the chosen userland for each. */
export function defaultHosts(count: number, userland: Userland, amd64Names: readonly string[] = []): LabSpec['hosts'] {
  return Array.from({ length: count }, (_, i) => {
    const name = `pi${i + 1}`;
    return { name, userland: amd64Names.includes(name) ? 'amd64' : userland };
  });
}
