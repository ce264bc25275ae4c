/**
 * Source mirrors: an air-gapped site (or a test) builds from its own copies of
 * the upstreams. Each mirror maps a URL prefix to a replacement (a local path or
 * another URL); the longest matching prefix wins. Only where a source is
 * fetched from changes: the recipe's URL stays its identity, so the input hash
 * (and the lock) is the same whether a commit or tarball came from upstream or
 * from a mirror of it. Pure.
 */
import { resolve } from 'node:path';
import { UsageError } from '../core/errors.ts';

/** A URL (scheme://…) or an scp-style git address (user@host:path): taken as it is; anything else is a path. */
export function isRemote(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(target) || /^[\w.-]+@[^:/]+:/.test(target);
}

/** A path target made absolute against `base`, keeping a trailing slash (the rest of the URL is appended to it). */
export function absoluteTarget(target: string, base: string): string {
  if (isRemote(target)) return target;
  const path = resolve(base, target);
  return target.endsWith('/') && !path.endsWith('/') ? `${path}/` : path;
}

export interface SourceMirror {
  prefix: string;
  target: string;
}

/** `PREFIX=TARGET` flags (the first `=` splits; a URL prefix has none before it). */
export function parseMirrorFlags(flags: string[]): SourceMirror[] {
  return flags.map((f) => {
    const eq = f.indexOf('=');
    if (eq <= 0 || eq === f.length - 1) throw new UsageError(`--source-mirror: got "${f}", expected PREFIX=TARGET, e.g. https://github.com/=/srv/mirror/github/`);
    return { prefix: f.slice(0, eq), target: absoluteTarget(f.slice(eq + 1), process.cwd()) };
  });
}

/** Where to fetch `url` from: the longest matching prefix replaced, or `url` itself. */
export function fetchUrlOf(url: string, mirrors: SourceMirror[]): string {
  const best = mirrors.filter((m) => url.startsWith(m.prefix)).sort((a, b) => b.prefix.length - a.prefix.length)[0];
  return best ? best.target + url.slice(best.prefix.length) : url;
}
