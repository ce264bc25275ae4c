/**
 * meshnet's state on one node, read-only, one round trip: what meshnetd wrote
 * into k3s's CNI conf folder (00-meshnet.conflist), the config it chained to,
 * the link type the host's plugin will read, the plugin in the folder k3s's
 * containerd runs plugins from, and whether meshnetd runs. Judged by
 * cniNodeProblems (pure), for cni:check and status.
 *
 * What meshnetd does, from openconfig/kne third_party/meshnet at 577a223f
 * (daemon/cni/cni.go Init, daemon/main.go, plugin/meshnet.go): at start it takes
 * the first valid non-meshnet config of /etc/cni/net.d (sorted), writes it back
 * as 00-meshnet.conflist with {type: meshnet} appended, and exits 1 when there
 * is none; it handles no signal, so a stopped meshnetd leaves that file behind
 * and pods would still be sent through a plugin with no daemon.
 */
import { sh, type Command } from '../core/shell.ts';
import { KV_FUNCTION, parseProbe } from '../preflight/probe.ts';
import type { NodeTask } from '../core/runner.ts';
import { isDeepStrictEqual } from 'node:util';
import { CONTAINERD_CNI_FACTS, CONTAINERD_CONFIGS, containerdCniOf } from './containerd-config.ts';
import { K3S_CNI_CONF_DIR, type LinkType } from './manifests.ts';

/** Where the plugin reads the link type: the host's own folder, not k3s's (plugin/meshnet.go l.407). */
export const HOST_LINK_TYPE_FILE = '/etc/cni/net.d/meshnet-inter-node-link-type';
const MESHNET_CONFLIST = `${K3S_CNI_CONF_DIR}/00-meshnet.conflist`;

export const CNI_NODE_PROBE: Command = sh`
${KV_FUNCTION}
b64() { if [ -f "$1" ]; then base64 -w0 < "$1"; else printf '<missing>'; fi; }
kv meshnet_conflist "$(b64 ${MESHNET_CONFLIST})"
for f in ${K3S_CNI_CONF_DIR}/*.conf ${K3S_CNI_CONF_DIR}/*.conflist ${K3S_CNI_CONF_DIR}/*.json; do
  if [ -f "$f" ] && [[ $f != *meshnet* ]]; then kv "conf \${f##*/}" "$(b64 "$f")"; fi
done
kv link_type "$(b64 ${HOST_LINK_TYPE_FILE})"
${CONTAINERD_CNI_FACTS}
meshnetd=no
for c in /proc/[0-9]*/comm; do
  n=''
  { read -r n < "$c"; } 2>/dev/null || continue
  if [[ $n == meshnetd ]]; then meshnetd=yes; break; fi
done
kv meshnetd "$meshnetd"
`;

export interface CniNodeFacts {
  /** 00-meshnet.conflist's text, null when missing. */
  meshnetConflist: string | null;
  /** The other configs in k3s's conf folder: file name → text. */
  configs: Record<string, string>;
  /** The host's link type file, null when missing. */
  linkType: string | null;
  binDir: string;
  plugin: boolean;
  meshnetdRunning: boolean;
}

const unb64 = (v: string | undefined) => (v === undefined || v === '<missing>' ? null : Buffer.from(v, 'base64').toString('utf8'));

export function parseCniNodeProbe(stdout: string): CniNodeFacts {
  const f = parseProbe(stdout);
  const configs: Record<string, string> = {};
  for (const [k, v] of Object.entries(f)) if (k.startsWith('conf ')) configs[k.slice(5)] = unb64(v) ?? '';
  const containerd = containerdCniOf(f);
  return {
    meshnetConflist: unb64(f.meshnet_conflist),
    configs,
    linkType: unb64(f.link_type),
    binDir: containerd.binDir ?? '',
    plugin: containerd.meshnetPlugin,
    meshnetdRunning: f.meshnetd === 'yes',
  };
}

type Json = Record<string, unknown>;

