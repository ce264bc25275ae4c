/**
 * One emulated Pi: its directories (the "SD card" upper dir, plain dirs for
 * /var/lib/rancher and /var/lib/containerd), its host key, and its process
 * tree (`unshare` → host-init.sh → systemd-nspawn → the host's systemd).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { run } from '../core/local.ts';
import { LAB_BIN, PI_MODEL, piCpuinfo } from './identity.ts';
import type { LabHostPlan } from './plan.ts';

const HOST_INIT = fileURLToPath(new URL('./host-init.sh', import.meta.url));

/** A process recorded with its start time, so a reused PID is never killed. */
export interface ProcRef {
  pid: number;
  startTime: string;
}

/** The host's supervisor (`unshare` running host-init.sh); it outlives reboots. */
export interface HostProcess {
  unshare: ProcRef;
}

/** systemd, as PID 1, powers off cleanly on this signal. */
export const SIGRTMIN_PLUS_4 = 38;

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

export async function firstChild(pid: number): Promise<number | null> {
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return Number(children.trim().split(' ')[0]) || null;
}

/** The current boot of a host: its systemd-nspawn and the container's PID 1 (systemd). */
export async function hostRuntime(host: LabHostPlan): Promise<{ nspawn: number; init: number } | null> {
  const nspawn = Number(await readFile(join(host.dir, 'nspawn.pid'), 'utf8').catch(() => '0'));
  if (!nspawn) return null;
  const cmdline = await readFile(`/proc/${nspawn}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.includes('systemd-nspawn') || !cmdline.includes(`--machine=${host.machine}`)) return null;
  const init = await firstChild(nspawn);
  return init ? { nspawn, init } : null;
}

/** Create the host's directories, host key and Pi identity (once). */
export async function prepareHost(host: LabHostPlan): Promise<boolean> {
  const d = host.dir;
  let changed = false;
  for (const sub of ['upper', 'work', 'root', 'rancher', 'containerd']) {
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
  return changed;
}

export async function hostPublicKey(host: LabHostPlan): Promise<string> {
  return (await readFile(join(host.dir, 'ssh_host_ed25519_key.pub'), 'utf8')).trim();
}

/** Start the host's supervisor; the caller records it in the lab state. */
export async function startHost(host: LabHostPlan, lower: string, clientPubKey: string): Promise<HostProcess> {
  const logFd = openSync(join(host.dir, 'host.log'), 'a');
  const child = spawn('unshare', ['--mount', '--propagation', 'private', '--kill-child', 'bash', HOST_INIT], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: {
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      ARMLAB_LOWER: lower,
      ARMLAB_HOSTDIR: host.dir,
      ARMLAB_HOSTNAME: host.name,
      ARMLAB_NETNS: host.netns,
      ARMLAB_MACHINE: host.machine,
      ARMLAB_PUBKEY: clientPubKey,
      ARMLAB_USERLAND: host.userland,
      ARMLAB_LAB_BIN: LAB_BIN,
      ARMLAB_PI_MODEL: PI_MODEL,
    },
  });
  closeSync(logFd);
  child.unref();
  const unshare = child.pid ? await procRef(child.pid) : null;
  if (!unshare) throw new Error(`host ${host.name} did not start; see ${join(host.dir, 'host.log')}`);
  return { unshare };
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
    if (!(await alive())) throw new Error(`host at ${address} stopped while booting`);
    if (Date.now() > deadline) throw new Error(`sshd at ${address} did not answer within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function waitGone(ref: ProcRef, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms && (await isAlive(ref)); waited += 100) await new Promise((r) => setTimeout(r, 100));
  return !(await isAlive(ref));
}

/**
 * Stop a host: cleanly (systemd powers off) or like pulling the plug (its
 * PID 1 is killed). Either way every process of the host ends, by PID.
 */
export async function stopHost(host: LabHostPlan, proc: HostProcess, how: 'poweroff' | 'power-cut'): Promise<boolean> {
  if (!(await isAlive(proc.unshare))) return false;
  const rt = await hostRuntime(host);
  if (rt && how === 'poweroff') {
    process.kill(rt.init, SIGRTMIN_PLUS_4);
    if (await waitGone(proc.unshare, 30_000)) return true;
  }
  if (rt) {
    // Killing a PID namespace's init ends every process in it; nspawn then exits non-133.
    process.kill(rt.init, 'SIGKILL');
    if (await waitGone(proc.unshare, 10_000)) return true;
    process.kill(rt.nspawn, 'SIGKILL');
  }
  // unshare --kill-child takes host-init.sh down with it.
  if (await isAlive(proc.unshare)) process.kill(proc.unshare.pid, 'SIGKILL');
  await waitGone(proc.unshare, 5_000);
  return true;
}
