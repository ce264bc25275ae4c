/**
 * A Docker Engine (Debian docker.io) for tests: its own data root and socket,
 * started inside its own network namespace with only loopback, so that no pull
 * or registry lookup can leave the machine; stopped by PID, namespace deleted.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { run } from '../../tasks/core/local.ts';

export interface TestEngine {
  docker: Docker;
  host: string;
  dir: string;
  /** The engine's network namespace (loopback only). */
  netns: string;
  stop(): Promise<void>;
}

async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stopEngineAt(dir: string, netns: string, fallbackPid = 0): Promise<void> {
  const pid = Number(await readFile(join(dir, 'dockerd.pid'), 'utf8').catch(() => String(fallbackPid)));
  if (pid && existsSync(`/proc/${pid}`)) {
    process.kill(pid, 'SIGTERM');
    await waitFor(async () => !existsSync(`/proc/${pid}`), 30_000, 'dockerd to stop').catch(() => process.kill(pid, 'SIGKILL'));
  }
  // dockerd unmounts its overlays on a clean stop; anything left under its root is ours to unmount.
  await run`sh -c ${`grep -o ' ${dir}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`}`.catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
  await run`ip netns delete ${netns}`.catch(() => undefined);
}

/** Engines whose test process died without stopping them: stopped by their recorded PID. */
async function sweepOrphans(): Promise<void> {
  for (const entry of await readdir('/tmp')) {
    const id = /^armlab-d([0-9a-f]{5})$/.exec(entry)?.[1];
    if (!id) continue;
    const owner = Number(await readFile(join('/tmp', entry, 'owner.pid'), 'utf8').catch(() => '0'));
    if (owner && owner !== process.pid && existsSync(`/proc/${owner}`)) continue;
    await stopEngineAt(join('/tmp', entry), `armlab-d${id}`);
  }
}

export async function startEngine(): Promise<TestEngine> {
  await sweepOrphans();
  const id = randomBytes(3).toString('hex').slice(0, 5);
  const dir = `/tmp/armlab-d${id}`;
  const netns = `armlab-d${id}`;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'owner.pid'), String(process.pid));
  await run`ip netns add ${netns}`;
  await run`ip -n ${netns} link set lo up`;
  const socket = join(dir, 'docker.sock');
  const log = openSync(join(dir, 'dockerd.log'), 'a');
  const child = spawn(
    'nsenter',
    [`--net=/run/netns/${netns}`, 'dockerd', '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'dockerd.pid'),
      '-H', `unix://${socket}`, '--bridge=none', '--iptables=false', '--ip-masq=false', '--ip-forward=false'],
    { stdio: ['ignore', log, log], detached: true },
  );
  closeSync(log);
  const docker = new Docker({ socketPath: socket });
  const stop = () => stopEngineAt(dir, netns, child.pid ?? 0);
  try {
    await waitFor(async () => docker.ping().then(() => true, () => false), 30_000, 'dockerd to answer');
  } catch (err) {
    await stop();
    throw err;
  }
  return { docker, host: `unix://${socket}`, dir, netns, stop };
}
