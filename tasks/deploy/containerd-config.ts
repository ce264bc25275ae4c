/**
 * The containerd config k3s generates on every node names the folder containerd
 * runs CNI plugins from: read it there rather than guess it from a version.
 * One shell fragment prints the config (and whether meshnet's plugin is in each
 * folder it names); one parser reads the folder, for the deploy probe and the
 * node check alike.
 */
import { sh, type Command } from '../core/shell.ts';

/** k3s writes config-v3.toml with containerd 2 (from v1.31.6/v1.32.2), config.toml before: the first that exists is the node's. */
export const CONTAINERD_CONFIGS = ['/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml', '/var/lib/rancher/k3s/agent/etc/containerd/config.toml'];

/** Prints `containerd_config=<base64>` of the node's config, and `meshnet_in <dir>=present` for each quoted folder in it holding the plugin. */
export const CONTAINERD_CNI_FACTS: Command = sh`for f in ${CONTAINERD_CONFIGS}; do
  if [ -f "$f" ]; then
    printf 'containerd_config=%s\\n' "$(base64 -w0 < "$f")"
    for d in $(grep -o '"/[^"]*"' "$f" | tr -d '"'); do if [ -x "$d/meshnet" ]; then printf 'meshnet_in %s=present\\n' "$d"; fi; done
    break
  fi
done`;

export interface ContainerdCni {
  /** The CNI bin folder, null when there is no config (k3s's agent has not started) or it names none. */
  binDir: string | null;
  /** meshnet's plugin is in that folder. */
  meshnetPlugin: boolean;
}

/** From the key=value facts the fragment printed. */
export function containerdCniOf(facts: Record<string, string>): ContainerdCni {
  const binDir = cniBinDirOf(Buffer.from(facts.containerd_config ?? '', 'base64').toString('utf8'));
  return { binDir, meshnetPlugin: binDir !== null && facts[`meshnet_in ${binDir}`] === 'present' };
}

/**
 * Pure: the folder named by the `bin_dir` (or the first of `bin_dirs`) of the
 * config's `…cni]` table (`[plugins."io.containerd.grpc.v1.cri".cni]` in
 * config.toml, `[plugins.'io.containerd.cri.v1.runtime'.cni]` in config-v3.toml).
 */
export function cniBinDirOf(containerdConfig: string): string | null {
  let inCni = false;
  for (const raw of containerdConfig.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) {
      inCni = /\.cni['"]?\]$/.test(line);
      continue;
    }
    if (!inCni) continue;
    const m = /^bin_dirs?\s*=\s*\[?\s*["']([^"']+)["']/.exec(line);
    if (m) return m[1]!;
  }
  return null;
}
