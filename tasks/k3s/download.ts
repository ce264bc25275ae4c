/**
 * k3s artefacts on this machine: resolve the version once, download binary,
 * checksum file and install script once per architecture into
 * ~/.cache/armlab/k3s/<tag>/, verify sha256 before anything is uploaded.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256OfFile } from '../core/digest.ts';
import { RefusalError } from '../core/errors.ts';
import { cacheRoot } from '../lab/golden.ts';
import { assetFor, assetUrl, EXACT_VERSION, expectedSha256, sourcesFor, tagFromChannelAnswer, type Sources } from './artifacts.ts';

export interface ArchArtifacts {
  arch: string;
  binaryPath: string;
  sha256: string;
}

export interface K3sArtifacts {
  tag: string;
  installScript: string;
  byArch: Map<string, ArchArtifacts>;
}

export interface DownloadOptions {
  offline?: boolean;
  log?: (msg: string) => void;
}

export function k3sCacheDir(tag: string): string {
  return join(cacheRoot(), 'k3s', tag);
}

async function fetchOk(url: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(300_000) });
  } catch (err) {
    const cause = (err as Error).cause ? String((err as Error & { cause: Error }).cause.message) : (err as Error).message;
    throw new Error(`cannot download ${url}: ${cause}; without a route to it, set k3s.mirror in the inventory to a mirror you can reach, or fill ~/.cache/armlab/k3s/ and use --offline`);
  }
  if (!res.ok) throw new Error(`cannot download ${url}: HTTP ${res.status}`);
  return res;
}

async function download(url: string, dest: string): Promise<void> {
  const body = Buffer.from(await (await fetchOk(url)).arrayBuffer());
  const tmp = `${dest}.part`;
  await writeFile(tmp, body);
  await rename(tmp, dest);
}

/** An exact version stays as is; a channel is asked once (offline: the last answer cached). */
export async function resolveVersion(version: string, sources: Sources, opts: DownloadOptions = {}): Promise<string> {
  if (EXACT_VERSION.test(version)) return version;
  const remembered = join(cacheRoot(), 'k3s', 'channels', version);
  if (opts.offline) {
    const tag = (await readFile(remembered, 'utf8').catch(() => '')).trim();
    if (!tag) throw new RefusalError(`--offline: channel "${version}" was never resolved on this machine; set k3s.version to an exact version such as v1.31.12+k3s1`);
    return tag;
  }
  const url = `${sources.channels}/${version}`;
  const res = await fetchOk(url);
  const tag = tagFromChannelAnswer(res.url, await res.text());
  if (!tag) throw new Error(`channel "${version}" (${url}) did not resolve to a k3s version (got ${res.url})`);
  await mkdir(join(cacheRoot(), 'k3s', 'channels'), { recursive: true });
  await writeFile(remembered, `${tag}\n`);
  return tag;
}

/**
 * Everything the given architectures need, from the cache or downloaded once.
 * A binary whose sha256 does not match its checksum file is deleted and refused.
 */
export async function ensureArtifacts(version: string, mirror: string | undefined, arches: string[], opts: DownloadOptions = {}): Promise<K3sArtifacts> {
  const sources = sourcesFor(mirror);
  const tag = await resolveVersion(version, sources, opts);
  const dir = k3sCacheDir(tag);
  await mkdir(dir, { recursive: true });
  const wanted = [...new Set(arches)].map((a) => assetFor(a));
  const files = ['install.sh', ...wanted.flatMap((a) => [a.binary, a.checksums])];
  const missing = files.filter((f) => !existsSync(join(dir, f)));
  if (opts.offline && missing.length > 0) {
    throw new RefusalError(`--offline: the cache ${dir} lacks ${missing.join(', ')}; run once without --offline (or copy them there)`);
  }
  for (const file of missing) {
    const url = file === 'install.sh' ? sources.installScript : assetUrl(sources, tag, file);
    opts.log?.(`downloading ${url}`);
    await download(url, join(dir, file));
  }

  const byArch = new Map<string, ArchArtifacts>();
  for (const asset of wanted) {
    const listing = await readFile(join(dir, asset.checksums), 'utf8');
    const expected = expectedSha256(listing, asset.binary);
    if (!expected) {
      await rm(join(dir, asset.checksums), { force: true });
      throw new RefusalError(`${asset.checksums} for ${tag} has no line for ${asset.binary}; removed it from the cache`);
    }
    const binaryPath = join(dir, asset.binary);
    const actual = await sha256OfFile(binaryPath);
    if (actual !== expected) {
      await rm(binaryPath, { force: true });
      throw new RefusalError(`${asset.binary} ${tag}: sha256 ${actual} does not match ${expected} from ${asset.checksums}; deleted the download and uploaded nothing`);
    }
    byArch.set(asset.arch, { arch: asset.arch, binaryPath, sha256: expected });
  }
  return { tag, installScript: join(dir, 'install.sh'), byArch };
}
