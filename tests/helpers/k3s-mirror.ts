/**
 * A local k3s release mirror on 127.0.0.1 serving the k3s STAND-IN's release
 * folder (tasks/lab/stand-in-release.ts) over HTTP, with channel redirects as
 * update.k3s.io answers them. Every request is recorded.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { writeStandInRelease, writeStandInVersion } from '../../tasks/lab/stand-in-release.ts';

export { standInScript } from '../../tasks/lab/stand-in-release.ts';

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

export async function startMirror(dir: string, versions: string[], channels: Record<string, string> = {}): Promise<Mirror> {
  await writeStandInRelease(dir, versions);
  const requests: string[] = [];
  const addVersion = (tag: string) => writeStandInVersion(dir, tag);

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
