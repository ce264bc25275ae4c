/**
 * npm run bench: every benchmark, each comparing against a baseline measured in
 * the same run; the run ends with `name=<ratio>` lines that tools can read.
 * Goals (checked here, not in tests): images_rebuild_vs_cold <= 0.10.
 */
import { benchImages } from './images.ts';

const GOALS: Record<string, number> = { images_rebuild_vs_cold: 0.1 };

const results = { ...(await benchImages()) };
let missed = 0;
for (const [name, value] of Object.entries(results)) {
  const goal = GOALS[name];
  const ok = goal === undefined || Number(value) <= goal;
  if (!ok) missed++;
  process.stderr.write(`${name}: ${value}${goal === undefined ? '' : ` (goal <= ${goal}: ${ok ? 'met' : 'MISSED'})`}\n`);
}
for (const [name, value] of Object.entries(results)) process.stdout.write(`${name}=${value}\n`);
process.exitCode = missed ? 1 : 0;
