/**
 * Debian's mirror, frozen for one test: an HTTP proxy on 127.0.0.1 that
 * fetches each index path (dists/) from the real mirror the first time it is
 * asked and serves that copy ever after. The index (InRelease, Packages) a test's
 * nightly reads cannot move under it halfway (sid changes several times a
 * day); the packages themselves come through unchanged. Only Debian's mirror,
 * an allowed outside source, is reached.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FrozenMirror {
  /** The mirror's URL, for ARMLAB_DEBIAN_MIRROR. */
  url: string;
  /** Paths served, for assertions. */
  served: string[];
  close(): Promise<void>;
}

export async function startFrozenDebianMirror(upstream = 'http://deb.debian.org/debian'): Promise<FrozenMirror> {
  const copies = new Map<string, Promise<{ status: number; type: string; body: Buffer }>>();
  const served: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').replace(/^\/debian/, '');
    served.push(path);
    // Packages (pool/) never change under their names: passed through, not kept in memory.
    if (!path.startsWith('/dists/')) {
      fetch(`${upstream}${path}`, { redirect: 'follow', signal: AbortSignal.timeout(600_000) }).then(
        async (r) => {
          res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/octet-stream' });
          if (req.method === 'HEAD' || !r.body) return res.end();
          for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) res.write(chunk);
          res.end();
        },
        (err: Error) => {
          res.writeHead(502);
          res.end(err.message);
        },
      );
      return;
    }
    let copy = copies.get(path);
    if (!copy) {
      copy = fetch(`${upstream}${path}`, { redirect: 'follow', signal: AbortSignal.timeout(300_000) }).then(async (r) => ({
        status: r.status,
        type: r.headers.get('content-type') ?? 'application/octet-stream',
        body: Buffer.from(await r.arrayBuffer()),
      }));
      copies.set(path, copy);
      // Only a good answer is frozen: a failed fetch or an error status is asked again next time.
      copy.then((c) => c.status >= 200 && c.status < 300, () => false).then((keep) => keep || copies.delete(path));
    }
    copy.then(
      (c) => {
        res.writeHead(c.status, { 'content-type': c.type, 'content-length': c.body.length });
        res.end(req.method === 'HEAD' ? undefined : c.body);
      },
      (err: Error) => {
        res.writeHead(502);
        res.end(err.message);
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/debian`,
    served,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
