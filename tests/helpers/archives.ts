/**
 * docker-archives made directly (the layout `docker save` writes: manifest.json,
 * repositories, <id>/layer.tar and the config), for import tests and benchmarks
 * that need images of a given size and platform without a build. Their content
 * is half random, half repetitive, so it compresses partly, like real images.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';
import type { LockEntry } from '../../tasks/images/lock.ts';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

async function layerTar(bytes: number, seed: string): Promise<Buffer> {
  const half = Math.floor(bytes / 2);
  const tar = pack();
  const mtime = new Date(Date.UTC(2026, 0, 1));
  tar.entry({ name: 'opt/fixture/random.bin', mtime }, randomBytes(half));
  tar.entry({ name: 'opt/fixture/text.txt', mtime }, Buffer.alloc(bytes - half, `${seed} armlab fixture layer line\n`));
  tar.entry({ name: 'opt/fixture/NAME', mtime }, `${seed}\n`);
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of tar) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface FixtureImage {
  name: string;
  tag: string;
  /** linux/arm/v7, linux/amd64 … */
  platform: string;
  /** Approximate size of the layer. */
  bytes: number;
}

/** Write a docker-archive for `image` to `file` and return its lock entry. */
export async function writeFixtureArchive(image: FixtureImage, file: string): Promise<LockEntry> {
  const [os, architecture, variant] = image.platform.split('/');
  const layer = await layerTar(image.bytes, `${image.name}:${image.tag}`);
  const layerId = sha256(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture,
      os,
      ...(variant ? { variant } : {}),
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: [`sha256:${layerId}`] },
      history: [{ created: '2026-01-01T00:00:00Z', created_by: 'armlab test fixture' }],
    }),
  );
  const configId = sha256(config);
  const ref = `armlab/${image.name}:${image.tag}`;
  const tar = pack();
  tar.entry({ name: `${configId}.json` }, config);
  tar.entry({ name: `${layerId}/layer.tar` }, layer);
  tar.entry({ name: 'manifest.json' }, JSON.stringify([{ Config: `${configId}.json`, RepoTags: [ref], Layers: [`${layerId}/layer.tar`] }]));
  tar.entry({ name: 'repositories' }, JSON.stringify({ [`armlab/${image.name}`]: { [image.tag]: layerId } }));
  tar.finalize();
  await mkdir(dirname(file), { recursive: true });
  await pipeline(tar, createWriteStream(file));
  const archive = await readFile(file);
  return {
    name: image.name,
    image: ref,
    imageId: `sha256:${configId}`,
    configDigest: `sha256:${configId}`,
    platform: image.platform,
    target: 'nodes',
    size: archive.length,
    archive: file,
    archiveSha256: sha256(archive),
    inputHash: 'test-fixture',
    builtAt: new Date().toISOString(),
  };
}
