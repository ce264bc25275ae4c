/**
 * Reading a docker-archive (`docker save` of one image) without a daemon:
 * its manifest, its config (platform), and the first bytes of a file as the
 * image's layers resolve it (the last layer holding the path wins).
 */
import { createReadStream } from 'node:fs';
import { posix } from 'node:path';
import { extract } from 'tar-stream';

export interface ArchiveManifest {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

export interface ImageConfig {
  architecture?: string;
  variant?: string;
  os?: string;
}

export interface FileInLayer {
  layer: string;
  head: Buffer;
  link: string | null;
  /**
   * GOARM from a Go binary's embedded build settings: Go marks no float ABI in
   * its ELF header (it calls no C), so this is how a Go binary shows it is hard-float.
   */
  goarm: string | null;
}

export interface ArchiveFacts {
  manifest: ArchiveManifest[];
  config: ImageConfig;
  /** The file as the top-most layer holding it has it, or null. */
  file: FileInLayer | null;
}

/** One tar entry as tar-stream yields it (a streamx stream, not a Node Readable). */
type Entry = ReturnType<typeof extract> extends AsyncIterable<infer E> ? E : never;

const norm = (p: string) => posix.normalize(p.replace(/^\.?\//, '')).replace(/^\/+/, '');

async function collect(stream: AsyncIterable<unknown>, limit = Infinity): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const raw of stream) {
    const chunk = raw as Buffer; // tar-stream yields Buffers
    if (size < limit) chunks.push(chunk);
    size += chunk.length;
  }
  return Buffer.concat(chunks).subarray(0, limit === Infinity ? undefined : limit);
}

/** A main binary is read whole, to find Go's build settings; no real one comes near this. */
const MAX_BINARY_BYTES = 512 * 1024 * 1024;

async function scanLayer(layer: Entry, wanted: string): Promise<Omit<FileInLayer, 'layer'> | null> {
  let found: Omit<FileInLayer, 'layer'> | null = null;
  for await (const entry of layer.pipe(extract())) {
    const name = norm(entry.header.name);
    if (name === wanted) {
      if (entry.header.type === 'symlink' || entry.header.type === 'link') {
        found = { head: Buffer.alloc(0), link: entry.header.linkname ?? null, goarm: null };
        entry.resume();
      } else {
        const whole = await collect(entry, MAX_BINARY_BYTES);
        const goarm = /\tGOARM=(\d)/.exec(whole.toString('latin1'))?.[1] ?? null;
        found = { head: whole.subarray(0, 64), link: null, goarm };
      }
    } else {
      entry.resume();
    }
  }
  return found;
}

async function scan(file: string, wanted: string | null): Promise<ArchiveFacts> {
  const jsons = new Map<string, Buffer>();
  const hits = new Map<string, Omit<FileInLayer, 'layer'>>();
  for await (const entry of createReadStream(file).pipe(extract())) {
    const name = norm(entry.header.name);
    if (name.endsWith('.json')) jsons.set(name, await collect(entry));
    else if (wanted && name.endsWith('layer.tar')) {
      const hit = await scanLayer(entry, wanted);
      if (hit) hits.set(name, hit);
    } else entry.resume();
  }
  const manifestRaw = jsons.get('manifest.json');
  if (!manifestRaw) throw new Error(`${file} is not a docker-archive (no manifest.json)`);
  const manifest = JSON.parse(manifestRaw.toString()) as ArchiveManifest[];
  const first = manifest[0];
  if (!first) throw new Error(`${file} holds no image`);
  const config = JSON.parse(jsons.get(norm(first.Config))?.toString() ?? '{}') as ImageConfig;
  let top: FileInLayer | null = null;
  for (const layer of first.Layers.map(norm)) {
    const hit = hits.get(layer);
    if (hit) top = { layer, ...hit };
  }
  return { manifest, config, file: top };
}

/** Facts of an archive, following up to four symlinks to reach `path`. */
export async function inspectArchive(file: string, path: string | null = null): Promise<ArchiveFacts> {
  let wanted = path ? norm(path) : null;
  let facts = await scan(file, wanted);
  for (let hops = 0; hops < 4 && wanted && facts.file?.link; hops++) {
    const link = facts.file.link;
    wanted = norm(link.startsWith('/') ? link : posix.join(posix.dirname(wanted), link));
    facts = await scan(file, wanted);
  }
  return facts;
}
