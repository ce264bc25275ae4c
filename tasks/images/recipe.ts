/**
 * Image recipes: `images/<name>/` holds a Dockerfile, an image.yaml and any
 * files the Dockerfile copies. image.yaml names the upstream source, the base
 * recipe, build args and the main binary that must be an ARM hard-float ELF.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { parseLocated, type FieldProblem } from '../core/yaml-schema.ts';
import { DNS1123_LABEL, show } from '../inventory/schema.ts';

function expect(what: string) {
  return { error: (iss: { input?: unknown }) => (iss.input === undefined ? `is required: expected ${what}` : `got ${show(iss.input)}, expected ${what}`) };
}

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DEB_PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;

const packages = z.array(z.string(expect('a Debian package name')).regex(DEB_PACKAGE, expect('a Debian package name, e.g. "frr"')), expect('a list of Debian package names')).min(1, expect('at least one package'));

export const sourceSchema = z.union(
  [
    z.strictObject({ debootstrap: z.strictObject({ suite: z.literal('bookworm', expect('"bookworm"')).optional(), packages: packages.optional() }, expect('a mapping with suite, packages')) }),
    z.strictObject({ debs: z.strictObject({ packages }, expect('a mapping with packages')) }),
    z.strictObject({
      git: z.strictObject(
        {
          url: z.string(expect('a git URL or a local path')).min(1, expect('a git URL or a local path')),
          ref: z.string(expect('a tag, branch or commit')).optional(),
          range: z.string(expect('a semver range such as "^0.3.0", resolved against the tags')).optional(),
        },
        expect('a mapping with url and ref or range'),
      ),
    }),
  ],
  expect('one of {debootstrap: …}, {debs: …}, {git: …}'),
);

export const recipeSchema = z.strictObject(
  {
    tag: z.string(expect('an image tag, e.g. "1.0"')).regex(TAG, expect('an image tag (letters, digits, "_", ".", "-")')),
    description: z.string(expect('text')).optional(),
    platform: z.literal('linux/arm/v7', expect('"linux/arm/v7" (armlab builds armv7 hard-float images only)')).optional(),
    base: z.string(expect('the name of another recipe')).regex(DNS1123_LABEL, expect('the name of another recipe')).optional(),
    source: sourceSchema.optional(),
    buildArgs: z.record(z.string(), z.string(expect('a string (quote numbers)')), expect('a mapping of build args to strings')).optional(),
    verify: z.strictObject({ binary: z.string(expect('an absolute path inside the image')).regex(/^\/\S+$/, expect('an absolute path inside the image')) }, expect('a mapping with binary')),
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
  const git = (raw as { source?: { git?: { ref?: unknown; range?: unknown } } } | null)?.source?.git;
  if (git && (git.ref === undefined) === (git.range === undefined)) {
    return [{ path: ['source', 'git'], message: 'give exactly one of ref (a tag, branch or commit) or range (a semver range over the tags)' }];
  }
  return [];
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
    if (r.base) {
      const base = byName.get(r.base);
      if (!base) throw new Error(`recipe "${r.name}" has base "${r.base}", which is not a recipe in images/`);
      visit(base);
    }
    visiting.delete(r.name);
    out.push(r);
  };
  recipes.forEach(visit);
  return out;
}
