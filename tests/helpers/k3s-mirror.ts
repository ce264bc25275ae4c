/**
 * A local k3s release mirror on 127.0.0.1 serving the k3s STAND-IN (see
 * tests/k3s-stand-in/): per version the binaries k3s-armhf, k3s-arm64, k3s
 * (the stand-in script with its version baked in), sha256sum-*.txt, plus
 * install.sh and channel redirects. Every request is recorded.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';

const STAND_IN = join(import.meta.dirname, '..', 'k3s-stand-in');
const BUILDS = [
  { file: 'k3s-armhf', arch: 'arm', sums: 'sha256sum-arm.txt' },
  { file: 'k3s-arm64', arch: 'arm64', sums: 'sha256sum-arm64.txt' },
  { file: 'k3s', arch: 'amd64', sums: 'sha256sum-amd64.txt' },
];

export interface Mirror {
  url: string;
  dir: string;
  requests: string[];
  channels: Record<string, string>;
  addVersion(tag: string): Promise<void>;
  /** Change a served binary after its checksum was published. */
  corrupt(tag: string, file: string): Promise<void>;
  close(): Promise<void>;
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** The stand-in as served for one version and arch: one script, as k3s is one binary, its parts inlined at their INCLUDE lines. */
export function standInScript(tag: string, arch: string): string {
  return readFileSync(join(STAND_IN, 'k3s'), 'utf8')
    .replace(/^# @INCLUDE ([a-z-]+\.sh)@$/gm, (_, part: string) => readFileSync(join(STAND_IN, part), 'utf8'))
    .replace("VERSION='@VERSION@'", `VERSION='${tag}'`)
    .replace("ARCH='@ARCH@'", `ARCH='${arch}'`);
}

export async function startMirror(dir: string, versions: string[], channels: Record<string, string> = {}): Promise<Mirror> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'install.sh'), readFileSync(join(STAND_IN, 'install.sh')));
  const requests: string[] = [];

  const addVersion = async (tag: string) => {
    const vdir = join(dir, tag);
    await mkdir(vdir, { recursive: true });
    for (const b of BUILDS) {
      const body = standInScript(tag, b.arch);
      await writeFile(join(vdir, b.file), body, { mode: 0o755 });
      // Like upstream: the listing also names other artefacts of the release.
      await writeFile(join(vdir, b.sums), `${sha(body)}  ${b.file}\n${sha(`airgap ${b.arch}`)}  k3s-airgap-images-${b.arch}.tar\n`);
    }
  };
  for (const v of versions) await addVersion(v);

  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/');
    requests.push(path);
    const channel = /^\/channels\/([a-z0-9.-]+)$/.exec(path)?.[1];
    if (channel) {
      const tag = channels[channel];
      if (!tag) return void res.writeHead(404).end('no such channel\n');
      // Like update.k3s.io: a redirect whose final URL ends in the tag.
      return void res.writeHead(302, { location: `/tags/${encodeURIComponent(tag)}` }).end();
    }
    if (path.startsWith('/tags/')) return void res.writeHead(200).end('release page\n');
    readFile(join(dir, path.replace(/\.\./g, '')))
      .then((body) => res.writeHead(200, { 'content-length': body.length }).end(body))
      .catch(() => res.writeHead(404).end('not found\n'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    dir,
    requests,
    channels,
    addVersion,
    async corrupt(tag, file) {
      await writeFile(join(dir, tag, file), `${await readFile(join(dir, tag, file), 'utf8')}\n# tampered\n`);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Point an inventory file at a mirror: k3s.version and k3s.mirror set, the rest kept. Returns the document written. */
export async function useMirror(inventoryFile: string, mirror: Pick<Mirror, 'url'>, version: string): Promise<Record<string, unknown>> {
  const doc = load(await readFile(inventoryFile, 'utf8')) as Record<string, unknown>;
  doc.k3s = { version, mirror: mirror.url };
  await writeFile(inventoryFile, dump(doc));
  return doc;
}