/** The config meshnetd chains to, chosen as its Init does: byte-sorted, first valid; with its plugin list. */
export function chainBase(configs: Record<string, string>): { file: string; plugins: unknown[] } | null {
  for (const file of Object.keys(configs).sort()) {
    let conf: Json;
    try {
      conf = JSON.parse(configs[file]!) as Json;
    } catch {
      continue;
    }
    if (file.endsWith('.conflist')) {
      if (typeof conf.name === 'string' && conf.name && Array.isArray(conf.plugins) && conf.plugins.length) return { file, plugins: conf.plugins };
    } else if (typeof conf.type === 'string' && conf.type) return { file, plugins: [conf] };
  }
  return null;
}

/** Pure: what is wrong with meshnet on a node (empty when it is chained, current, installed and running). */
export function cniNodeProblems(f: CniNodeFacts, linkType: LinkType): string[] {
  const problems: string[] = [];
  const base = chainBase(f.configs);
  if (f.meshnetConflist === null) {
    problems.push(`00-meshnet.conflist is missing (meshnetd writes it when it starts${f.meshnetdRunning ? '' : '; meshnetd is not running here'})`);
  } else {
    let plugins: unknown[] | null = null;
    try {
      const p = (JSON.parse(f.meshnetConflist) as Json).plugins;
      if (Array.isArray(p)) plugins = p;
    } catch {
      /* reported below */
    }
    if (!plugins) problems.push('00-meshnet.conflist is not a JSON plugin list');
    else if ((plugins.at(-1) as Json | undefined)?.type !== 'meshnet') problems.push(`00-meshnet.conflist does not end with meshnet (last plugin: ${String((plugins.at(-1) as Json | undefined)?.type ?? 'none')})`);
    else if (!base) problems.push(`00-meshnet.conflist chains to no config: k3s's own (10-flannel.conflist) is missing from ${K3S_CNI_CONF_DIR}`);
    // meshnetd rewrites the config through a Go map: same content, keys sorted, so compare values, not text.
    else if (!isDeepStrictEqual(plugins.slice(0, -1), base.plugins)) problems.push(`00-meshnet.conflist is stale: its plugins before meshnet are not ${base.file}'s (meshnetd chains at start: restart the meshnet pod on this node)`);
    if (!f.meshnetdRunning) problems.push('00-meshnet.conflist is stale: meshnetd is not running here, and a stopped meshnetd leaves its file behind (start the meshnet pod, or remove the file)');
  }
  if (!f.binDir) problems.push(`no CNI bin_dir in k3s's containerd config (${CONTAINERD_CONFIGS.join(' or ')})`);
  else if (!f.plugin) problems.push(`meshnet plugin missing from ${f.binDir}, where k3s's containerd runs CNI plugins`);
  // The plugin falls back to VXLAN without the file; any other mismatch is a silent change of link type.
  const hostLink = f.linkType?.trim() ?? null;
  if ((hostLink ?? 'VXLAN') !== linkType) {
    problems.push(`${HOST_LINK_TYPE_FILE} ${hostLink === null ? 'is missing' : `says ${hostLink}`}, the inventory says ${linkType}: the plugin would use ${hostLink ?? 'VXLAN'} (meshnet's pod writes it when it starts)`);
  }
  return problems;
}

/** One line for a healthy node. */
export function cniNodeSummary(f: CniNodeFacts): string {
  return `meshnet chained after ${chainBase(f.configs)?.file ?? '?'}; plugin in ${f.binDir}; meshnetd running`;
}

const CHECK_SETTLE_MS = 20_000;

/** After meshnet's rollout: on every node meshnet is chained after k3s's config, installed, running, with the inventory's link type. */
export const cniCheckTask: NodeTask<null> = {
  id: 'cni:check',
  appliesTo: (n) => n.role !== 'builder',
  async run(_node, conn, ctx) {
    // meshnet's pod is ready before meshnetd has surely written its config (it has no readiness probe): look again, bounded.
    const deadline = Date.now() + CHECK_SETTLE_MS;
    for (;;) {
      const facts = parseCniNodeProbe((await conn.run(CNI_NODE_PROBE)).stdout);
      const problems = cniNodeProblems(facts, ctx.inventory.cni.linkType);
      if (problems.length === 0) return { status: 'unchanged', reason: cniNodeSummary(facts) };
      if (Date.now() > deadline) return { status: 'failed', reason: problems.join('; ') };
      await new Promise((r) => setTimeout(r, 2000));
    }
  },
};
