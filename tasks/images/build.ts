/**
 * images:build, per image in dependency order: skip when the input hash is
 * unchanged and the archive is present; otherwise build with BuildKit for
 * linux/arm/v7, refuse anything that is not arm/v7 with an ARM hard-float
 * main binary, export a docker-archive to the cache and record it in the lock.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type Docker from 'dockerode';
import { floatAbiOf } from '../preflight/evaluate.ts';
import { inspectArchive } from './archive.ts';
import { followBuild, type EnginePlatform } from './engine.ts';
import { imagesCacheDir, writeLock, type LockEntry, type LockFile } from './lock.ts';
import { resolvedHash, type ResolvedInputs } from './facts.ts';
import { recipeFilesDigest, type Prepared } from './prepare.ts';
import { stageBuildArg } from './recipe.ts';

export const PLATFORM = 'linux/arm/v7';
const NODE_PLATFORM: EnginePlatform = { platform: PLATFORM, architecture: 'arm', variant: 'v7', debianArch: 'armhf', elfMachine: 'arm' };

export interface ImageResult {
  name: string;
  image: string;
  status: 'built' | 'unchanged' | 'would build' | 'failed';
  reason: string;
}

export interface BuildOptions {
  check: boolean;
  verbose: boolean;
  /** The engine's own platform: what build-machine recipes are built for. */
  buildPlatform: EnginePlatform;
  log: (m: string) => void;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export async function inputHash(p: Prepared, baseDigest: string | null, stageDigests: string[], platform: string): Promise<string> {
  const files = await Promise.all(p.recipe.files.map(async (f) => [f, sha256(await readFile(join(p.recipe.dir, f)))]));
  const stages = stageDigests.length ? { stages: stageDigests } : {};
  return sha256(JSON.stringify({ files, patches: p.patchesDigest, source: p.sourceIdentity, base: baseDigest, ...stages, platform }));
}

/** The resolved inputs the lock records with a build: dependencies by their own resolved hashes. */
async function resolvedInputsOf(p: Prepared, lock: LockFile, platform: string): Promise<ResolvedInputs> {
  const r = p.recipe;
  return {
    files: await recipeFilesDigest(r),
    patches: p.patchesDigest,
    sources: p.facts,
    base: r.base ? (lock.images[r.base]?.resolvedHash ?? null) : null,
    stages: (r.stages ?? []).map((s) => lock.images[s]?.resolvedHash ?? ''),
    platform,
  };
}

/** The base must be in the engine before a FROM names it: load it from its archive, never pull. */
async function ensureBase(engine: Docker, base: LockEntry): Promise<void> {
  // The tag must be the build the lock names: after a rollback it may still be the newer one.
  const id = await engine.getImage(base.image).inspect().then((i) => i.Id, () => null);
  if (id === base.imageId) return;
  if (!existsSync(base.archive)) throw new Error(`base image ${base.image} is neither in the engine nor in the cache (${base.archive}); build it first`);
  await new Promise<void>((resolve, reject) => {
    engine.loadImage(createReadStream(base.archive), {}, (err, stream) => {
      if (err || !stream) return reject(err ?? new Error('no stream'));
      engine.modem.followProgress(stream, (e) => (e ? reject(e) : resolve()));
    });
  });
}

function asHex(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
}

async function refuse(engine: Docker, image: string, archive: string | null, why: string): Promise<never> {
  await engine.getImage(image).remove().catch(() => undefined);
  if (archive) await rm(archive, { force: true });
  throw new Error(`${why}; refused (the image tag and archive were removed)`);
}

