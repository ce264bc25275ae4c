/**
 * npm run bench [-- images|import|bootstrap|nightly]: every benchmark (or the named ones), each
 * comparing against a baseline measured in the same run; the run ends with
 * `name=<ratio>` lines that tools can read. Goals are checked here, not in tests.
 */
import { benchBootstrap } from './bootstrap.ts';
import { benchImages } from './images.ts';
import { benchImport } from './import.ts';
import { benchNightly } from './nightly.ts';

const BENCHES: Record<string, () => Promise<Record<string, string>>> = { images: benchImages, import: benchImport, bootstrap: benchBootstrap, nightly: benchNightly };
const GOALS: Record<string, number> = {
  images_rebuild_vs_cold: 0.1,
  import_vs_manual: 0.35,
  import_vs_pipe: 1.15,
  rerun_vs_first: 0.05,
  rerun_image_bytes: 0,
  bootstrap_rerun_seconds_per_node: 2,
  nightly_quiet_vs_cold_build: 0.05,
  nightly_quiet_images_built: 0,
  nightly_quiet_images_sent: 0,
};

const picked = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = picked.filter((p) => !(p in BENCHES));
if (unknown.length) throw new Error(`no benchmark ${unknown.join(', ')}; benchmarks: ${Object.keys(BENCHES).join(', ')}`);
const results: Record<string, string> = {};
for (const name of picked.length ? picked : Object.keys(BENCHES)) Object.assign(results, await BENCHES[name]!());
let missed = 0;
for (const [name, value] of Object.entries(results)) {
  const goal = GOALS[name];
  const ok = goal === undefined || Number(value) <= goal;
  if (!ok) missed++;
  process.stderr.write(`${name}: ${value}${goal === undefined ? '' : ` (goal <= ${goal}: ${ok ? 'met' : 'MISSED'})`}\n`);
}
for (const [name, value] of Object.entries(results)) process.stdout.write(`${name}=${value}\n`);
process.exitCode = missed ? 1 : 0;
