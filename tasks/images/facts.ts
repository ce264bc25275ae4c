/**
 * Pure: what an image was built from, resolved to exact values (a commit,
 * a tarball's sha256, package versions), recorded in the lock file with each
 * build. The nightly resolves the same facts without building and compares
 * them, so that it can say in words what moved upstream.
 */
import { createHash } from 'node:crypto';

export type SourceFact =
  | { kind: 'git'; url: string; ref: string; commit: string; path?: string }
  | { kind: 'tarball'; url: string; sha256: string }
  /** name=version of every package in the rootfs (or every .deb fetched), sorted. */
  | { kind: 'debootstrap'; suite: string; arch: string; packages: string[] }
  | { kind: 'debs'; suite: string; arch: string; packages: string[] };

export interface ResolvedInputs {
  /** sha256 of the recipe folder's files (name and content). */
  files: string;
  patches: string;
  sources: SourceFact[];
  /** Resolved hashes of the base and the stage images. */
  base: string | null;
  stages: string[];
  platform: string;
}

export function resolvedHash(r: ResolvedInputs): string {
  return createHash('sha256').update(JSON.stringify(r)).digest('hex');
}

/** "frr_8.4.4-1.1~deb12u1_armhf.deb" → "frr=8.4.4-1.1~deb12u1" (apt writes an epoch's colon as %3a). */
export function debFact(file: string): string {
  const m = /^([^_]+)_([^_]+)_[^_]+\.deb$/.exec(file);
  return m ? `${m[1]}=${decodeURIComponent(m[2]!)}` : file;
}

const short = (commit: string) => commit.slice(0, 8);

/** name=version lists → "libc6 2.36-9+deb12u9 → 2.36-9+deb12u10", new and gone packages too. */
export function packageChanges(before: string[], after: string[]): string[] {
  const split = (l: string[]) => new Map(l.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as const));
  const a = split(before);
  const b = split(after);
  const out: string[] = [];
  for (const [name, v] of b) {
    const was = a.get(name);
    if (was === undefined) out.push(`${name} ${v} (new)`);
    else if (was !== v) out.push(`${name} ${was} → ${v}`);
  }
  for (const name of a.keys()) if (!b.has(name)) out.push(`${name} (gone)`);
  return out;
}

function sourceChange(before: SourceFact | undefined, after: SourceFact): string | null {
  if (before && JSON.stringify(before) === JSON.stringify(after)) return null;
  if (after.kind === 'git') {
    const was = before?.kind === 'git' ? before : null;
    if (!was) return `git ${after.url} ${after.ref} ${short(after.commit)} (new source)`;
    if (was.ref !== after.ref) return `git ${after.url} ${was.ref} ${short(was.commit)} → ${after.ref} ${short(after.commit)}`;
    return `git ${after.url} ${after.ref} ${short(was.commit)} → ${short(after.commit)}`;
  }
  if (after.kind === 'tarball') {
    const was = before?.kind === 'tarball' ? before : null;
    return was && was.url === after.url ? `tarball ${after.url} sha256 ${was.sha256.slice(0, 12)} → ${after.sha256.slice(0, 12)}` : `tarball ${after.url} (new source)`;
  }
  const was = before?.kind === after.kind ? before.packages : null;
  if (!was) return `apt ${after.packages.length} packages (new source)`;
  const changes = packageChanges(was, after.packages);
  const shown = changes.slice(0, 3).join(', ');
  return `apt ${shown}${changes.length > 3 ? ` and ${changes.length - 3} more` : ''}`;
}

/**
 * Why an image's resolved inputs differ from its last build's, in words;
 * empty when they do not. `names` turns a dependency's hash into its recipe name.
 */
export function reasonsFor(before: ResolvedInputs | undefined, after: ResolvedInputs, names: { base?: string | undefined; stages: string[] }): string[] {
  if (!before) return ['never built by this cache (no resolved inputs recorded)'];
  const reasons: string[] = [];
  if (before.files !== after.files) reasons.push('recipe files changed');
  if (before.patches !== after.patches) reasons.push('patches changed');
  after.sources.forEach((s, i) => {
    const change = sourceChange(before.sources.find((b) => b.kind === s.kind) ?? before.sources[i], s);
    if (change) reasons.push(change);
  });
  if (before.sources.length > after.sources.length) reasons.push('a source was removed');
  if (before.base !== after.base) reasons.push(`base ${names.base ?? '?'} changed`);
  if (JSON.stringify(before.stages) !== JSON.stringify(after.stages)) reasons.push(`build stage ${names.stages.join(', ')} changed`);
  if (before.platform !== after.platform) reasons.push(`platform ${before.platform} → ${after.platform}`);
  return reasons;
}
