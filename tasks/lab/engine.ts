/**
 * A Docker Engine (Debian docker.io) of its own: its data root, exec root and
 * socket under one folder, started inside a network namespace with only
 * loopback, so that no pull or registry lookup can leave the machine (armlab's
 * builds never pull; their inputs are fetched on this side). Stopped by PID;
 * what it left mounted is unmounted. The lab's demo and the tests use it.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { run } from '../core/local.ts';

export interface OwnEngine {
  dir: string;
  netns: string;
  pid: number;
  /** DOCKER_HOST-style address of its socket. */
  host: string;
}

async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export const engineHost = (dir: string) => `unix://${join(dir, 'docker.sock')}`;

export async function startOwnEngine(dir: string, netns: string): Promise<OwnEngine> {
  await mkdir(dir, { recursive: true });
  await run`ip netns add ${netns}`;
  await run`ip -n ${netns} link set lo up`;
  const log = openSync(join(dir, 'dockerd.log'), 'a');
  const child = spawn(
    'nsenter',
    [`--net=/run/netns/${netns}`, 'dockerd', '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'dockerd.pid'),
      '-H', engineHost(dir), '--bridge=none', '--iptables=false', '--ip-masq=false', '--ip-forward=false',
      // Where a system containerd runs (/run/containerd/containerd.sock), every dockerd uses it, by default in the
      // namespace "moby", and removes at its start the containers there it does not know: one namespace per engine.
      `--containerd-namespace=${netns}`, `--containerd-plugins-namespace=${netns}-plugins`],
    { stdio: ['ignore', log, log], detached: true },
  );
  closeSync(log);
  child.unref();
  const docker = new Docker({ socketPath: join(dir, 'docker.sock') });
  try {
    await waitFor(async () => docker.ping().then(() => true, () => false), 60_000, `dockerd to answer (log: ${join(dir, 'dockerd.log')})`);
  } catch (err) {
    await stopOwnEngine(dir, netns, child.pid ?? 0);
    throw err;
  }
  // nsenter execs dockerd: the child's PID is dockerd's.
  return { dir, netns, pid: child.pid ?? 0, host: engineHost(dir) };
}

export async function engineAlive(dir: string): Promise<boolean> {
  if (!existsSync(join(dir, 'docker.sock'))) return false;
  return new Docker({ socketPath: join(dir, 'docker.sock') }).ping().then(() => true, () => false);
}

/** Stop it by its recorded PID, unmount what it left under its folder, delete its namespace. The folder stays. */
export async function stopOwnEngine(dir: string, netns: string, fallbackPid = 0): Promise<boolean> {
  const pid = Number(await readFile(join(dir, 'dockerd.pid'), 'utf8').catch(() => String(fallbackPid)));
  let stopped = false;
  // After a reboot the recorded PID may be another program's: only our dockerd (its data root) is stopped.
  const argv = pid ? await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '') : '';
  if (argv.split('\0').includes(join(dir, 'data')) && argv.includes('dockerd')) {
    const kill = (signal: NodeJS.Signals) => { try { process.kill(pid, signal); } catch { /* already gone */ } };
    kill('SIGTERM');
    await waitFor(async () => !existsSync(`/proc/${pid}`), 30_000, 'dockerd to stop').catch(() => kill('SIGKILL'));
    stopped = true;
  }
  // dockerd unmounts its overlays on a clean stop; anything left under its root is ours to unmount.
  await run`sh -c ${`grep -o ' ${dir}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`}`.catch(() => undefined);
  await run`ip netns delete ${netns}`.catch(() => undefined);
  return stopped;
}
