/**
 * YAML read against a zod schema, every problem located to a line and a field
 * path (`nodes[2].address`). Used for inventories and image recipes.
 */
import { constructFromEvents, parseEvents, YAMLException } from 'js-yaml';
import type { z } from 'zod';
import { formatPath, indexPaths } from '../inventory/positions.ts';
import { suggestion } from '../inventory/rules.ts';
import { ProblemsError, type FileProblem } from './errors.ts';

export interface FieldProblem {
  path: (string | number)[];
  message: string;
}

type Def = { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType };

function unwrap(s: z.core.$ZodType | undefined): z.core.$ZodType | undefined {
  const def = s?._zod.def as Def | undefined;
  if (!def) return undefined;
  if (def.innerType && ['optional', 'nullable', 'default', 'prefault', 'readonly'].includes(def.type)) return unwrap(def.innerType);
  if (def.type === 'pipe' && def.in) return unwrap(def.in);
  return s;
}

/** Keys a strict object accepts at `path`, by walking the schema. */
export function knownKeysAt(root: z.core.$ZodType, path: readonly PropertyKey[]): string[] {
  let schema: z.core.$ZodType | undefined = root;
  for (const part of path) {
    const def = unwrap(schema)?._zod.def as Def | undefined;
    if (def?.type === 'object' && typeof part === 'string') schema = def.shape?.[part];
    else if (def?.type === 'array') schema = def.element;
    else return [];
  }
  const def = unwrap(schema)?._zod.def as Def | undefined;
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/**
 * Parse `source` and check it against `schema` and `rules`; throws an
 * ProblemsError listing every problem, or returns the typed document.
 */
export function parseLocated<S extends z.ZodType>(
  source: string,
  file: string,
  schema: S,
  rules: (raw: unknown) => FieldProblem[] = () => [],
  emptyHint = 'is empty',
): z.infer<S> {
  let events;
  let doc: unknown;
  try {
    events = parseEvents(source, { filename: file });
    const docs = constructFromEvents(events, { source, filename: file });
    if (docs.length > 1) throw new ProblemsError([{ file, line: 1, path: '', message: 'holds several YAML documents; put everything in one' }]);
    doc = docs[0];
  } catch (err) {
    if (err instanceof YAMLException) {
      throw new ProblemsError([{ file, line: (err.mark?.line ?? 0) + 1, path: '', message: `YAML syntax: ${err.reason}` }]);
    }
    throw err;
  }
  if (doc === undefined || doc === null) throw new ProblemsError([{ file, line: 1, path: '', message: emptyHint }]);

  const where = indexPaths(source, events);
  const problems: FileProblem[] = [];
  const add = (path: (string | number)[], message: string) => problems.push({ file, line: where.lineOf(path), path: formatPath(path), message });

  const parsed = schema.safeParse(doc);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      if (issue.code === 'unrecognized_keys') {
        const known = knownKeysAt(schema, path);
        for (const key of issue.keys) add([...path, key], `unknown key${suggestion(key, known) || `; expected one of: ${known.join(', ')}`}`);
      } else {
        add(path, issue.message);
      }
    }
  }
  for (const p of rules(doc)) add(p.path, p.message);
  if (problems.length > 0 || !parsed.success) {
    problems.sort((a, b) => a.line - b.line || a.path.localeCompare(b.path));
    throw new ProblemsError(problems);
  }
  return parsed.data;
}
