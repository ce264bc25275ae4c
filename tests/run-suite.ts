/**
 * `npm test`: the unit and lab test files in two groups that run side by side,
 * each group one file at a time (node --test). Most of the suite is emulated
 * armhf work that runs one process at a time, and much of a lab test is waiting
 * on a stand-in kubelet or a rollout: alone, the suite left a core idle for long
 * stretches. The builds from the fixture upstreams and the README's demo lab,
 * which starts from what those builds published, form one group, in that order;
 * every other file is in the other. Output lines are prefixed with their group;
 * the exit code is the first failing group's.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { ensureArmEmulation } from '../tasks/lab/binfmt.ts';

const ROOT = join(import.meta.dirname, '..');
const files = (dir: string) => readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.test.ts')).sort().map((f) => join(dir, f));

// The demo seeds its images from what images-upstream published (tests/helpers/shared-images.ts).
const BUILDS_THEN_DEMO = ['tests/lab/images-upstream.test.ts', 'tests/lab/readme-demo.test.ts'];
for (const f of BUILDS_THEN_DEMO) if (!existsSync(join(ROOT, f))) throw new Error(`tests/run-suite.ts: ${f} is gone; update its groups`);
const everyFile = [...files('tests/unit'), ...files('tests/lab')];
const groups: Record<string, string[]> = {
  A: BUILDS_THEN_DEMO,
  B: everyFile.filter((f) => !BUILDS_THEN_DEMO.includes(f)),
};

interface Finished {
  group: string;
  code: number;
  seconds: number;
}

function runGroup(group: string, list: string[]): Promise<Finished> {
  const started = Date.now();
  // Its own process group, so that an interrupted suite stops every test process it started.
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=2700000', ...list], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const seconds = () => Math.round((Date.now() - started) / 1000);
  if (child.pid) running.add(child.pid);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(`[${group}] ${line}\n`));
  }
  return new Promise((resolve) => {
    child.once('error', (err) => {
      console.log(`[${group}] cannot start node --test: ${err.message}`);
      resolve({ group, code: 1, seconds: seconds() });
    });
    child.once('close', (code, signal) => {
      if (child.pid) running.delete(child.pid);
      resolve({ group, code: code ?? (signal ? 1 : 0), seconds: seconds() });
    });
  });
}

const running = new Set<number>();
const forwarded = new Set<string>();
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    // Once per signal (a terminal's Ctrl-C may arrive twice): a second SIGINT would cut a
    // test file's exit hook short while it tears its lab down. Each group runs in its own
    // process group; node --test passes the signal on to its test files.
    if (forwarded.has(signal)) return;
    forwarded.add(signal);
    for (const pid of running) {
      try {
        process.kill(-pid, signal === 'SIGHUP' ? 'SIGTERM' : signal);
      } catch {
        /* already gone */
      }
    }
  });
}

// What lab:up would do on a fresh machine, done before either group starts: re-registering
// qemu-arm with binfmt_misc while the other group runs armhf programs would fail them.
for (const change of await ensureArmEmulation()) console.log(`run-suite: ${change}`);
const started = Date.now();
for (const [group, list] of Object.entries(groups)) console.log(`[${group}] ${list.map((f) => relative('tests', f)).join(' ')}`);
const results = await Promise.all(Object.entries(groups).map(([group, list]) => runGroup(group, list)));
for (const r of results) console.log(`group ${r.group}: ${r.code === 0 ? 'passed' : `FAILED (exit ${r.code})`} in ${r.seconds} s`);
console.log(`suite: ${Math.round((Date.now() - started) / 1000)} s`);
process.exitCode = results.find((r) => r.code !== 0)?.code ?? 0;
