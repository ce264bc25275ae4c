/**
 * Test labs: unique names per run (`armlab-t…`), torn down by the name and
 * PIDs the lab recorded, even when a test fails or the run is interrupted.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh, type Command } from '../../tasks/core/shell.ts';
import { Connection } from '../../tasks/core/ssh.ts';
import { loadInventory } from '../../tasks/inventory/load.ts';
import { labDown, labHostInit, labUp, type LabUpResult } from '../../tasks/lab/lab.ts';
import type { LabSpec } from '../../tasks/lab/plan.ts';
import { madeJustNow } from './sweep.ts';

export interface TestLab extends LabUpResult {
  name: string;
  dir: string;
  down(): Promise<string[]>;
}

const live = new Set<string>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  // A crashed or interrupted run must not leave hosts behind.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void Promise.allSettled([...live].map((d) => labDown(d))).then(() => process.exit(130));
    });
  }
}

export function uniqueLabName(): string {
  return `t${randomBytes(3).toString('hex').slice(0, 5)}`;
}

/**
 * A scratch directory for a test that is not a lab (image builds): same name
 * pattern, with its owner recorded, so a concurrent sweep leaves it alone while
 * this process lives and removes it once it is gone.
 */
export async function makeTestDir(): Promise<string> {
  const dir = `/tmp/armlab-${uniqueLabName()}`;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'owner.pid'), String(process.pid));
  return dir;
}

/** Remove test labs whose test process died without tearing them down (by their recorded state). */
async function sweepOrphans(): Promise<void> {
  for (const entry of await readdir('/tmp')) {
    if (!/^armlab-t[0-9a-f]{5}$/.test(entry)) continue;
    const dir = join('/tmp', entry);
    const owner = Number(await readFile(join(dir, 'owner.pid'), 'utf8').catch(() => '0'));
    // A live owner (this process too: its scratch directories) keeps its directories.
    if (owner && existsSync(`/proc/${owner}`)) continue;
    // No owner yet: a test file running beside this one may have just made it.
    if (!owner && (await madeJustNow(dir))) continue;
    await labDown(dir).catch(() => undefined);
    // A run killed before its lab recorded any state leaves only this directory.
    if (!existsSync(join(dir, 'lab.json'))) await rm(dir, { recursive: true, force: true });
  }
}

export async function startTestLab(hosts: LabSpec['hosts'], extra: Partial<LabSpec> = {}): Promise<TestLab> {
  hookExit();
  await sweepOrphans();
  const name = uniqueLabName();
  const dir = `/tmp/armlab-${name}`;
  live.add(dir);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'owner.pid'), String(process.pid));
  let result: LabUpResult;
  try {
    result = await labUp({ name, dir, hosts, ...extra }, join(dir, 'inventory.yaml'));
  } catch (err) {
    // A half-built lab is still torn down by what its state file recorded.
    live.delete(dir);
    await labDown(dir).catch(() => undefined);
    throw err;
  }
  return {
    ...result,
    name,
    dir,
    async down() {
      live.delete(dir);
      return labDown(dir);
    },
  };
}

/** Run a command on one node of a lab's inventory over its own connection; resolves with its stdout. */
export async function runOnLabNode(inventory: string, node: string, command: Command): Promise<string> {
  const conn = await Connection.open((await loadInventory(inventory)).nodes.find((n) => n.name === node)!);
  try {
    return (await conn.run(command)).stdout;
  } finally {
    conn.close();
  }
}

/** Run the armlab CLI as a user would; resolves with exit code and output. */
export function armlab(
  args: string[],
  opts: { timeoutMs?: number; onSpawn?: (pid: number) => void; env?: NodeJS.ProcessEnv; netns?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const argv = [process.execPath, '--import', 'tsx', 'tasks/cli.ts', ...args];
    // In a test namespace (opts.netns), armlab reaches only what that namespace holds.
    const [cmd, ...rest] = opts.netns ? ['nsenter', `--net=/run/netns/${opts.netns}`, ...argv] : argv;
    const child = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'], ...(opts.env ? { env: opts.env } : {}) });
    if (child.pid) opts.onSpawn?.(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`armlab ${args.join(' ')} took over ${(opts.timeoutMs ?? 120_000) / 1000}s\n${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** PIDs running inside a lab host's PID namespace whose argv matches. */
export async function processesInHost(dir: string, host: string, match: (argv: string[]) => boolean): Promise<number[]> {
  const init = await labHostInit(dir, host);
  if (!init) return [];
  const ns = await readlink(`/proc/${init}/ns/pid`).catch(() => null);
  if (!ns) return [];
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const theirs = await readlink(`/proc/${entry}/ns/pid`).catch(() => null);
    if (theirs !== ns) continue;
    const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
    if (match(argv)) found.push(Number(entry));
  }
  return found;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The image each node's containerd holds under `ref` (a short docker.io name): its manifest digest, one per node. */
export async function imageDigestsOnNodes(inventory: string, nodes: string[], ref: string): Promise<string[]> {
  const found = await Promise.all(nodes.map(async (n) => (await runOnLabNode(inventory, n, sh`k3s ctr -n k8s.io images ls ${`name==docker.io/${ref}`} | awk 'NR>1 {print $3}'`)).trim()));
  for (const [i, d] of found.entries()) if (!/^sha256:[0-9a-f]{64}$/.test(d)) throw new Error(`${nodes[i]} does not hold ${ref} (got "${d}")`);
  return found;
}
