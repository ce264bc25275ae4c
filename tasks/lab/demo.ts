/**
 * `lab:up --demo`: what the lab needs to take a whole bootstrap with no
 * internet, given to armlab through the settings an air-gapped site would use:
 *   - k3s.mirror: a folder serving the k3s STAND-IN (tests/k3s-stand-in/), which
 *     is NOT k3s: real k3s cannot run its kubelet inside the lab's hosts;
 *   - images.sourceMirrors, images.recipes and images.patches: the shipped
 *     recipes pinned to local fixture upstreams (tests/fixtures/upstream/);
 *   - images.engine: a Docker Engine of the lab's own, with no route out.
 * armlab's tasks do not know any of this is a demo: they read the inventory.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fixtureRecipes } from './demo-sources.ts';
import { engineAlive, engineHost, startOwnEngine, stopOwnEngine } from './engine.ts';
import type { LabPlan } from './plan.ts';
import type { LabState } from './state.ts';
import { STAND_IN_DIR, writeStandInRelease } from './stand-in-release.ts';

const REPO = join(import.meta.dirname, '..', '..');

export const DEMO_K3S_VERSION = 'v1.31.12+k3s1';

export interface DemoSettings {
  k3s: { version: string; mirror: string };
  images: { recipes: string; patches: string; engine: string; sourceMirrors: Record<string, string> };
}

const demoDir = (plan: LabPlan) => join(plan.dir, 'demo');
const engineDir = (plan: LabPlan) => join(plan.dir, 'engine');
export const engineNetns = (plan: LabPlan) => `armlab-${plan.name}-docker`;

type Sources = Omit<DemoSettings, 'images'> & { images: Omit<DemoSettings['images'], 'engine'> };

/** What the demo's folder is made from: the stand-in, the fixtures, the shipped recipes and patches, and the code that makes it. */
async function inputsDigest(): Promise<string> {
  const hash = createHash('sha256');
  for (const code of ['demo.ts', 'demo-sources.ts', 'stand-in-release.ts']) hash.update(await readFile(join(import.meta.dirname, code)));
  for (const root of [STAND_IN_DIR, join(REPO, 'tests', 'fixtures', 'upstream'), join(REPO, 'images'), join(REPO, 'patches')]) {
    const files = (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort();
    for (const f of files) hash.update(`${f.slice(REPO.length)}\0`).update(await readFile(f)).update('\0');
  }
  return hash.digest('hex');
}

/** The stand-in's release folder and the fixture sources, made again only when what they are made from changed. */
async function ensureSources(plan: LabPlan, changes: string[]): Promise<Sources> {
  const dir = demoDir(plan);
  const ready = join(dir, 'ready.json');
  const inputs = await inputsDigest();
  const made = existsSync(ready) ? (JSON.parse(await readFile(ready, 'utf8')) as Sources & { inputs?: string }) : null;
  if (made?.inputs === inputs) return { k3s: made.k3s, images: made.images };
  await rm(dir, { recursive: true, force: true });
  // Named by what it is made from: k3s's artefacts are cached per mirror and tag (a tag is immutable upstream),
  // so a stand-in that changed must come from a mirror of another name to reach the nodes.
  const release = join(dir, `k3s-release-${inputs.slice(0, 12)}`);
  await writeStandInRelease(release, [DEMO_K3S_VERSION]);
  const fixtures = await fixtureRecipes(join(dir, 'upstream'));
  const settings = {
    k3s: { version: DEMO_K3S_VERSION, mirror: pathToFileURL(release).href },
    images: { recipes: fixtures.imagesDir, patches: fixtures.patchesDir, sourceMirrors: fixtures.mirrors },
  };
  await writeFile(ready, `${JSON.stringify({ ...settings, inputs }, null, 2)}\n`);
  changes.push(`${made ? 'remade (armlab changed)' : 'made'} the demo's k3s stand-in release (${DEMO_K3S_VERSION}) and fixture upstreams in ${dir}`);
  return settings;
}

/** Everything the demo needs, started or made only where missing; the state records the engine before it starts. */
export async function ensureDemo(plan: LabPlan, state: LabState, save: () => Promise<void>): Promise<{ changes: string[]; settings: DemoSettings }> {
  const changes: string[] = [];
  const sources = await ensureSources(plan, changes);
  const dir = engineDir(plan);
  if (!(await engineAlive(dir))) {
    // A stale engine (this machine rebooted, or it was killed): clean up after it first.
    if (state.demo) await stopOwnEngine(dir, engineNetns(plan), state.demo.enginePid);
    state.demo = { enginePid: 0 };
    await save();
    const engine = await startOwnEngine(dir, engineNetns(plan));
    state.demo.enginePid = engine.pid;
    await save();
    changes.push(`started the lab's Docker Engine (pid ${engine.pid}, ${engine.host}, no route out)`);
  }
  return { changes, settings: { k3s: sources.k3s, images: { ...sources.images, engine: engineHost(dir) } } };
}

/** lab:down's part: the engine stopped (its files go with the lab's folder). */
export async function removeDemo(plan: LabPlan, state: LabState): Promise<string[]> {
  if (!state.demo) return [];
  const stopped = await stopOwnEngine(engineDir(plan), engineNetns(plan), state.demo.enginePid);
  return stopped ? [`the lab's Docker Engine (pid ${state.demo.enginePid})`] : [];
}
