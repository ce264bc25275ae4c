/**
 * Image recipes: `images/<name>/` holds a Dockerfile, an image.yaml and any
 * files the Dockerfile copies. image.yaml names the upstream source, the base
 * recipe, build args and the main binary that must be an ARM hard-float ELF.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { FileProblem } from '../core/errors.ts';
import { parseLocated, type FieldProblem } from '../core/yaml-schema.ts';
import { DNS1123_LABEL, show } from '../inventory/schema.ts';

function expect(what: string) {
  return { error: (iss: { input?: unknown }) => (iss.input === undefined ? `is required: expected ${what}` : `got ${show(iss.input)}, expected ${what}`) };
}

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DEB_PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;

const packages = z.array(z.string(expect('a Debian package name')).regex(DEB_PACKAGE, expect('a Debian package name, e.g. "frr"')), expect('a list of Debian package names')).min(1, expect('at least one package'));

const SUITES = ['bookworm', 'trixie', 'sid'] as const;

/**
 * Where a recipe's inputs come from, all fetched on this machine's side. A
 * recipe may combine an upstream tree (git or a release tarball) with the
 * Debian packages it needs on top of its base.
 */
export const sourceSchema = z.strictObject(
  {
    debootstrap: z.strictObject(
      {
        suite: z.enum(SUITES, expect(`one of ${SUITES.map((s) => `"${s}"`).join(', ')}`)).optional(),
        packages: packages.optional(),
      },
      expect('a mapping with suite, packages'),
    ).optional(),
    debs: z.strictObject({ packages }, expect('a mapping with packages')).optional(),
    git: z.strictObject(
      {
        url: z.string(expect('a git URL or a local path')).min(1, expect('a git URL or a local path')),
        ref: z.string(expect('a tag, branch or commit')).optional(),
        range: z.string(expect('a semver range such as "^0.3.0", resolved against the tags')).optional(),
        path: z.string(expect('a folder inside the repository')).regex(/^[^/].*[^/]$|^[^/]$/, expect('a relative folder, e.g. "third_party/meshnet"')).optional(),
        vendorGoModulesWith: z.string(expect('the name of a build-machine recipe with Go')).regex(DNS1123_LABEL, expect('the name of a build-machine recipe with Go')).optional(),
      },
      expect('a mapping with url and ref or range'),
    ).optional(),
    tarball: z.strictObject(
      {
        url: z.string(expect('an http(s) URL or a local path')).min(1, expect('an http(s) URL or a local path')),
        sha256: z.string(expect('a sha256 in hex')).regex(/^[0-9a-f]{64}$/, expect('a sha256 in hex (64 characters)')).optional(),
      },
      expect('a mapping with url and sha256'),
    ).optional(),
  },
  expect('a mapping with debootstrap, debs, git or tarball'),
);

export const recipeSchema = z.strictObject(
  {
    tag: z.string(expect('an image tag, e.g. "1.0"')).regex(TAG, expect('an image tag (letters, digits, "_", ".", "-")')),
    description: z.string(expect('text')).optional(),
    platform: z.literal('linux/arm/v7', expect('"linux/arm/v7" (armlab builds armv7 hard-float images only)')).optional(),
    // A build-machine image is a toolchain for `FROM --platform=$BUILDPLATFORM` stages; it never goes to the nodes.
    target: z.enum(['nodes', 'build-machine'], expect('"nodes" (default) or "build-machine" (a toolchain for build stages)')).optional(),
    base: z.string(expect('the name of another recipe')).regex(DNS1123_LABEL, expect('the name of another recipe')).optional(),
    stages: z.array(z.string(expect('the name of a build-machine recipe')).regex(DNS1123_LABEL, expect('the name of a build-machine recipe')), expect('a list of build-machine recipes')).optional(),
    source: sourceSchema.optional(),
    buildArgs: z.record(z.string(), z.string(expect('a string (quote numbers)')), expect('a mapping of build args to strings')).optional(),
    verify: z.strictObject(
      {
        binary: z.string(expect('an absolute path inside the image')).regex(/^\/\S+$/, expect('an absolute path inside the image')),
        // The nightly runs it in every new build (no network, the image's entrypoint bypassed) before any node gets it.
        smoke: z.array(z.string(expect('a word of the command')).min(1, expect('a word of the command')), expect('a command as a list of words, e.g. [zebra, --version]')).min(1, expect('a command as a list of words, e.g. [zebra, --version]')).optional(),
      },
      expect('a mapping with binary and smoke'),
    ),
  },
  expect('a mapping with tag, base, source, buildArgs, verify'),
);

export type RecipeSpec = z.infer<typeof recipeSchema>;

export interface Recipe extends RecipeSpec {
  name: string;
  dir: string;
  /** `armlab/<name>:<tag>` */
  image: string;
  /** Every file of the recipe folder (the build context), sorted. */
  files: string[];
  patches: string[];
}

