/**
 * A machine that boots systemd, to install the nightly's timer on (this
 * machine's own PID 1 is not systemd). It is this machine's own Debian, its
 * root as the lower dir of an overlay whose upper dir is a tmpfs, booted with
 * systemd-nspawn in private mount, PID, IPC and UTS namespaces. It keeps this
 * machine's network, so the lab and the local mirrors are reached as from here,
 * and its node, checkout and packages are the ones armlab runs with. It is
 * amd64: the spare Pi's armhf userland is not emulated here (Node under qemu).
 *
 * Only basic.target is started, and what would reach outside or act on this
 * machine is masked: timesyncd (NTP), apt's timers, docker.socket. The folders
 * the nightly shares with this side (inventory, cache, report, and the checkout
 * when it lives under /tmp, which nspawn mounts afresh) are bound in.
 * The whole tree dies with the test process (setpriv --pdeathsig, unshare
 * --kill-child), and stop() powers it off and waits for it by PID.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { $ } from '../../tasks/core/local.ts';
import { firstChild, SIGRTMIN_PLUS_4 } from '../../tasks/lab/host.ts';
import { waitFor } from './lab.ts';

export interface SystemdHost {
  /** A command on the host as root, with exactly this environment (PATH and HOME added); never throws on exit status. */
  run(argv: string[], opts?: { env?: Record<string, string>; cwd?: string; timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

const MASKED = ['systemd-timesyncd.service', 'apt-daily.timer', 'apt-daily-upgrade.timer', 'docker.socket', 'docker.service', 'containerd.service'];

const BOOT_SCRIPT = `set -eu
d=$1; machine=$2; shift 2
mount -t tmpfs -o mode=0755 tmpfs "$d/overlay"
mkdir "$d/overlay/upper" "$d/overlay/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$d/overlay/upper,workdir=$d/overlay/work" "$d/root"
binds=()
for b in "$@"; do binds+=("--bind=$b"); done
exec systemd-nspawn --boot --keep-unit --register=no --console=read-only --machine="$machine" \\
  --directory="$d/root" "\${binds[@]}" systemd.unit=basic.target ${MASKED.map((u) => `systemd.mask=${u}`).join(' ')}
`;

/** Boot it under `dir` (a test directory of this run), with `binds` bound at the same paths. */
export async function bootSystemdHost(dir: string, machine: string, binds: string[]): Promise<SystemdHost> {
  await mkdir(join(dir, 'overlay'), { recursive: true });
  await mkdir(join(dir, 'root'), { recursive: true });
  await writeFile(join(dir, 'boot.sh'), BOOT_SCRIPT);
  const log = openSync(join(dir, 'boot.log'), 'a');
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', 'unshare', '--mount', '--propagation', 'private', '--kill-child', 'bash', join(dir, 'boot.sh'), dir, machine, ...binds], {
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const bootLog = () => readFile(join(dir, 'boot.log'), 'utf8').catch(() => '');

  // unshare → systemd-nspawn (bash exec'd it) → the container's systemd.
  const init = await waitFor(`${machine} to boot`, async () => {
    if (child.exitCode !== null) throw new Error(`${machine} did not boot:\n${await bootLog()}`);
    const nspawn = await firstChild(child.pid!);
    const cmdline = nspawn ? await readFile(`/proc/${nspawn}/cmdline`, 'utf8').catch(() => '') : '';
    if (!cmdline.startsWith('systemd-nspawn')) return null;
    // nspawn's first child is briefly its own helper; the container's PID 1 has exec'd systemd.
    const first = nspawn && (await firstChild(nspawn));
    return first && (await readFile(`/proc/${first}/comm`, 'utf8').catch(() => '')) === 'systemd\n' ? first : null;
  }, 30_000);

  const enter = ['nsenter', '-t', String(init), '-m', '-u', '-i', '-p', '-C', '--'];
  const host: SystemdHost = {
    async run(argv, opts = {}) {
      const env = { PATH: '/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', ...opts.env };
      const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
      const cd = opts.cwd ? ['--chdir', opts.cwd] : [];
      const out = await $({ nothrow: true, timeout: opts.timeoutMs ?? 60_000 })`${enter} env -i ${cd} ${envArgs} ${argv}`;
      return { code: out.exitCode ?? -1, stdout: out.stdout, stderr: out.stderr };
    },
    async stop() {
      if (child.exitCode === null) {
        // systemd's "power off" signal; the kill below is for a host that does not answer it.
        process.kill(init, SIGRTMIN_PLUS_4);
        const off = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 30_000))]);
        if (!off) child.kill('SIGKILL');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  // Booted: every unit of basic.target started (degraded would still take timers). Until systemd's
  // bus socket exists, systemctl cannot connect: ask again.
  await waitFor(`${machine}'s systemd to finish booting`, async () => {
    const state = await host.run(['systemctl', 'is-system-running', '--wait'], { timeoutMs: 60_000 });
    return /^(running|degraded)$/m.test(state.stdout) ? state : null;
  }, 60_000, 200).catch(async (err: Error) => {
    await host.stop();
    throw new Error(`${err.message}:\n${await bootLog()}`);
  });
  return host;
}
