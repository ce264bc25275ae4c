/**
 * Pure: the meshnet and k8s-topo manifests, rendered from templates/ for one
 * cluster. Every change armlab makes for arm and k3s is one named patch below
 * with the reason for it. Output is plain objects, keys sorted, so the text is
 * stable and golden files can pin it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadAll, dump } from 'js-yaml';
import semver from 'semver';

export type LinkType = 'VXLAN' | 'GRPC';

export interface ManifestInputs {
  /** The folder the node's containerd runs CNI plugins from (deploy reads it from the node; see cniBinDirOf). */
  cniBinDir: string;
  linkType: LinkType;
  /** Side-loaded images, e.g. armlab/meshnet:kne-577a223-1. */
  meshnetImage: string;
  topoImage: string;
  /** The config digests of the builds images:build recorded for those images, when it did. */
  meshnetConfig?: string | undefined;
  topoConfig?: string | undefined;
}

type Obj = Record<string, unknown>;
type Container = Obj & { env?: Obj[]; resources?: Obj };
type PodSpec = Obj & { containers: Container[]; volumes?: (Obj & { name: string; hostPath?: { path: string } })[]; nodeSelector?: Record<string, string> };
type Workload = Obj & { spec: { template: { metadata?: { annotations?: Record<string, string> }; spec: PodSpec } } };

const TEMPLATES = new URL('../../templates/', import.meta.url);

function template(path: string): Obj[] {
  return (loadAll(readFileSync(new URL(path, TEMPLATES), 'utf8')) as Obj[]).filter(Boolean);
}

/** k3s keeps flannel's CNI config here, not in /etc/cni/net.d. */
export const K3S_CNI_CONF_DIR = '/var/lib/rancher/k3s/agent/etc/cni/net.d';

/** Where k3s keeps its CNI plugins when it writes no static folder: data/<hash>/bin, with data/current pointing at it. */
const K3S_DATA_CURRENT_BIN = '/var/lib/rancher/k3s/data/current/bin';
export const K3S_STATIC_CNI_BIN = '/var/lib/rancher/k3s/data/cni';

/**
 * The first patch release of each minor line with the static CNI bin folder
 * (k3s PR #10868, in v1.32.0; backported in the 2024-10 releases, k3s issues
 * #10928-#10931). Only a fallback for `render`, which has no node to ask:
 * deploys read the folder from the containerd config k3s generated.
 */
const STATIC_CNI_BIN_SINCE: Record<string, string> = { '1.28': '1.28.15', '1.29': '1.29.10', '1.30': '1.30.6', '1.31': '1.31.2' };

export function k3sCniBinDirFallback(k3sVersion: string): string {
  const v = semver.coerce(k3sVersion);
  if (!v) throw new Error(`cannot read a version from "${k3sVersion}"`);
  const since = STATIC_CNI_BIN_SINCE[`${v.major}.${v.minor}`];
  const isStatic = since ? semver.gte(v, since) : semver.gte(v, '1.32.0');
  return isStatic ? K3S_STATIC_CNI_BIN : K3S_DATA_CURRENT_BIN;
}

function podSpec(w: Obj): PodSpec {
  return (w as Workload).spec.template.spec;
}

// --- patches: each one a change from the upstream manifests, and why ---

/** The image is side-loaded by images:import: never pull (Always would defeat it, and nodes may have no registry access). */
function useSideLoadedImage(spec: PodSpec, image: string): void {
  for (const c of spec.containers) Object.assign(c, { image, imagePullPolicy: 'IfNotPresent' });
}

/**
 * A rebuilt image keeps its tag, so a node's kubelet would go on running the
 * old build: the build's config digest in the pod template makes a new build
 * a new template, which the workload's controller rolls out (what `kubectl
 * rollout restart` does with a timestamp, but declared in the manifest, so
 * k3s's deploy controller does not undo it and an unchanged build changes nothing).
 */
export const IMAGE_CONFIG_ANNOTATION = 'armlab.dev/image-config';

function rolloutOnNewBuild(w: Obj, configDigest: string | undefined): void {
  if (!configDigest) return;
  const template = (w as Workload).spec.template;
  template.metadata = { ...template.metadata, annotations: { ...template.metadata?.annotations, [IMAGE_CONFIG_ANNOTATION]: configDigest } };
}

/**
 * k3s applies a written manifest only when its deploy controller next reads the
 * folder (every 15 s), and until then the API still shows the old workload,
 * fully rolled out. The digest of the rendered spec on the workload itself
 * lets the rollout wait tell the applied object from the old one
 * (rollout.ts). Rendered last, over the spec as it will be applied.
 */