export async function buildOne(engine: Docker, p: Prepared, lock: LockFile, opts: BuildOptions): Promise<ImageResult> {
  const r = p.recipe;
  const target = r.target === 'build-machine' ? opts.buildPlatform : NODE_PLATFORM;
  const base = r.base ? lock.images[r.base] : undefined;
  if (r.base && !base) return { name: r.name, image: r.image, status: 'failed', reason: `base "${r.base}" has not been built` };
  const stages = (r.stages ?? []).map((name) => ({ name, entry: lock.images[name] }));
  const missingStage = stages.find((s) => !s.entry);
  if (missingStage) return { name: r.name, image: r.image, status: 'failed', reason: `stage image "${missingStage.name}" has not been built` };
  const hash = await inputHash(p, base?.configDigest ?? null, stages.map((s) => s.entry!.configDigest), target.platform);
  const prev = lock.images[r.name];
  const resolved = await resolvedInputsOf(p, lock, target.platform);
  if (prev && prev.inputHash === hash && existsSync(prev.archive)) {
    // A lock written before resolved inputs were recorded gets them now; the build is the same.
    if (prev.resolvedHash !== resolvedHash(resolved) && !opts.check) {
      lock.images[r.name] = { ...prev, resolved, resolvedHash: resolvedHash(resolved) };
      await writeLock(lock);
    }
    return { name: r.name, image: r.image, status: 'unchanged', reason: `inputs unchanged (${hash.slice(0, 12)}), ${prev.archive} present` };
  }
  const why = prev ? (prev.inputHash !== hash ? 'inputs changed' : 'archive missing') : 'never built';
  if (opts.check) return { name: r.name, image: r.image, status: 'would build', reason: `would build: ${why}` };

  for (const dep of [base, ...stages.map((s) => s.entry)]) if (dep) await ensureBase(engine, dep);
  opts.log(`building ${r.image} for ${target.platform} (${why})`);
  const tail: string[] = [];
  const stream = await engine.buildImage(
    { context: p.contextDir, src: await contextFiles(p.contextDir) },
    {
      t: r.image,
      platform: target.platform,
      version: '2',
      // RUN steps get no network: every input was fetched on this side, so a build never reaches out.
      networkmode: 'none',
      buildargs: {
        ...(r.buildArgs ?? {}),
        ...(base ? { BASE_IMAGE: base.image } : {}),
        ...Object.fromEntries(stages.map((s) => [stageBuildArg(s.name), s.entry!.image])),
      },
    } as Docker.ImageBuildOptions,
  );
  const events = await followBuild(engine, stream, (e) => {
    const line = buildLogLine(e.stream);
    if (line) {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      if (opts.verbose) opts.log(`  ${r.name} | ${line}`);
    }
  });
  const failure = events.find((e) => e.error || e.errorDetail);
  if (failure) throw new Error(`build of ${r.image} failed: ${failure.error ?? failure.errorDetail?.message}\n${tail.slice(-10).join('\n')}`);

  const info = await engine.getImage(r.image).inspect();
  const variant = (info as { Variant?: string }).Variant;
  if (info.Architecture !== target.architecture || variant !== target.variant || info.Os !== 'linux') {
    await refuse(engine, r.image, null, `${r.image} was built for ${info.Os}/${info.Architecture}${variant ? `/${variant}` : ''}, not ${target.platform}`);
  }

  const archive = join(imagesCacheDir(), 'archives', `${r.name}_${r.tag}.tar`);
  await mkdir(join(imagesCacheDir(), 'archives'), { recursive: true });
  const digest = createHash('sha256');
  let size = 0;
  // A fresh file: a .part left behind may be a hard link to a kept build (nightly history), which must not be written into.
  await rm(`${archive}.part`, { force: true });
  const saved = await engine.getImage(r.image).get();
  saved.on('data', (c: Buffer) => {
    digest.update(c);
    size += c.length;
  });
  await pipeline(saved, createWriteStream(`${archive}.part`));
  await rename(`${archive}.part`, archive);

  const facts = await inspectArchive(archive, r.verify.binary);
  if (facts.config.architecture !== target.architecture || facts.config.variant !== target.variant) {
    await refuse(engine, r.image, archive, `${r.image}'s exported config says ${facts.config.architecture}/${facts.config.variant}`);
  }
  if (!facts.file) await refuse(engine, r.image, archive, `${r.image} has no ${r.verify.binary} (verify.binary)`);
  const elf = floatAbiOf(asHex(facts.file!.head));
  const wanted = target.elfMachine === 'arm' ? 'ARM EABI5 hard-float' : `${target.elfMachine}`;
  // A static Go binary marks no float ABI; GOARM=7 in its build settings means VFPv3, hard-float.
  const goHardFloat = elf.machine === 'arm' && elf.abi === 'unknown' && facts.file!.goarm === '7';
  if (elf.machine !== target.elfMachine || (target.elfMachine === 'arm' && elf.abi !== 'hard' && !goHardFloat)) {
    const what = elf.machine === 'arm' ? `an ARM ${elf.abi}-float${facts.file!.goarm ? ` (Go, GOARM=${facts.file!.goarm})` : ''}` : `an ${elf.machine}`;
    await refuse(engine, r.image, archive, `${r.image}: ${r.verify.binary} is ${what} ELF, not ${wanted}`);
  }
  const shownAbi = goHardFloat ? 'ARM EABI5 hard-float (Go, GOARM=7)' : wanted;
  const configDigest = `sha256:${(facts.manifest[0]?.Config ?? '').replace(/\.json$/, '').replace(/^blobs\/sha256\//, '')}`;
  lock.images[r.name] = {
    name: r.name,
    image: r.image,
    imageId: info.Id,
    configDigest,
    platform: target.platform,
    target: r.target ?? 'nodes',
    size,
    archive,
    archiveSha256: digest.digest('hex'),
    inputHash: hash,
    builtAt: new Date().toISOString(),
    resolved,
    resolvedHash: resolvedHash(resolved),
  };
  await writeLock(lock);
  const platformNote = target === NODE_PLATFORM ? 'arm/v7' : `${target.platform.slice('linux/'.length)} (build machine)`;
  return { name: r.name, image: r.image, status: 'built', reason: `${why}; ${platformNote}, ${r.verify.binary} ${shownAbi}, ${(size / 1e6).toFixed(1)} MB archive` };
}

async function contextFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => !e.isDirectory()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort();
}

/** dockerode hands BuildKit's step output over base64-encoded; status lines arrive as text. */
export function buildLogLine(raw: string | undefined): string {
  const line = (raw ?? '').trimEnd();
  if (line.length >= 8 && line.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(line)) {
    const text = Buffer.from(line, 'base64').toString('utf8');
    if (!text.includes('\uFFFD')) return text.trimEnd();
  }
  return line;
}
