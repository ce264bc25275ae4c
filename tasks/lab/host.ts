/**
 * One emulated Pi: its directories (the "SD card" upper dir, plain dirs for
 * /var/lib/rancher and /var/lib/containerd), its host key, and its process
 * tree (`unshare` → host-init.sh → chrooted sshd as the namespace's PID 1).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { run } from '../core/local.ts';
import { containerdConfig, piCpuinfo } from './identity.ts';
import type { LabHostPlan } from './plan.ts';

const HOST_INIT = fileURLToPath(new URL('./host-init.sh', import.meta.url));

/** A process recorded with its start time, so a reused PID is never killed. */
export interface ProcRef {
  pid: number;
  startTime: string;
}

export interface HostProcess {
  unshare: ProcRef;
  init: ProcRef;
}

export async function procRef(pid: number): Promise<ProcRef | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (!stat) return null;
  // Field 22 (starttime) counted after the parenthesised command name.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z') return null; // exited, not yet reaped
  return { pid, startTime: fields[19] ?? '' };
}

export async function isAlive(ref: ProcRef | undefined): Promise<boolean> {
  if (!ref) return false;
  const now = await procRef(ref.pid);
  return now !== null && now.startTime === ref.startTime;
}

/** Create the host's directories, host key, Pi identity and containerd config (once). */
export async function prepareHost(host: LabHostPlan): Promise<boolean> {
  const d = host.dir;
  let changed = false;
  for (const sub of ['upper', 'work', 'root', 'rancher', 'containerd', 'containerd-opt']) {
    if (!existsSync(join(d, sub))) {
      await mkdir(join(d, sub), { recursive: true, mode: 0o755 });
      changed = true;
    }
  }
  const key = join(d, 'ssh_host_ed25519_key');
  if (!existsSync(key)) {
    await run`ssh-keygen -q -t ed25519 -N ${''} -C ${`root@${host.name}`} -f ${key}`;
    changed = true;
  }
  const cpuinfo = join(d, 'cpuinfo');
  if (!existsSync(cpuinfo)) await writeFile(cpuinfo, piCpuinfo(`10000000${randomBytes(4).toString('hex')}`));
  await writeFile(join(d, 'containerd.toml'), containerdConfig(d));
  return changed;
}

export async function hostPublicKey(host: LabHostPlan): Promise<string> {
  return (await readFile(join(host.dir, 'ssh_host_ed25519_key.pub'), 'utf8')).trim();
}

async function childOf(pid: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
    const first = Number(children.trim().split(' ')[0]);
    if (first) return first;
    if (!existsSync(`/proc/${pid}`)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`host namespace did not start (unshare pid ${pid}); see its log`);
}

/** Start the host; returns its processes. The caller records them in the lab state. */
export async function startHost(host: LabHostPlan, lower: string, clientPubKey: string): Promise<HostProcess> {
  const logFd = openSync(join(host.dir, 'host.log'), 'a');
  const child = spawn(
    'nsenter',
    [`--net=/run/netns/${host.netns}`, 'unshare', '--mount', '--uts', '--ipc', '--pid', '--fork', '--kill-child', '--propagation', 'private', 'bash', HOST_INIT],
    {
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        ARMLAB_LOWER: lower,
        ARMLAB_HOSTDIR: host.dir,
        ARMLAB_HOSTNAME: host.name,
        ARMLAB_PUBKEY: clientPubKey,
        ARMLAB_PI_IDENTITY: host.userland === 'armhf' ? 'yes' : 'no',
      },
    },
  );
  closeSync(logFd);
  child.unref();
  const pid = child.pid;
  if (!pid) throw new Error(`could not start host ${host.name}`);
  const unshare = await procRef(pid);
  const initPid = await childOf(pid, 5000);
  const init = await procRef(initPid);
  if (!unshare || !init) throw new Error(`host ${host.name} exited at once; see ${join(host.dir, 'host.log')}`);
  return { unshare, init };
}

/** Resolves once the host's sshd sends its banner, or rejects after timeoutMs. */
export async function waitForSshd(address: string, timeoutMs: number, alive: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const banner = await new Promise<boolean>((resolve) => {
      const sock = connect({ host: address, port: 22, timeout: 1000 });
      sock.once('data', (d) => {
        sock.destroy();
        resolve(d.toString().startsWith('SSH-'));
      });
      sock.once('error', () => resolve(false));
      sock.once('timeout', () => {
        sock.destroy();
        resolve(false);
      });
    });
    if (banner) return;
    if (!(await alive())) throw new Error(`host at ${address} stopped while starting`);
    if (Date.now() > deadline) throw new Error(`sshd at ${address} did not answer within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stop a host like pulling its power: PID 1 gets SIGTERM, then everything SIGKILL. */
export async function stopHost(proc: HostProcess): Promise<boolean> {
  if (!(await isAlive(proc.unshare)) && !(await isAlive(proc.init))) return false;
  if (await isAlive(proc.init)) process.kill(proc.init.pid, 'SIGTERM');
  for (let i = 0; i < 50 && (await isAlive(proc.unshare)); i++) await new Promise((r) => setTimeout(r, 100));
  // unshare --kill-child takes the namespace's PID 1, and with it every process inside.
  if (await isAlive(proc.unshare)) process.kill(proc.unshare.pid, 'SIGKILL');
  for (let i = 0; i < 50 && (await isAlive(proc.unshare)); i++) await new Promise((r) => setTimeout(r, 100));
  return true;
}