export const SPEC_DIGEST_ANNOTATION = 'armlab.dev/spec-digest';

function markSpecDigest(w: Obj): void {
  const digest = `sha256:${createHash('sha256').update(JSON.stringify(sortKeys(w.spec))).digest('hex')}`;
  const metadata = (w.metadata ?? {}) as Obj & { annotations?: Record<string, string> };
  w.metadata = { ...metadata, annotations: { ...metadata.annotations, [SPEC_DIGEST_ANNOTATION]: digest } };
}

/** The spec digest a rendered workload carries. */
export function specDigestOf(objects: Obj[], kind: string): string | undefined {
  const w = objects.find((o) => o.kind === kind) as { metadata?: { annotations?: Record<string, string> } } | undefined;
  return w?.metadata?.annotations?.[SPEC_DIGEST_ANNOTATION];
}

/** Upstream pins kubernetes.io/arch: amd64; these images are armv7 only. */
function armNodesOnly(spec: PodSpec): void {
  spec.nodeSelector = { 'kubernetes.io/arch': 'arm' };
}

/** Upstream sizes for servers (meshnet asks for 1G, limit 10G): a Pi 3 has 1 GB in all. */
function piSizedResources(spec: PodSpec, requests: { cpu: string; memory: string }, memoryLimit: string): void {
  for (const c of spec.containers) c.resources = { requests, limits: { memory: memoryLimit } };
}

/** k3s's CNI folders instead of /etc/cni/net.d and /opt/cni/bin. */
function k3sCniPaths(spec: PodSpec, cniBinDir: string): void {
  const paths: Record<string, string> = { 'cni-cfg': K3S_CNI_CONF_DIR, 'cni-bin': cniBinDir };
  for (const v of spec.volumes ?? []) if (v.hostPath && paths[v.name]) v.hostPath.path = paths[v.name]!;
}

/** VXLAN (default) or GRPC wires between nodes, from the inventory's cni.linkType. */
function linkType(spec: PodSpec, type: LinkType): void {
  for (const c of spec.containers) for (const e of c.env ?? []) if (e.name === 'INTER_NODE_LINK_TYPE') e.value = type;
}

/** Keys sorted at every level (as Go's encoding/json writes a map, and as armlab renders manifests). */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys((value as Obj)[k])]));
  }
  return value;
}

export function renderMeshnet(inputs: ManifestInputs): Obj[] {
  const objects = [
    ...template('meshnet/namespace.yaml'),
    ...template('meshnet/topology-crd.yaml'),
    // The gRPC wire resource exists only for that link type.
    ...(inputs.linkType === 'GRPC' ? template('meshnet/gwire-crd.yaml') : []),
    ...template('meshnet/rbac.yaml'),
    ...template('meshnet/daemonset.yaml'),
  ];
  const ds = objects.find((o) => o.kind === 'DaemonSet')!;
  const spec = podSpec(ds);
  useSideLoadedImage(spec, inputs.meshnetImage);
  rolloutOnNewBuild(ds, inputs.meshnetConfig);
  armNodesOnly(spec);
  // The request is what the scheduler books for a Go gRPC daemon with client-go
  // watches on Topology objects (tens of MB); the limit caps a leak at a quarter
  // of a 1 GB Pi, so the OOM killer takes meshnetd, not k3s. Not measured on the
  // real meshnetd (its Go modules cannot be fetched here): see the README.
  piSizedResources(spec, { cpu: '50m', memory: '64Mi' }, '256Mi');
  k3sCniPaths(spec, inputs.cniBinDir);
  linkType(spec, inputs.linkType);
  markSpecDigest(ds);
  return objects.map((o) => sortKeys(o) as Obj);
}

export function renderTopo(inputs: ManifestInputs): Obj[] {
  const objects = [...template('k8s-topo/rbac.yaml'), ...template('k8s-topo/deployment.yaml'), ...template('k8s-topo/service.yaml')];
  const deployment = objects.find((o) => o.kind === 'Deployment')!;
  const spec = podSpec(deployment);
  useSideLoadedImage(spec, inputs.topoImage);
  rolloutOnNewBuild(deployment, inputs.topoConfig);
  armNodesOnly(spec);
  piSizedResources(spec, { cpu: '50m', memory: '96Mi' }, '384Mi');
  markSpecDigest(deployment);
  return objects.map((o) => sortKeys(o) as Obj);
}

/** One YAML stream, `---` between objects, as it lands on the server. */
export function manifestText(objects: Obj[], header: string): string {
  return `# ${header}\n${objects.map((o) => dump(o, { lineWidth: -1, noRefs: true })).join('---\n')}`;
}
