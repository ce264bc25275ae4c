/**
 * The shipped recipes built from local fixtures through source mirrors: the
 * lab's own (tasks/lab/demo-sources.ts, shared with `lab:up --demo`), plus the
 * same mirrors as --source-mirror flags.
 */
export { fixtureRecipes, recipeWithSource, type FixtureRecipes } from '../../tasks/lab/demo-sources.ts';

/** The same mirrors as --source-mirror flags. */
export const mirrorFlags = (mirrors: Record<string, string>) => Object.entries(mirrors).flatMap(([prefix, to]) => ['--source-mirror', `${prefix}=${to}`]);
