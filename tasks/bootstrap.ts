/**
 * bootstrap: the whole pipeline as one command, each step the task of the same
 * name run with the same common options, stopping at the first step that
 * fails. `--from TASK` resumes there. Every step probes before it changes, so
 * a second bootstrap changes nothing and each step's own summary says so.
 */
import { COMMON_OPTIONS, parseCommon, requireInventory } from './core/args.ts';
import { UsageError } from './core/errors.ts';
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

/** Options of single steps that bootstrap accepts and hands to those steps only. */
const STEP_OPTIONS: Record<string, string[]> = { 'rollout-timeout': ['cni:deploy', 'topo:deploy'] };

export async function bootstrapCommand(argv: string[], steps: Step[]): Promise<number> {
  const { common, values } = parseCommon(argv, { from: { type: 'string' }, 'rollout-timeout': { type: 'string' } });
  requireInventory(common);
  const todo = stepsFrom(steps, typeof values.from === 'string' ? values.from : null);
  const forwarded = passThrough(argv);
  const rows: string[][] = steps.filter((s) => !todo.includes(s)).map((s) => [s.name, 'skipped', '-', '--from']);
  let failed: string | null = null;
  for (const step of todo) {
    if (failed) {
      rows.push([step.name, 'not run', '-', `${failed} failed`]);
      continue;
    }
    process.stdout.write(`\n==> ${step.name}\n`);
    const started = Date.now();
    const own = Object.entries(STEP_OPTIONS).flatMap(([option, users]) => (users.includes(step.name) && typeof values[option] === 'string' ? [`--${option}`, String(values[option])] : []));
    const code = await step.run([...forwarded, ...own]).catch((err: Error) => {
      process.stdout.write(`${step.name}: ${err.message}\n`);
      return 1;
    });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    rows.push([step.name, code === 0 ? 'ok' : 'FAILED', seconds, code === 0 ? 'see its summary above' : `exit ${code}; fix it, then resume with --from ${step.name}`]);
    if (code !== 0) failed = step.name;
  }
  process.stdout.write(`\n${renderTable(['STEP', 'RESULT', 'SECONDS', 'NOTE'], rows)}\n`);
  process.stdout.write(failed ? `\nbootstrap: FAILED at ${failed}\n` : '\nbootstrap: ok\n');
  return failed ? 1 : 0;
}
