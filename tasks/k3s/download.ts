/**
 * k3s artefacts on this machine: resolve the version once, download binary,
 * checksum file and install script once per architecture into
 * ~/.cache/armlab/k3s/<tag>/, verify sha256 before anything is uploaded.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256OfFile } from '../core/digest.ts';
import { RefusalError } from '../core/errors.ts';
import { cacheRoot } from '../lab/golden.ts';
import { assetFor, assetUrl, EXACT_VERSION, expectedSha256, sourcesFor, tagFromChannelAnswer } from './artifacts.ts';

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

/**
 * Upstream's releases (and channel answers) under k3s/; a mirror's under k3s/mirrors/<its hash>/:
 * a tag names a release only together with where it came from (a mirror may serve
 * a build of its own, as the lab's demo serves the k3s stand-in), so one source's
 * binary is never taken for another's.
 */
/** The folder name of a mirror's cache: its URL's hash (a trailing slash does not count). */
export function mirrorCacheKey(mirror: string): string {
  return createHash('sha256').update(mirror.replace(/\/+$/, '')).digest('hex').slice(0, 12);
}

function sourceCacheRoot(mirror: string | undefined): string {
  return mirror ? join(cacheRoot(), 'k3s', 'mirrors', mirrorCacheKey(mirror)) : join(cacheRoot(), 'k3s');
}

export function k3sCacheDir(tag: string, mirror?: string): string {
  return join(sourceCacheRoot(mirror), tag);
}

/** A file: URL's body, as fetch would give an http one (Node's fetch does not read files). */
async function readFileUrl(url: string): Promise<Buffer> {
  try {
    return await readFile(fileURLToPath(url));
  } catch (err) {
    throw new Error(`cannot read ${url}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file in the mirror folder' : (err as Error).message}`);
  }
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
  const body = url.startsWith('file:') ? await readFileUrl(url) : Buffer.from(await (await fetchOk(url)).arrayBuffer());
  const tmp = `${dest}.part`;
  await writeFile(tmp, body);
  await rename(tmp, dest);
}

/** An exact version stays as is; a channel is asked once (offline: the last answer cached). */
export async function resolveVersion(version: string, mirror: string | undefined, opts: DownloadOptions = {}): Promise<string> {
  if (EXACT_VERSION.test(version)) return version;
  const sources = sourcesFor(mirror);
  const remembered = join(sourceCacheRoot(mirror), 'channels', version);
  if (opts.offline) {
    const tag = (await readFile(remembered, 'utf8').catch(() => '')).trim();
    if (!tag) throw new RefusalError(`--offline: channel "${version}" was never resolved on this machine; set k3s.version to an exact version such as v1.31.12+k3s1`);
    return tag;
  }
  const url = `${sources.channels}/${version}`;
  // A mirror folder answers a channel with a file holding the tag.
  const answer = url.startsWith('file:') ? { url, body: (await readFileUrl(url)).toString('utf8') } : await fetchOk(url).then(async (res) => ({ url: res.url, body: await res.text() }));
  const tag = tagFromChannelAnswer(answer.url, answer.body);
  if (!tag) throw new Error(`channel "${version}" (${url}) did not resolve to a k3s version (got ${answer.url})`);
  await mkdir(join(sourceCacheRoot(mirror), 'channels'), { recursive: true });
  await writeFile(remembered, `${tag}\n`);
  return tag;
}

/**
 * Everything the given architectures need, from the cache or downloaded once.
 * A binary whose sha256 does not match its checksum file is deleted and refused.
 */
export async function ensureArtifacts(version: string, mirror: string | undefined, arches: string[], opts: DownloadOptions = {}): Promise<K3sArtifacts> {
  const sources = sourcesFor(mirror);
  const tag = await resolveVersion(version, mirror, opts);
  const dir = k3sCacheDir(tag, mirror);
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
