/**
 * bootstrap: the whole pipeline as one command, each step the task of the same
 * name run with the same common options, stopping at the first step that
 * fails. `--from TASK` resumes there. Every step probes before it changes, so
 * a second bootstrap changes nothing and each step's own summary says so.
 * The steps share one SSH connection per node (no handshake per step).
 */
import { COMMON_OPTIONS, parseCommon, requireInventory } from './core/args.ts';
import { takeChanges } from './core/changes.ts';
import { UsageError } from './core/errors.ts';
import { withSharedConnections } from './core/node-command.ts';
import { renderTable } from './core/table.ts';
import { suggestion } from './inventory/rules.ts';

export interface Step {
  name: string;
  run: (argv: string[]) => Promise<number>;
}

/** Pure: the steps from `from` on (all when null); an unknown name is a usage error. */
export function stepsFrom<S extends { name: string }>(steps: S[], from: string | null): S[] {
  if (from === null) return steps;
  const at = steps.findIndex((s) => s.name === from);
  if (at < 0) throw new UsageError(`--from: no step "${from}"${suggestion(from, steps.map((s) => s.name))}; steps: ${steps.map((s) => s.name).join(', ')}`);
  return steps.slice(at);
}

/** The common options, as given, for every step. */
export function passThrough(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const name = arg.replace(/^--?/, '').split('=')[0]!;
    const known = Object.entries(COMMON_OPTIONS).find(([long, o]) => long === name || ('short' in o && o.short === name));
    if (!known || arg === '--from' || arg.startsWith('--from=')) continue;
    out.push(arg);
    if (known[1].type === 'string' && !arg.includes('=')) out.push(argv[++i] ?? '');
  }
  return out;
}

/** Pure: a step's changes in one table cell (its own summary above has them all). */
export function changesNote(changes: string[]): string {
  if (changes.length === 0) return 'changed nothing';
  const shown = changes.slice(0, 3).join(', ');
  return `${changes.length} changed: ${shown}${changes.length > 3 ? `, and ${changes.length - 3} more` : ''}`;
}

/** Options of single steps that bootstrap accepts and hands to those steps only. */
const STEP_OPTIONS: Record<string, string[]> = {
  'rollout-timeout': ['cni:deploy', 'topo:deploy'],
  'images-dir': ['images:build', 'cni:deploy', 'topo:deploy'],
  'patches-dir': ['images:build'],
  'docker-host': ['images:build'],
  'source-mirror': ['images:build'],
  jobs: ['images:build'],
};

/** Step options that may be given more than once. */
const REPEATABLE = new Set(['source-mirror']);

/** Pure: the step-only options given to bootstrap that this step takes. */
export function stepOptions(step: string, values: Record<string, unknown>): string[] {
  return Object.entries(STEP_OPTIONS).flatMap(([option, users]) => {
    if (!users.includes(step)) return [];
    const given = values[option];
    const list = Array.isArray(given) ? given.map(String) : typeof given === 'string' ? [given] : [];
    return list.flatMap((v) => [`--${option}`, v]);
  });
}

export async function bootstrapCommand(argv: string[], steps: Step[], preload?: () => Promise<unknown>): Promise<number> {
  const accepted = Object.fromEntries(Object.keys(STEP_OPTIONS).map((o) => [o, { type: 'string' as const, multiple: REPEATABLE.has(o) }]));
  const { common, values } = parseCommon(argv, { from: { type: 'string' }, ...accepted });
  requireInventory(common);
  const todo = stepsFrom(steps, typeof values.from === 'string' ? values.from : null);
  const forwarded = passThrough(argv);
  const rows: string[][] = steps.filter((s) => !todo.includes(s)).map((s) => [s.name, 'skipped', '-', '--from']);
  let failed: string | null = null;
  // Only a head start: a module that fails to load fails again, with its error, in its own step.
  preload?.().catch(() => undefined);
  await withSharedConnections(common, async () => {
    for (const step of todo) {
      if (failed) {
        rows.push([step.name, 'not run', '-', `${failed} failed`]);
        continue;
      }
      process.stdout.write(`\n==> ${step.name}\n`);
      takeChanges();
      const started = Date.now();
      const code = await step.run([...forwarded, ...stepOptions(step.name, values)]).catch((err: Error) => {
        process.stdout.write(`${step.name}: ${err.message}\n`);
        return 1;
      });
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const changes = takeChanges();
      rows.push([step.name, code === 0 ? 'ok' : 'FAILED', seconds, code === 0 ? changesNote(changes) : `exit ${code}; fix it, then resume with --from ${step.name}`]);
      if (code !== 0) failed = step.name;
    }
  });
  process.stdout.write(`\n${renderTable(['STEP', 'RESULT', 'SECONDS', 'CHANGES'], rows)}\n`);
  process.stdout.write(failed ? `\nbootstrap: FAILED at ${failed}\n` : '\nbootstrap: ok\n');
  return failed ? 1 : 0;
}
