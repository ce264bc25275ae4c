/**
 * The night's builds: exactly the decided images, in build order, verified as
 * images:build verifies, then smoke-run. An image whose build or smoke run
 * fails is put back to its last good build (lock entry, archive, and no tag
 * of the failed build left in the engine) and the images built on it wait
 * for another night.
 */
import { rm } from 'node:fs/promises';
import type Docker from 'dockerode';
import { reasonOf } from '../core/errors.ts';
import { buildOne } from '../images/build.ts';
import type { EnginePlatform } from '../images/engine.ts';
import { writeLock, type LockFile } from '../images/lock.ts';
import { prepareEach } from '../images/prepare.ts';
import { dependenciesOf, type Recipe } from '../images/recipe.ts';
import type { SourceMirror } from '../images/source-mirror.ts';
import type { Decision } from './decide.ts';
import { historyOf, restoreBuild } from './history.ts';
import type { ImageReport } from './report.ts';
import type { Resolution } from './resolve.ts';
import { smokeRun } from './smoke.ts';

export interface BuildNightOptions {
  engine: Docker;
  buildPlatform: EnginePlatform;
  sourceMirrors: SourceMirror[];
  verbose: boolean;
  log: (m: string) => void;
}

/**
 * The Debian versions resolved tonight for the images rebuilt tonight: what
 * a cached Debian source must match, or be fetched again. Images not rebuilt
 * (a held-back base among them) keep the sources they were built from.
 */
function debianExpect(resolutions: Map<string, Resolution>, rebuild: Set<string>): Map<string, { debootstrap?: string[]; debs?: string[] }> {
  const out = new Map<string, { debootstrap?: string[]; debs?: string[] }>();
  for (const [name, r] of resolutions) {
    if (!rebuild.has(name)) continue;
    const entry: { debootstrap?: string[]; debs?: string[] } = {};
    // None recorded (a lock from before): nothing to compare with, the cached source stands.
    for (const f of r.inputs?.sources ?? []) if ((f.kind === 'debootstrap' || f.kind === 'debs') && f.packages.length) entry[f.kind] = f.packages;
    out.set(name, entry);
  }
  return out;
}

/** Put the image back on its last good build after a failed night for it. */
async function putBack(engine: Docker, lock: LockFile, recipe: Recipe): Promise<void> {
  const good = historyOf(lock, recipe.name)[0];
  // The failed build's tag must not serve as a base tonight: builds load bases from their archives when the tag is absent.
  await engine.getImage(recipe.image).remove({ force: true }).catch(() => undefined);
  if (good) await restoreBuild(lock, recipe.name, good);
  else if (lock.images[recipe.name]) {
    // Never good before: nothing to go back to; the failed build's archive goes with its entry.
    await rm(lock.images[recipe.name]!.archive, { force: true });
    delete lock.images[recipe.name];
  }
  await writeLock(lock);
}

export async function buildNight(ordered: Recipe[], decisions: Decision[], resolutions: Map<string, Resolution>, lock: LockFile, opts: BuildNightOptions): Promise<ImageReport[]> {
  const byName = new Map(decisions.map((d) => [d.name, d]));
  const rebuild = new Set(decisions.filter((d) => d.rebuild).map((d) => d.name));
  const report = (d: Decision, result: ImageReport['result'], extra: Partial<ImageReport> = {}): ImageReport => ({
    name: d.name, image: d.image, oldInputHash: d.oldHash, newInputHash: d.newHash, reasons: d.reasons, result, build: null, buildSeconds: null, ...extra,
  });
  if (!rebuild.size) return decisions.map((d) => report(d, d.error ? 'not built' : 'unchanged', d.error ? { error: d.error } : {}));

  // Prepare what the rebuilt images need (their bases' rootfs for Debian packages, the Go toolchain), nothing else.
  const needed = new Set<string>();
  const need = (name: string) => {
    if (needed.has(name)) return;
    needed.add(name);
    const r = ordered.find((x) => x.name === name);
    if (r) dependenciesOf(r).forEach((dep) => need(dep.name));
  };
  rebuild.forEach(need);
  const toPrepare = ordered.filter((r) => needed.has(r.name));
  // Each on its own: one upstream that broke (a patch that no longer applies) holds back only its image and what is built on it.
  const prepared = await prepareEach(toPrepare, { buildArch: opts.buildPlatform.debianArch, log: opts.log, sourceMirrors: opts.sourceMirrors, debianExpect: debianExpect(resolutions, rebuild) });

  const failed = new Set<string>();
  const results: ImageReport[] = [];
  for (const recipe of ordered) {
    const d = byName.get(recipe.name)!;
    if (!rebuild.has(recipe.name)) {
      results.push(report(d, d.error ? 'not built' : 'unchanged', d.error ? { error: d.error } : {}));
      continue;
    }
    const brokenDep = dependenciesOf(recipe).find((dep) => failed.has(dep.name));
    if (brokenDep) {
      failed.add(recipe.name);
      results.push(report(d, 'not built', { error: `${brokenDep.as} ${brokenDep.name} failed tonight; kept on its last good build` }));
      continue;
    }
    const started = Date.now();
    const seconds = () => (Date.now() - started) / 1000;
    const ready = prepared.get(recipe.name);
    if (!ready || ready instanceof Error) {
      failed.add(recipe.name);
      results.push(report(d, 'build failed', { error: `${reasonOf(ready ?? new Error('not prepared'))}; kept on its last good build` }));
      continue;
    }
    try {
      const built = await buildOne(opts.engine, ready, lock, { check: false, verbose: opts.verbose, buildPlatform: opts.buildPlatform, log: opts.log });
      if (built.status === 'failed') throw new Error(built.reason);
      if (built.status === 'unchanged') {
        // The resolved inputs moved, the build's did not (a lock from before resolved inputs were recorded): nothing to roll out.
        results.push(report(d, 'unchanged', { reasons: [...d.reasons, `but ${built.reason}: nothing built`] }));
        continue;
      }
      const platform = recipe.target === 'build-machine' ? opts.buildPlatform.platform : 'linux/arm/v7';
      const smoke = await smokeRun(opts.engine, recipe, platform);
      if (!smoke.ok) {
        failed.add(recipe.name);
        await putBack(opts.engine, lock, recipe);
        results.push(report(d, 'smoke failed', { buildSeconds: seconds(), error: `smoke run ${smoke.detail}; kept on its last good build` }));
        continue;
      }
      opts.log(`${recipe.image}: built (${built.reason}); smoke run ${smoke.detail}`);
      results.push(report(d, 'built', { buildSeconds: seconds() }));
    } catch (err) {
      failed.add(recipe.name);
      await putBack(opts.engine, lock, recipe);
      results.push(report(d, 'build failed', { buildSeconds: seconds(), error: `${reasonOf(err)}; kept on its last good build` }));
    }
  }
  return results;
}