function recipeRules(raw: unknown): FieldProblem[] {
  const r = (raw ?? {}) as { source?: Record<string, { ref?: unknown; range?: unknown } | undefined>; target?: unknown; stages?: unknown };
  const problems: FieldProblem[] = [];
  const source = r.source ?? {};
  const git = source.git;
  if (git && (git.ref === undefined) === (git.range === undefined)) {
    problems.push({ path: ['source', 'git'], message: 'give exactly one of ref (a tag, branch or commit) or range (a semver range over the tags)' });
  }
  if (r.source && Object.keys(source).length === 0) problems.push({ path: ['source'], message: 'is empty: give debootstrap, debs, git or tarball' });
  if (source.debootstrap && Object.keys(source).length > 1) problems.push({ path: ['source', 'debootstrap'], message: 'makes a whole rootfs: it cannot be combined with debs, git or tarball' });
  if (git && source.tarball) problems.push({ path: ['source', 'tarball'], message: 'give one upstream tree: git or tarball, not both' });
  if (r.target === 'build-machine' && r.stages !== undefined) problems.push({ path: ['stages'], message: 'a build-machine recipe is itself a stage image; it takes no stages' });
  return problems;
}

export function parseRecipe(source: string, file: string): RecipeSpec {
  return parseLocated(source, file, recipeSchema, recipeRules, 'is empty; expected tag, verify and usually source');
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else out.push(rel);
  }
  return out.sort();
}

/** Load images/<name>/ and its patches (patches/<name>/NNN-*.patch, in order). */
export async function loadRecipe(imagesDir: string, patchesDir: string, name: string): Promise<Recipe> {
  const dir = join(imagesDir, name);
  const file = join(dir, 'image.yaml');
  const spec = parseRecipe(await readFile(file, 'utf8'), file);
  const files = await listFiles(dir);
  if (!files.includes('Dockerfile')) throw new Error(`${dir} has no Dockerfile`);
  const patches = (await readdir(join(patchesDir, name)).catch(() => [] as string[])).filter((p) => /^\d{3}-.+\.patch$/.test(p)).sort().map((p) => join(patchesDir, name, p));
  return { ...spec, name, dir, image: `armlab/${name}:${spec.tag}`, files, patches };
}

export async function listRecipes(imagesDir: string): Promise<string[]> {
  const entries = await readdir(imagesDir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
}

/** Recipes in build order: every base before the images built on it. */
export function buildOrder(recipes: Recipe[]): Recipe[] {
  const byName = new Map(recipes.map((r) => [r.name, r]));
  const out: Recipe[] = [];
  const visiting = new Set<string>();
  const visit = (r: Recipe) => {
    if (out.includes(r)) return;
    if (visiting.has(r.name)) throw new Error(`recipes form a cycle through "${r.name}"`);
    visiting.add(r.name);
    for (const dep of dependenciesOf(r)) {
      const found = byName.get(dep.name);
      if (!found) throw new Error(`recipe "${r.name}" has ${dep.as} "${dep.name}", which is not a recipe in images/`);
      visit(found);
    }
    visiting.delete(r.name);
    out.push(r);
  };
  recipes.forEach(visit);
  return out;
}

/** The recipes one needs built first: its base and its build-stage images. */
export function dependenciesOf(r: RecipeSpec): { name: string; as: 'base' | 'stage' }[] {
  return [...(r.base ? [{ name: r.base, as: 'base' as const }] : []), ...(r.stages ?? []).map((name) => ({ name, as: 'stage' as const }))];
}

/** The build arg that names a stage image in a Dockerfile: golang -> GOLANG_IMAGE. */
export function stageBuildArg(name: string): string {
  return `${name.toUpperCase().replace(/-/g, '_')}_IMAGE`;
}

/** Problems that need the other recipes to see: stages must be build-machine recipes, bases node recipes. */
export function crossRecipeProblems(recipes: Recipe[]): FileProblem[] {
  const byName = new Map(recipes.map((r) => [r.name, r]));
  const problems: FileProblem[] = [];
  const at = (r: Recipe, path: string, message: string) => problems.push({ file: join(r.dir, 'image.yaml'), line: 0, path, message });
  for (const r of recipes) {
    for (const s of r.stages ?? []) {
      if (byName.has(s) && byName.get(s)!.target !== 'build-machine') at(r, 'stages', `"${s}" is not a build-machine recipe (set target: build-machine in images/${s}/image.yaml)`);
    }
    if (r.base && byName.get(r.base)?.target === 'build-machine') at(r, 'base', `"${r.base}" is a build-machine recipe; a base must be built for the nodes`);
    const vendor = r.source?.git?.vendorGoModulesWith;
    if (vendor && !(r.stages ?? []).includes(vendor)) at(r, 'source.git.vendorGoModulesWith', `"${vendor}" must also be listed in stages`);
  }
  return problems;
}
