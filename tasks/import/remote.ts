/**
 * The commands images:import runs on a node, all through `k3s ctr -n k8s.io`
 * (the namespace kubelet reads), and the parsing of what the probe prints.
 */
import { Raw, sh, type Command } from '../core/shell.ts';
import { configDigestOf, parseImageList, PINNED_LABEL, type NodeImage } from './plan.ts';

const CTR = new Raw('k3s ctr -n k8s.io');

/**
 * Read-only, one round trip: userland arch, decompressors, images, and each
 * armlab manifest's config digest — from the gc labels `ctr content ls` shows
 * (one call for all), or by reading a manifest that has none.
 */
export const IMPORT_PROBE: Command = sh`
printf 'arch=%s\\n' "$(dpkg --print-architecture 2>/dev/null || echo unknown)"
for tool in zstd gzip; do if command -v "$tool" >/dev/null 2>&1; then printf 'has=%s\\n' "$tool"; fi; done
if ! command -v k3s >/dev/null 2>&1; then echo 'k3s=missing'; exit 0; fi
images=$(${CTR} images ls)
echo '--- images'
printf '%s\\n' "$images"
content=$(${CTR} content ls | grep -F 'containerd.io/gc.ref.content.config=' || true)
echo '--- content'
printf '%s\\n' "$content"
echo '--- manifests'
printf '%s\\n' "$images" | awk 'NR > 1 && $1 ~ /^docker[.]io[/]armlab[/]/ { print $3 }' | sort -u | while read -r digest; do
  case "$content" in *"$digest"*) continue ;; esac
  printf '%s ' "$digest"; ${CTR} content get "$digest" | base64 -w0; echo
done`;

export interface ProbeResult {
  arch: string;
  decompressors: string[];
  k3s: boolean;
  images: NodeImage[];
}

export function parseProbe(stdout: string): ProbeResult {
  const [head = '', rest = ''] = stdout.split('--- images\n');
  const [list = '', afterList = ''] = rest.split('--- content\n');
  const [content = '', manifests = ''] = afterList.split('--- manifests\n');
  const arch = /^arch=(\S+)$/m.exec(head)?.[1] ?? 'unknown';
  const decompressors = [...head.matchAll(/^has=(\S+)$/gm)].map((m) => m[1]!);
  const configs = new Map<string, string>();
  for (const m of content.matchAll(/^(sha256:[0-9a-f]{64})\s.*containerd\.io\/gc\.ref\.content\.config=(sha256:[0-9a-f]{64})/gm)) configs.set(m[1]!, m[2]!);
  for (const line of manifests.split('\n')) {
    const [digest, b64] = line.trim().split(' ');
    const config = digest && b64 ? configDigestOf(Buffer.from(b64, 'base64').toString('utf8')) : null;
    if (digest && config) configs.set(digest, config);
  }
  const images = parseImageList(list).map((i) => {
    const configDigest = configs.get(i.digest);
    return configDigest ? { ...i, configDigest } : i;
  });
  return { arch, decompressors, k3s: !/^k3s=missing$/m.test(head), images };
}

export type Compression = 'zstd' | 'gzip' | 'none';

/**
 * Import the archive arriving on stdin for the node's platform (always
 * explicit: ctr would otherwise filter by its own), then, in the same round
 * trip, check what the ref now points to — the built config digest, for the
 * node's platform — and only then pin it. Exit 3 or 4: imported but not what
 * was built. Decompression happens in the node's pipe; pipefail makes a
 * broken stream fail the command.
 */
export function importCommand(platform: string, compression: Compression, ref: string, configDigest: string): Command {
  const decompress = compression === 'zstd' ? sh`zstd -dc |` : compression === 'gzip' ? sh`gzip -dc |` : sh``;
  return sh`${decompress} ${CTR} images import --platform ${platform} - >/dev/null
line=$(${CTR} images ls ${`name==${ref}`} | awk 'NR == 2')
digest=$(printf '%s' "$line" | awk '{ print $3 }'); platforms=$(printf '%s' "$line" | awk '{ print $(NF - 1) }')
[ -n "$digest" ] || { echo "no ref ${ref} after the import" >&2; exit 3; }
${CTR} content get "$digest" | grep -qF ${configDigest} || { echo "${ref} points to a manifest without config ${configDigest}" >&2; exit 3; }
case ",$platforms," in *,${platform},*) ;; *) echo "${ref} is for $platforms, not ${platform}" >&2; exit 4 ;; esac
${pinCommand(ref)}`;
}

export function pinCommand(ref: string): Command {
  return sh`${CTR} images label ${ref} ${`${PINNED_LABEL}=pinned`} >/dev/null`;
}

export function removeCommand(refs: string[]): Command {
  return sh`${CTR} images rm ${refs} >/dev/null`;
}
