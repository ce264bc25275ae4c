/**
 * k3s release artefacts: which binary and checksum file serve which node
 * architecture, where they live (upstream or a mirror), and how a checksum
 * file names the expected hash. Pure.
 */
export interface K3sAsset {
  /** The Debian architecture of the nodes' userland that runs it. */
  arch: string;
  binary: string;
  checksums: string;
}

const ASSETS: Record<string, K3sAsset> = {
  armhf: { arch: 'armhf', binary: 'k3s-armhf', checksums: 'sha256sum-arm.txt' },
  arm64: { arch: 'arm64', binary: 'k3s-arm64', checksums: 'sha256sum-arm64.txt' },
  amd64: { arch: 'amd64', binary: 'k3s', checksums: 'sha256sum-amd64.txt' },
};

export function assetFor(arch: string): K3sAsset {
  const asset = ASSETS[arch];
  if (!asset) throw new Error(`k3s has no release for architecture "${arch}" (supported: ${Object.keys(ASSETS).join(', ')})`);
  return asset;
}

const USERLAND_OF_KERNEL: Record<string, string> = { armv7l: 'armhf', aarch64: 'arm64', x86_64: 'amd64' };

/** "armv7l/armhf"; "aarch64 kernel, armhf userland" when the two differ, as on a Pi 4 with 32-bit Pi OS. */
export function describeArch(kernel: string, userland: string): string {
  const natural = USERLAND_OF_KERNEL[kernel];
  return natural && userland && userland !== 'unknown' && natural !== userland ? `${kernel} kernel, ${userland} userland` : `${kernel}/${userland}`;
}

/**
 * Which k3s a node runs: decided by its userland, not its kernel. A Pi 4/400/CM4/5
 * on 32-bit Raspberry Pi OS boots a 64-bit kernel (uname -m aarch64) under an armhf
 * userland; k3s-armhf makes it a kubernetes.io/arch=arm node that takes the armv7
 * images (k3s-arm64 would label it arm64, and no armv7 pod would land). Without
 * dpkg the kernel decides.
 */
export function k3sArchOf(kernel: string, userland: string): string {
  if (userland && userland !== 'unknown') return userland;
  return USERLAND_OF_KERNEL[kernel] ?? kernel;
}

export const EXACT_VERSION = /^v\d+\.\d+\.\d+\+k3s\d+$/;

export interface Sources {
  /** `<releases>/<tag>/<asset>` */
  releases: string;
  /** `<channels>/<name>` redirects to a URL ending in the tag (or answers the tag as text). */
  channels: string;
  installScript: string;
}

export const UPSTREAM: Sources = {
  releases: 'https://github.com/k3s-io/k3s/releases/download',
  channels: 'https://update.k3s.io/v1-release/channels',
  installScript: 'https://get.k3s.io',
};

/** A mirror serves `<mirror>/<tag>/<asset>`, `<mirror>/channels/<name>` and `<mirror>/install.sh`. */
export function sourcesFor(mirror: string | undefined): Sources {
  if (!mirror) return UPSTREAM;
  const base = mirror.replace(/\/+$/, '');
  return { releases: base, channels: `${base}/channels`, installScript: `${base}/install.sh` };
}

export function assetUrl(sources: Sources, tag: string, file: string): string {
  // `+` in a tag must be encoded, or it reads as a space.
  return `${sources.releases}/${encodeURIComponent(tag)}/${file}`;
}

/** The tag a channel resolved to: the last path segment of the final URL, or a bare tag body. */
export function tagFromChannelAnswer(finalUrl: string, body: string): string | null {
  const fromUrl = decodeURIComponent(finalUrl.split('?')[0]?.split('/').pop() ?? '');
  if (EXACT_VERSION.test(fromUrl)) return fromUrl;
  const fromBody = body.trim();
  return EXACT_VERSION.test(fromBody) ? fromBody : null;
}

/** Expected sha256 of `file` from a `sha256sum` listing: first field of the line ending in ` <file>`. */
export function expectedSha256(listing: string, file: string): string | null {
  for (const line of listing.split('\n')) {
    const [hash, name] = line.trim().split(/\s+\*?/);
    if (name === file && hash && /^[0-9a-f]{64}$/.test(hash)) return hash;
  }
  return null;
}

/**
 * `k3s version v1.31.12+k3s1 (abcdef12)` → `v1.31.12+k3s1 (abcdef12)`: the version and
 * the build the binary names itself by (upstream: its commit), shown as the node says it.
 */
export function k3sBuildOf(output: string): string | null {
  return /\b(v\d+\.\d+\.\d+\+k3s\d+(?: \([^)\n]*\))?)/.exec(output)?.[1] ?? null;
}

/** `k3s version v1.31.12+k3s1 (abcdef12)` → `v1.31.12+k3s1`; only the version token is relied on. */
export function parseK3sVersion(output: string): string | null {
  return /\b(v\d+\.\d+\.\d+\+k3s\d+)\b/.exec(output)?.[1] ?? null;
}
