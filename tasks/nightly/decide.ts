/**
 * Pure: which images the night rebuilds, each with its reasons in words.
 * Exactly those whose resolved inputs differ from their last good build's,
 * and so (a base's or stage's hash is one of their inputs) every image built
 * on them. A dependency that is not rebuilt tonight counts with the hash of
 * the build it is (a held-back base stays what it is), so its dependents are
 * judged against what they would really be built on.
 */
import { reasonsFor, resolvedHash } from '../images/facts.ts';
import type { LockFile } from '../images/lock.ts';
import type { Recipe } from '../images/recipe.ts';
import type { Resolution } from './resolve.ts';

export interface Decision {
  name: string;
  image: string;
  oldHash: string | null;
  newHash: string | null;
  rebuild: boolean;
  reasons: string[];
  /** Why it could not be decided (its inputs could not be resolved). */
  error?: string;
}

export function decide(ordered: Recipe[], lock: LockFile, resolutions: Map<string, Resolution>, archivePresent: (path: string) => boolean): Decision[] {
  // What each image will be after tonight: its new hash when rebuilt, else its current build's.
  const effective = new Map<string, string | null>();
  return ordered.map((r): Decision => {
    const prev = lock.images[r.name];
    const now = resolutions.get(r.name);
    const base = { name: r.name, image: r.image, oldHash: prev?.resolvedHash ?? null };
    const deps = [...(r.base ? [r.base] : []), ...(r.stages ?? [])];
    const missing = deps.find((d) => !effective.get(d));
    if (!now?.inputs || missing) {
      effective.set(r.name, prev?.resolvedHash ?? null);
      return { ...base, newHash: null, rebuild: false, reasons: [], error: now?.error ?? `${missing === r.base ? 'base' : 'build stage'} ${missing} could not be resolved` };
    }
    const inputs = { ...now.inputs, base: r.base ? effective.get(r.base)! : null, stages: (r.stages ?? []).map((s) => effective.get(s)!) };
    const hash = resolvedHash(inputs);
    const decided = (rebuild: boolean, reasons: string[]): Decision => {
      effective.set(r.name, rebuild ? hash : (prev?.resolvedHash ?? hash));
      return { ...base, newHash: hash, rebuild, reasons };
    };
    if (!prev) return decided(true, ['never built']);
    const held = lock.heldBack?.[r.name]?.find((h) => h.resolvedHash === hash);
    if (held) return decided(false, [`held back: build ${held.build} of these inputs was rolled back by images:rollback at ${held.at}; rebuilt when its inputs move`]);
    if (prev.image !== r.image) return decided(true, [`tag ${prev.image} → ${r.image}`]);
    if (prev.resolvedHash !== hash) return decided(true, reasonsFor(prev.resolved, inputs, { base: r.base, stages: r.stages ?? [] }));
    if (!archivePresent(prev.archive)) return decided(true, [`archive ${prev.archive} missing`]);
    return decided(false, []);
  });
}
