/**
 * Upstream source from a release tarball (http(s), file:// or a local path),
 * fetched on this machine's side, checked against its sha256 and unpacked
 * without its top folder. A recipe without sha256 is trusted on first use:
 * the digest is kept with the download and printed so it can be pinned.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { withBuildLock } from '../core/build-lock.ts';
import { sha256OfFile } from '../core/digest.ts';
import { RefusalError } from '../core/errors.ts';
import { currentGeneration, makeGeneration } from '../core/generations.ts';
import { run } from '../core/local.ts';
import { sourcesCacheDir } from './lock.ts';

export interface TarballSpec {
  url: string;
  sha256?: string | undefined;
}

export interface TarballSource {
  file: string;
  sha256: string;
  identity: string;
}

const urlKey = (url: string) => createHash('sha256').update(url).digest('hex').slice(0, 16);

async function download(url: string, to: string): Promise<void> {
  if (/^https?:\/\//.test(url)) {
    const res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(600_000) }).catch((err: Error) => {
      const cause = (err.cause as Error | undefined)?.message ?? err.message;
      throw new RefusalError(`${url}: cannot download (${cause}); without a route to it, map it to a local copy with a source mirror (images.sourceMirrors in the inventory, or --source-mirror PREFIX=PATH), or fix the mirror named here`);
    });
    if (!res.ok || !res.body) throw new RefusalError(`${url}: download failed: HTTP ${res.status}`);
    await pipeline(Readable.fromWeb(res.body as Parameters<typeof Readable.fromWeb>[0]), createWriteStream(to));
    return;
  }
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (!existsSync(path)) throw new RefusalError(`${url}: no such file`);
  await pipeline(createReadStream(path), createWriteStream(to));
}

/** `from`: where to fetch (a source mirror of spec.url, or spec.url); spec.url stays the identity. */
export async function fetchTarball(spec: TarballSpec, log: (m: string) => void, from = spec.url, opts: { refresh?: boolean } = {}): Promise<TarballSource> {
  const dir = join(sourcesCacheDir(), `tarball-${urlKey(from)}`);
  // The nightly's refresh may fetch again while a build beside it reads the copy it was handed.
  return withBuildLock(`${dir}.lock`, () => cachedOrFetched(spec, dir, log, from, opts));
}

async function cachedOrFetched(spec: TarballSpec, dir: string, log: (m: string) => void, from: string, opts: { refresh?: boolean }): Promise<TarballSource> {
  const sourceIn = async (generation: string): Promise<TarballSource> => {
    const sha256 = (await readFile(join(generation, 'sha256'), 'utf8')).trim();
    return { file: join(generation, 'source.tar'), sha256, identity: `tarball:${spec.url}@sha256:${sha256}` };
  };
  const cached = await currentGeneration(dir, ['source.tar', 'sha256']);
  const source = cached ? await sourceIn(cached) : undefined;
  // refresh (the nightly): an unpinned tarball is downloaded again, since upstream may have replaced it under the same URL.
  if (source && (!spec.sha256 || source.sha256 === spec.sha256) && !(opts.refresh && !spec.sha256)) return source;
  const got = from === spec.url ? spec.url : `${spec.url} (from its mirror ${from})`;
  log(`fetching ${spec.url}${from === spec.url ? '' : ` from its mirror ${from}`}`);
  const made = await makeGeneration(dir, async (generation) => {
    const file = join(generation, 'source.tar');
    await download(from, file);
    const sha256 = await sha256OfFile(file);
    if (spec.sha256 && sha256 !== spec.sha256) {
      throw new RefusalError(`${got}: sha256 is ${sha256}, but the recipe pins ${spec.sha256}; refusing an upstream tarball that changed`);
    }
    // The nightly's refresh of an unchanged tarball: readers stay on the folder they have.
    if (sha256 === source?.sha256) return 'same';
    if (!spec.sha256) log(`${got}: no sha256 pinned in the recipe; trusting it on first use, pin it with  sha256: ${sha256}`);
    await writeFile(join(generation, 'sha256'), `${sha256}\n`);
  });
  return sourceIn(made);
}

/** Unpack into `dest` without the archive's top folder (quagga-1.2.4/…); tar detects the compression. */
export async function unpackTarball(source: TarballSource, dest: string): Promise<void> {
  await rm(dest, { recursive: true, force: true });
  await mkdir(dest, { recursive: true });
  await run`tar -xf ${source.file} -C ${dest} --strip-components=1 --no-same-owner`.catch((err: Error) => {
    throw new RefusalError(`${source.file} is not a tar archive tar can read: ${err.message.split('\n')[0]}`);
  });
}
